"""X-Twilio-Signature, checked against the ``twilio`` SDK's RequestValidator as an oracle.

The SDK is imported here only; ``warmline.twilio.signature`` must never import it (checked
in a fresh interpreter at the end).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from warmline.errors import ConfigurationError, InvalidSignatureError
from warmline.testing import modules_after
from warmline.twilio.signature import (
    SIGNATURE_HEADER,
    compute_signature,
    signature_algorithm,
    validate_handshake,
    validate_signature,
    validate_webhook,
)

TOKEN = "12345678901234567890123456789012"
OTHER_TOKEN = "abcdefabcdefabcdefabcdefabcdefab"
EVENTS = Path(__file__).resolve().parent.parent / "events"


class MultiDict(dict[str, list[str]]):
    """The shape of Django's QueryDict as far as the SDK is concerned (``getlist``)."""

    def getlist(self, name: str) -> list[str]:
        return list(self[name])


def oracle_signature(url: str, params: Mapping[str, Sequence[str]] | None) -> str:
    sdk_params = MultiDict({k: list(v) for k, v in params.items()}) if params else {}
    result: str = RequestValidator(TOKEN).compute_signature(url, sdk_params)
    return result


def oracle_validate(url: str, params: Mapping[str, Sequence[str]] | str | None, sig: str) -> bool:
    if isinstance(params, Mapping):
        params = MultiDict({k: list(v) for k, v in params.items()})
    result: bool = RequestValidator(TOKEN).validate(url, params, sig)
    return result


URLS = [
    "https://example.com/voice",
    "https://example.com/voice/",
    "https://example.com:443/voice",
    "https://example.com:8443/voice",
    "http://localhost:8080/twiml",
    "http://example.com:80/status",
    "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
    "wss://relay.example.com/ws?callType=inbound&lang=en-US",
    "wss://relay.example.com:443/ws",
    "https://example.com/voice?From=%2B15550100&To=%2B15550101",
    "https://example.com/voice?a=1&a=2&b=",
    "https://example.com/pfad/%C3%BC?q=caf%C3%A9",
    "https://example.com/chemin/éàü?q=日本",
    "https://user:pa55@example.com/voice",
    "https://[2001:db8::1]:443/voice",
]

PARAM_SETS: list[Mapping[str, Sequence[str]] | None] = [
    None,
    {},
    {"CallSid": ["CA1234567890abcdef1234567890abcdef"], "From": ["+15550100"]},
    {"Digits": ["1234"], "To": ["+15550101"], "AccountSid": ["AC123"], "Caller": ["+1555"]},
    {"SpeechResult": ["Hallo, wie geht's? Ça va — 你好 🙂"], "Confidence": ["0.93"]},
    {"Media": ["b", "a", "c", "a"], "Body": ["x"]},  # repeated field, duplicate value
    {"a": ["1"], "A": ["1"], "b": [""], "_": ["&="]},
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", PARAM_SETS)
def test_signature_matches_the_sdk(url: str, params: Mapping[str, Sequence[str]] | None) -> None:
    ours = compute_signature(url, params, TOKEN)
    assert ours == oracle_signature(url, params)
    assert validate_signature(url, params, ours, TOKEN)
    assert oracle_validate(url, params, ours)


def test_single_string_values_sign_like_one_element_lists() -> None:
    as_str = {"From": "+15550100", "To": "+15550101"}
    as_list = {"From": ["+15550100"], "To": ["+15550101"]}
    url = "https://example.com/voice"
    assert compute_signature(url, as_str, TOKEN) == compute_signature(url, as_list, TOKEN)
    assert compute_signature(url, as_str, TOKEN) == RequestValidator(TOKEN).compute_signature(
        url, as_str
    )


def test_a_multidict_getlist_is_used_for_repeated_fields() -> None:
    params = MultiDict({"Media": ["b", "a"]})
    url = "https://example.com/sms"
    assert compute_signature(url, params, TOKEN) == compute_signature(
        url, {"Media": ["a", "b"]}, TOKEN
    )
    assert compute_signature(url, params, TOKEN) != compute_signature(url, {"Media": "b"}, TOKEN)


_names = st.text(min_size=1, max_size=12)
_values = st.lists(st.text(max_size=20), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    url=st.sampled_from(URLS),
    path=st.text(max_size=15),
    params=st.dictionaries(_names, _values, max_size=6),
)
def test_any_params_sign_like_the_sdk(url: str, path: str, params: dict[str, list[str]]) -> None:
    full = url + path
    ours = compute_signature(full, params, TOKEN)
    assert ours == oracle_signature(full, params)
    assert validate_signature(full, params, ours, TOKEN)


@settings(max_examples=60, deadline=None)
@given(params=st.dictionaries(_names, _values, min_size=1, max_size=6), extra=st.text(max_size=8))
def test_changing_any_value_breaks_the_signature(params: dict[str, list[str]], extra: str) -> None:
    url = "https://example.com/voice"
    sig = compute_signature(url, params, TOKEN)
    name = sorted(params)[0]
    changed = dict(params)
    changed[name] = [*params[name], "tampered" + extra]
    assert not validate_signature(url, changed, sig, TOKEN)
    assert not oracle_validate(url, changed, sig)


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("https://example.com:443/voice", "https://example.com/voice"),
        ("https://example.com/voice", "https://example.com:443/voice"),
        ("http://example.com:80/voice?x=1", "http://example.com/voice?x=1"),
        ("http://example.com/voice", "http://example.com:80/voice"),
        ("https://[2001:db8::1]:443/v", "https://[2001:db8::1]/v"),
    ],
)
def test_an_explicit_default_port_is_optional_as_in_the_sdk(signed: str, checked: str) -> None:
    sig = compute_signature(signed, {"A": "1"}, TOKEN)
    assert validate_signature(checked, {"A": "1"}, sig, TOKEN)
    assert oracle_validate(checked, {"A": ["1"]}, sig)


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("wss://relay.example.com:443/ws", "wss://relay.example.com/ws"),
        ("wss://relay.example.com/ws", "wss://relay.example.com:443/ws"),
        ("ws://127.0.0.1:80/ws", "ws://127.0.0.1/ws"),
    ],
)
def test_the_default_port_of_wss_is_443(signed: str, checked: str) -> None:
    sig = compute_signature(signed, None, TOKEN)
    assert validate_signature(checked, None, sig, TOKEN)


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("https://example.com:8443/voice", "https://example.com/voice"),
        ("https://example.com/voice", "https://example.com:8443/voice"),
        ("https://example.com:80/voice", "https://example.com/voice"),
        ("wss://relay.example.com:80/ws", "wss://relay.example.com/ws"),
    ],
)
def test_a_non_default_port_is_never_optional(signed: str, checked: str) -> None:
    sig = compute_signature(signed, None, TOKEN)
    assert not validate_signature(checked, None, sig, TOKEN)


def test_a_wrong_token_fails() -> None:
    url = "https://example.com/voice"
    sig = compute_signature(url, {"A": "1"}, OTHER_TOKEN)
    assert not validate_signature(url, {"A": "1"}, sig, TOKEN)
    assert not oracle_validate(url, {"A": ["1"]}, sig)


@pytest.mark.parametrize("signature", ["", "   ", "not base64 at all", "é" * 28, "A" * 28])
def test_garbage_signatures_fail_without_raising(signature: str) -> None:
    assert not validate_signature("https://example.com/voice", None, signature, TOKEN)


def test_an_empty_token_is_a_configuration_error() -> None:
    sig = compute_signature("https://example.com/voice", None, "")
    with pytest.raises(ConfigurationError):
        validate_signature("https://example.com/voice", None, sig, "")


def test_an_unknown_algorithm_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        compute_signature("https://example.com/voice", None, TOKEN, algorithm="HMAC_MD5")


# --- JSON bodies (bodySHA256) ----------------------------------------------------------


def _json_url(body: bytes, base: str = "https://example.com/events") -> str:
    return f"{base}?bodySHA256={hashlib.sha256(body).hexdigest()}"


def test_a_json_body_is_checked_through_its_hash_like_the_sdk() -> None:
    body = json.dumps({"CallSid": "CA1", "note": "café"}, ensure_ascii=False).encode()
    url = _json_url(body)
    sig = compute_signature(url, None, TOKEN)
    assert sig == oracle_signature(url, None)
    assert validate_signature(url, None, sig, TOKEN, body=body)
    assert validate_signature(url, None, sig, TOKEN, body=body.decode())
    assert oracle_validate(url, body.decode(), sig)


def test_a_changed_json_body_fails_like_the_sdk() -> None:
    body = b'{"CallSid":"CA1"}'
    url = _json_url(body)
    sig = compute_signature(url, None, TOKEN)
    assert not validate_signature(url, None, sig, TOKEN, body=b'{"CallSid":"CA2"}')
    assert not oracle_validate(url, '{"CallSid":"CA2"}', sig)


def test_params_are_ignored_when_the_url_carries_a_body_hash() -> None:
    body = b"{}"
    url = _json_url(body)
    sig = compute_signature(url, None, TOKEN)
    assert validate_signature(url, {"Injected": "1"}, sig, TOKEN, body=body)


def test_validate_webhook_requires_the_body_when_the_url_has_a_hash() -> None:
    body = b'{"a":1}'
    url = _json_url(body)
    headers = {SIGNATURE_HEADER: compute_signature(url, None, TOKEN)}
    validate_webhook(url, None, headers, TOKEN, body=body)
    with pytest.raises(InvalidSignatureError, match="no body"):
        validate_webhook(url, None, headers, TOKEN)
    with pytest.raises(InvalidSignatureError, match="body does not match"):
        validate_webhook(url, None, headers, TOKEN, body=b'{"a":2}')


# --- HTTP webhooks ----------------------------------------------------------------------


def test_a_form_post_webhook_passes_and_a_changed_field_fails() -> None:
    url = "https://example.com/voice"
    form = {"CallSid": "CA1", "From": "+15550100", "To": "+15550101"}
    headers = {"x-twilio-signature": oracle_signature(url, {k: [v] for k, v in form.items()})}
    validate_webhook(url, form, headers, TOKEN)
    with pytest.raises(InvalidSignatureError, match="signature does not match"):
        validate_webhook(url, {**form, "From": "+15550199"}, headers, TOKEN)


def test_a_get_webhook_is_signed_over_its_query_only() -> None:
    url = "https://example.com/voice?CallSid=CA1&From=%2B15550100"
    headers = {"X-Twilio-Signature": oracle_signature(url, None)}
    validate_webhook(url, None, headers, TOKEN)
    validate_webhook(url, {}, headers, TOKEN)
    with pytest.raises(InvalidSignatureError):
        validate_webhook(url.replace("CA1", "CA2"), None, headers, TOKEN)


def test_a_webhook_without_the_header_is_rejected() -> None:
    with pytest.raises(InvalidSignatureError, match="missing X-Twilio-Signature header"):
        validate_webhook("https://example.com/voice", {"A": "1"}, {"Host": "x"}, TOKEN)


def test_an_hmac_sha256_webhook_named_in_the_settings_header_passes() -> None:
    url = "https://example.com/voice"
    form = {"CallSid": "CA1"}
    secret = "shared-key-secret"
    sig = RequestValidator(secret).compute_signature(url, form, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": sig,
        "x-twilio-webhooks-signature-settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
    }
    validate_webhook(url, form, headers, secret)
    with pytest.raises(InvalidSignatureError):
        validate_webhook(url, form, {"X-Twilio-Signature": sig}, secret)  # read as SHA1


def test_an_unknown_algorithm_in_the_settings_header_is_rejected() -> None:
    headers = {
        "X-Twilio-Signature": "x",
        "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA3",
    }
    with pytest.raises(InvalidSignatureError, match="unsupported signature algorithm"):
        validate_webhook("https://example.com/voice", None, headers, TOKEN)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "HMAC_SHA1"),
        ("", "HMAC_SHA1"),
        ("key=abc", "HMAC_SHA1"),
        ("key=abc,algorithm=HMAC_SHA256", "HMAC_SHA256"),
        (" algorithm = HMAC_SHA256 , key=abc", "HMAC_SHA256"),
    ],
)
def test_signature_algorithm_reads_the_settings_header(header: str | None, expected: str) -> None:
    assert signature_algorithm(header) == expected


# --- the ConversationRelay handshake ----------------------------------------------------

RELAY_URL = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"


def _connect_headers(signature: str) -> dict[str, str]:
    event: dict[str, Any] = json.loads((EVENTS / "apigw" / "connect.json").read_text())
    headers: dict[str, str] = dict(event["headers"])
    headers["x-twilio-signature"] = signature
    return headers


def test_a_recorded_connect_event_with_a_valid_signature_passes() -> None:
    validate_handshake(_connect_headers(oracle_signature(RELAY_URL, None)), RELAY_URL, TOKEN)


@pytest.mark.parametrize("name", ["X-Twilio-Signature", "x-twilio-signature", "X-TWILIO-SIGNATURE"])
def test_the_header_name_is_case_insensitive(name: str) -> None:
    validate_handshake({name: compute_signature(RELAY_URL, None, TOKEN)}, RELAY_URL, TOKEN)


def test_a_handshake_without_the_header_is_rejected() -> None:
    headers = _connect_headers("x")
    del headers["x-twilio-signature"]
    with pytest.raises(InvalidSignatureError, match="^missing X-Twilio-Signature header$"):
        validate_handshake(headers, RELAY_URL, TOKEN)


def test_a_handshake_with_an_empty_header_is_rejected() -> None:
    with pytest.raises(InvalidSignatureError, match="missing"):
        validate_handshake({"X-Twilio-Signature": ""}, RELAY_URL, TOKEN)


def test_a_handshake_signed_with_another_token_is_rejected() -> None:
    sig = compute_signature(RELAY_URL, None, OTHER_TOKEN)
    with pytest.raises(InvalidSignatureError, match=f"signature does not match {RELAY_URL}"):
        validate_handshake(_connect_headers(sig), RELAY_URL, TOKEN)


def test_a_handshake_signed_for_another_url_is_rejected() -> None:
    sig = compute_signature("wss://abc123.execute-api.us-east-1.amazonaws.com/dev", None, TOKEN)
    with pytest.raises(InvalidSignatureError):
        validate_handshake(_connect_headers(sig), RELAY_URL, TOKEN)


def test_a_handshake_signed_over_https_is_rejected_for_the_wss_url() -> None:
    https = RELAY_URL.replace("wss://", "https://")
    sig = compute_signature(https, None, TOKEN)
    with pytest.raises(InvalidSignatureError):
        validate_handshake(_connect_headers(sig), RELAY_URL, TOKEN)


def test_a_handshake_url_that_is_not_wss_is_a_configuration_error() -> None:
    https = RELAY_URL.replace("wss://", "https://")
    sig = compute_signature(https, None, TOKEN)
    with pytest.raises(ConfigurationError, match="wss://"):
        validate_handshake(_connect_headers(sig), https, TOKEN)


def test_the_query_string_is_part_of_the_signed_url() -> None:
    url = RELAY_URL + "?callType=inbound&tenant=acme"
    sig = oracle_signature(url, None)
    validate_handshake({"X-Twilio-Signature": sig}, url, TOKEN)
    with pytest.raises(InvalidSignatureError):
        validate_handshake({"X-Twilio-Signature": sig}, RELAY_URL, TOKEN)


def test_a_replayed_signature_with_a_changed_query_is_rejected() -> None:
    url = RELAY_URL + "?tenant=acme"
    sig = compute_signature(url, None, TOKEN)
    validate_handshake({"X-Twilio-Signature": sig}, url, TOKEN)
    for replay in (RELAY_URL + "?tenant=evil", url + "&admin=1", RELAY_URL + "?TENANT=acme"):
        with pytest.raises(InvalidSignatureError):
            validate_handshake({"X-Twilio-Signature": sig}, replay, TOKEN)


def test_the_handshake_accepts_the_url_with_or_without_port_443() -> None:
    with_port = "wss://abc123.execute-api.us-east-1.amazonaws.com:443/prod"
    validate_handshake(
        {"X-Twilio-Signature": compute_signature(with_port, None, TOKEN)}, RELAY_URL, TOKEN
    )
    validate_handshake(
        {"X-Twilio-Signature": compute_signature(RELAY_URL, None, TOKEN)}, with_port, TOKEN
    )


def test_rejection_messages_never_reveal_the_token_or_the_expected_signature() -> None:
    url = "wss://bob:hunter2@relay.example.com/ws?x=1"
    expected = compute_signature(url, None, TOKEN)
    with pytest.raises(InvalidSignatureError) as info:
        validate_handshake({"X-Twilio-Signature": "wrong"}, url, TOKEN)
    message = str(info.value)
    assert TOKEN not in message
    assert expected not in message
    assert "hunter2" not in message
    assert "relay.example.com/ws?x=1" in message


def test_importing_the_module_does_not_import_the_twilio_sdk() -> None:
    loaded = modules_after("import warmline.twilio.signature")
    assert "warmline.twilio.signature" in loaded
    assert sorted(m for m in loaded if m == "twilio" or m.startswith("twilio.")) == []
    assert sorted(m for m in ("logging", "asyncio", "ssl", "inspect") if m in loaded) == []


def test_every_exported_name_exists() -> None:
    import importlib

    module = importlib.import_module("warmline.twilio.signature")
    assert sorted(n for n in module.__all__ if not hasattr(module, n)) == []


# --- edges pinned by mutation testing -----------------------------------------------------


class GetAllMultiDict:
    """aiohttp/multidict's shape: ``[name]`` is the first value, ``getall`` every value."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __getitem__(self, name: str) -> str:
        return next(v for k, v in self._pairs if k == name)

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(k for k, _ in self._pairs))

    def __len__(self) -> int:
        return len(set(k for k, _ in self._pairs))

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]


class GetListMultiDict(GetAllMultiDict):
    """Django's QueryDict / Werkzeug's MultiDict shape: ``getlist`` instead of ``getall``."""

    getall = None  # type: ignore[assignment]

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]


@pytest.mark.parametrize("cls", [GetAllMultiDict, GetListMultiDict])
def test_framework_multidicts_sign_every_value_of_a_repeated_field(
    cls: type[GetAllMultiDict],
) -> None:
    url = "https://example.com/sms"
    params = cls([("MediaUrl", "https://m/2"), ("Body", "hi"), ("MediaUrl", "https://m/1")])
    expected = compute_signature(
        url, {"MediaUrl": ["https://m/1", "https://m/2"], "Body": "hi"}, TOKEN
    )
    assert compute_signature(url, params, TOKEN) == expected  # type: ignore[arg-type]
    assert expected == oracle_signature(
        url, {"MediaUrl": ["https://m/1", "https://m/2"], "Body": ["hi"]}
    )


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("wss://[::1]:443/relay", "wss://[::1]/relay"),
        ("wss://[::1]/relay", "wss://[::1]:443/relay"),
        ("https://[2001:db8::7]:443/voice?a=1", "https://[2001:db8::7]/voice?a=1"),
        ("http://[2001:db8::7]/voice", "http://[2001:db8::7]:80/voice"),
        ("wss://[]:443/relay", "wss://[]/relay"),  # any bracketed host, even an empty one
    ],
)
def test_an_ipv6_host_has_an_optional_default_port_too(signed: str, checked: str) -> None:
    assert validate_signature(checked, None, compute_signature(signed, None, TOKEN), TOKEN)


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("wss://[::1]:8443/relay", "wss://[::1]/relay"),
        ("wss://[::1]/relay", "wss://[::1]:8443/relay"),
        ("wss://[::1/relay", "wss://[::1:443/relay"),  # no closing bracket: taken as given
        ("wss://[::1]]/relay", "wss://[::1]]:443/relay"),  # junk after the bracket
        ("wss://[::1]x/relay", "wss://[::1]x:443/relay"),
    ],
)
def test_an_ipv6_host_with_another_or_a_malformed_port_is_checked_as_given(
    signed: str, checked: str
) -> None:
    assert not validate_signature(checked, None, compute_signature(signed, None, TOKEN), TOKEN)
    assert validate_signature(signed, None, compute_signature(signed, None, TOKEN), TOKEN)


@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("https://EXAMPLE.COM:443/voice", "https://EXAMPLE.COM/voice"),  # an X in the host
        ("https://example.com:443/a/b/c", "https://example.com/a/b/c"),
        (
            "https://example.com:443/a?next=https://other.example/b",
            "https://example.com/a?next=https://other.example/b",
        ),
        ("https://user:pw@example.com:443/voice", "https://user:pw@example.com/voice"),
        ("https://example.com:443?x=1", "https://example.com?x=1"),
        ("https://example.com:443#frag", "https://example.com#frag"),
    ],
)
def test_the_default_port_is_found_in_any_authority(signed: str, checked: str) -> None:
    assert validate_signature(checked, None, compute_signature(signed, None, TOKEN), TOKEN)
    assert validate_signature(signed, None, compute_signature(checked, None, TOKEN), TOKEN)


def test_a_body_hash_url_validates_without_a_body_when_none_is_required() -> None:
    body = b'{"event": "x"}'
    url = _json_url(body)
    sig = compute_signature(url, None, TOKEN)
    assert validate_signature(url, None, sig, TOKEN)  # the caller checks the body itself
    assert validate_signature(url, {"ignored": "form"}, sig, TOKEN)
    assert not validate_signature(url, None, sig, TOKEN, body=b"{}")


def test_a_handshake_url_carrying_a_body_hash_needs_no_body() -> None:
    url = "wss://relay.example.com/ws?bodySHA256=" + "0" * 64
    validate_handshake({SIGNATURE_HEADER: compute_signature(url, None, TOKEN)}, url, TOKEN)


def test_a_handshake_url_may_carry_a_url_in_its_query() -> None:
    url = "wss://relay.example.com/ws?back=https://example.com/x"
    validate_handshake({SIGNATURE_HEADER: compute_signature(url, None, TOKEN)}, url, TOKEN)


@pytest.mark.parametrize("url", ["wss", "ws", "relay.example.com/ws", "https://relay.example.com/"])
def test_a_handshake_url_without_a_websocket_scheme_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must start with wss://"):
        validate_handshake({SIGNATURE_HEADER: compute_signature(url, None, TOKEN)}, url, TOKEN)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:hunter2@x.example/a", "https://bob:***@x.example/a"),
        ("https://bob:hun:ter2@x.example/a", "https://bob:***@x.example/a"),  # ':' in the password
        ("https://bob:hun@ter2@x.example/a", "https://bob:***@x.example/a"),  # '@' in the password
        ("https://bob@x.example/a", "https://bob@x.example/a"),  # no password: nothing to mask
        ("https://x.example/a?u=b:c@d", "https://x.example/a?u=b:c@d"),  # not the authority
    ],
)
def test_a_password_in_the_url_is_masked_in_messages(url: str, shown: str) -> None:
    with pytest.raises(InvalidSignatureError) as raised:
        validate_webhook(url, None, {SIGNATURE_HEADER: "wrong"}, TOKEN)
    assert str(raised.value) == f"signature does not match {shown}"
    with pytest.raises(ConfigurationError) as refused:
        validate_handshake({SIGNATURE_HEADER: "wrong"}, url, TOKEN)
    assert str(refused.value).endswith(f"got {shown!r}")


def test_text_with_no_utf8_form_fails_the_check_with_a_message() -> None:
    url = "wss://bob:pw@relay.example.com/ws?name=\ud800"
    assert not validate_signature(url, None, "c2ln", TOKEN)
    with pytest.raises(InvalidSignatureError) as raised:
        validate_handshake({SIGNATURE_HEADER: "c2ln"}, url, TOKEN)
    assert str(raised.value) == (
        "the request holds text with no UTF-8 form; not signed by Twilio "
        "('wss://bob:***@relay.example.com/ws?name=\\ud800')"
    )


def test_configuration_errors_say_what_is_wrong() -> None:
    with pytest.raises(ConfigurationError) as raised:
        validate_signature("https://example.com/voice", None, "c2ln", "")
    assert str(raised.value) == "the Twilio auth token is empty; cannot check signatures"
    with pytest.raises(ConfigurationError) as raised:
        compute_signature("https://example.com/voice", None, TOKEN, algorithm="HMAC_MD5")
    assert str(raised.value) == "unsupported Twilio signature algorithm 'HMAC_MD5'"


def test_the_exact_header_name_wins_over_another_case() -> None:
    url = "https://example.com/voice"
    good = compute_signature(url, None, TOKEN)
    validate_webhook(url, None, {"x-twilio-signature": "wrong", SIGNATURE_HEADER: good}, TOKEN)


@pytest.mark.parametrize("value", [["c2ln"], None, 7])
def test_a_header_that_is_not_a_string_counts_as_missing(value: object) -> None:
    with pytest.raises(InvalidSignatureError) as raised:
        validate_webhook("https://example.com/voice", None, {SIGNATURE_HEADER: value}, TOKEN)  # type: ignore[dict-item]
    assert str(raised.value) == f"missing {SIGNATURE_HEADER} header"


def test_an_algorithm_value_is_read_up_to_the_next_comma_only() -> None:
    assert signature_algorithm("algorithm=A=B, key=k") == "A=B"


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/voice",
        "https://::1]/voice",
        "https://[::1/events?bodySHA256=" + hashlib.sha256(b"{}").hexdigest(),
    ],
)
def test_a_url_with_an_unbalanced_ipv6_bracket_fails_the_check_without_raising(url: str) -> None:
    # The URL may be rebuilt from a Host header the client chose: a 403, never a 500.
    sig = compute_signature(url, None, TOKEN)
    assert validate_signature(url, None, sig, TOKEN, body=b"{}")
    assert not validate_signature(url, None, "c2ln", TOKEN)
    with pytest.raises(InvalidSignatureError, match="signature does not match"):
        validate_webhook(url, None, {SIGNATURE_HEADER: "c2ln"}, TOKEN, body=b"{}")


_EMPTY_OBJECT_HASH = hashlib.sha256(b"{}").hexdigest()


@pytest.mark.parametrize(
    "url",
    [
        f"https://[::1/events?bodySHA256={_EMPTY_OBJECT_HASH}&next=/a?b#x",
        f"https://[::1/events?next=/a?b&bodySHA256={_EMPTY_OBJECT_HASH}#x#y",
    ],
)
def test_a_body_hash_is_read_from_the_query_of_an_unbalanced_ipv6_url(url: str) -> None:
    sig = compute_signature(url, None, TOKEN)
    assert validate_signature(url, {"form": "ignored"}, sig, TOKEN, body=b"{}")
    assert not validate_signature(url, None, sig, TOKEN, body=b"[]")
    with pytest.raises(InvalidSignatureError, match="^body does not match bodySHA256"):
        validate_webhook(url, None, {SIGNATURE_HEADER: sig}, TOKEN, body=b"[]")
