"""X-Twilio-Signature bypass attempts: each is rejected, or accepted where Twilio accepts.

Every test name says which. The attacker here can replay any request Twilio once sent
(signature included) and change anything else; they do not know the auth token. The
checks run through the public functions (``validate_handshake``/``validate_webhook``)
and through the whole Lambda handler (a 403 and nothing stored). The ``twilio`` SDK's
own validator is the oracle for "Twilio would accept".
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from hostile_strategies import EXAMPLES, json_values, mutated
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from warmline.adapters.aws_lambda import lambda_handler
from warmline.agent.app import build_app
from warmline.connections.local import LocalConnections
from warmline.core.app import App
from warmline.errors import ConfigurationError, InvalidSignatureError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, http_event, websocket_event
from warmline.twilio.signature import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    compute_signature,
    validate_handshake,
    validate_webhook,
)
from warmline.twilio.twiml import RelaySettings
from warmline.twilio.voice import mount_voice

TOKEN = "12345678901234567890123456789012"
WSS = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"
HOOK = "https://abc123.lambda-url.us-east-1.on.aws/twiml?lang=en"
FORM = {"CallSid": "CA1", "From": "+15550100", "To": "+15550101"}


def sig(url: str, params: Any = None, token: str = TOKEN) -> str:
    return compute_signature(url, params, token)


def handshake_ok(headers: dict[str, str], url: str = WSS) -> bool:
    try:
        validate_handshake(headers, url, TOKEN)
    except InvalidSignatureError:
        return False
    return True


def webhook_ok(
    headers: dict[str, str], url: str = HOOK, form: Any = FORM, body: bytes | None = None
) -> bool:
    try:
        validate_webhook(url, form, headers, TOKEN, body=body)
    except InvalidSignatureError:
        return False
    return True


# --- the baseline: a real signature passes, for us and for the SDK ---------------------
def test_accepted_genuine_handshake_and_webhook() -> None:
    assert handshake_ok({SIGNATURE_HEADER: sig(WSS)})
    assert webhook_ok({SIGNATURE_HEADER: sig(HOOK, FORM)})
    assert RequestValidator(TOKEN).validate(HOOK, FORM, sig(HOOK, FORM))


# --- missing / empty -------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {SIGNATURE_HEADER: ""}, {SIGNATURE_HEADER: "   "}])
def test_rejected_missing_or_empty_header(headers: dict[str, str]) -> None:
    assert not handshake_ok(headers)
    assert not webhook_ok(headers)


# --- a signature made for something else -----------------------------------------------
@pytest.mark.parametrize(
    "signed_url",
    [
        "wss://evil.example/prod",
        WSS + "/other",
        WSS + "?callSid=CA1",
        WSS.replace("/prod", "/dev"),
        WSS + "/",
    ],
)
def test_rejected_header_for_another_url(signed_url: str) -> None:
    assert not handshake_ok({SIGNATURE_HEADER: sig(signed_url)})


@pytest.mark.parametrize(
    "changed_url",
    [
        HOOK.replace("lang=en", "lang=es"),
        HOOK + "&admin=1",
        HOOK.replace("?lang=en", ""),
        HOOK.replace("?lang=en", "?LANG=en"),
    ],
)
def test_rejected_replayed_signature_with_changed_query(changed_url: str) -> None:
    replayed = sig(HOOK, FORM)
    assert not webhook_ok({SIGNATURE_HEADER: replayed}, url=changed_url)
    assert not RequestValidator(TOKEN).validate(changed_url, FORM, replayed)


@pytest.mark.parametrize(
    "form",
    [{**FORM, "From": "+15559999"}, {**FORM, "Extra": "1"}, {"CallSid": "CA1"}, {}],
)
def test_rejected_replayed_signature_with_changed_form(form: dict[str, str]) -> None:
    assert not webhook_ok({SIGNATURE_HEADER: sig(HOOK, FORM)}, form=form)


def test_rejected_json_webhook_with_changed_body() -> None:
    body = b'{"a":1}'
    url = "https://h.example/hook?bodySHA256=" + hashlib.sha256(body).hexdigest()
    header = {SIGNATURE_HEADER: sig(url)}
    assert webhook_ok(header, url=url, form=None, body=body)
    assert not webhook_ok(header, url=url, form=None, body=b'{"a":2}')
    assert not webhook_ok(header, url=url, form=None, body=None)


# --- scheme swaps --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("signed", "checked"),
    [
        ("https://abc123.execute-api.us-east-1.amazonaws.com/prod", WSS),
        ("ws://abc123.execute-api.us-east-1.amazonaws.com/prod", WSS),
        (WSS, "ws://abc123.execute-api.us-east-1.amazonaws.com/prod"),
    ],
)
def test_rejected_scheme_swap_on_handshake(signed: str, checked: str) -> None:
    assert not handshake_ok({SIGNATURE_HEADER: sig(signed)}, url=checked)


def test_rejected_scheme_swap_on_webhook() -> None:
    assert not webhook_ok({SIGNATURE_HEADER: sig(HOOK.replace("https", "http"), FORM)})


def test_handshake_url_must_be_websocket() -> None:
    """An https:// public URL is a configuration error, never a silent check of another URL."""
    with pytest.raises(ConfigurationError):
        validate_handshake({SIGNATURE_HEADER: sig(HOOK)}, HOOK, TOKEN)


# --- case tricks ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["x-twilio-signature", "X-TWILIO-SIGNATURE", "x-Twilio-signaturE"])
def test_accepted_header_name_in_any_case(name: str) -> None:
    """HTTP header names are case-insensitive and API Gateway keeps the client's case."""
    assert handshake_ok({name: sig(WSS)})
    assert webhook_ok({name: sig(HOOK, FORM)})


@pytest.mark.parametrize(
    "url",
    [
        WSS.replace("abc123", "ABC123"),
        WSS.replace("/prod", "/PROD"),
        "WSS" + WSS[3:],
    ],
    ids=["host-case", "path-case", "scheme-case"],
)
def test_rejected_case_changed_url(url: str) -> None:
    """The signature is over the exact URL string (PROTOCOLS §1.5): configure public_url
    exactly as written in the TwiML. A case-changed copy is another URL."""
    assert not handshake_ok({SIGNATURE_HEADER: sig(WSS)}, url=url)


def test_rejected_host_case_on_webhook_as_the_sdk_does() -> None:
    upper = HOOK.replace("abc123", "ABC123")
    assert not webhook_ok({SIGNATURE_HEADER: sig(upper, FORM)})
    assert not RequestValidator(TOKEN).validate(HOOK, FORM, sig(upper, FORM))


def test_rejected_signature_in_other_case() -> None:
    """base64 is case-sensitive: a case-flipped signature is another signature."""
    good = sig(WSS)
    assert not handshake_ok({SIGNATURE_HEADER: good.swapcase()})


# --- ports ----------------------------------------------------------------------------
def test_accepted_default_port_added_or_removed() -> None:
    """Twilio's validator accepts the URL with and without its default port."""
    with_port = WSS.replace(".com/", ".com:443/")
    assert handshake_ok({SIGNATURE_HEADER: sig(with_port)})
    assert handshake_ok({SIGNATURE_HEADER: sig(WSS)}, url=with_port)


def test_rejected_other_port() -> None:
    assert not handshake_ok({SIGNATURE_HEADER: sig(WSS.replace(".com/", ".com:8443/"))})


# --- duplicates -----------------------------------------------------------------------
def test_rejected_duplicate_headers_none_valid() -> None:
    headers = {SIGNATURE_HEADER: sig(WSS + "x"), "x-twilio-signature": sig(WSS + "y")}
    assert not handshake_ok(headers)


def test_exact_case_header_wins_over_a_duplicate() -> None:
    """With two spellings of the header, the exact-case one is checked: a valid
    duplicate does not rescue an invalid canonical header, and a junk duplicate does
    not break a valid one (it could not forge anything either way)."""
    good, bad = sig(WSS), sig(WSS + "x")
    assert not handshake_ok({SIGNATURE_HEADER: bad, "x-twilio-signature": good})
    assert handshake_ok({SIGNATURE_HEADER: good, "x-twilio-signature": bad})


@pytest.mark.parametrize("joined", ["{0},{0}", "{0}, {1}", "{1},{0}", "{0} {0}"])
def test_rejected_comma_joined_duplicates(joined: str) -> None:
    """A proxy that folds duplicate headers into one comma list produces no valid value."""
    value = joined.format(sig(WSS), sig(WSS + "x"))
    assert not handshake_ok({SIGNATURE_HEADER: value})


# --- unicode lookalikes -----------------------------------------------------------------
def test_rejected_lookalike_header_name() -> None:
    """``X-Twilio-Signaturе`` with a Cyrillic ``е`` is another header: the signature is missing."""
    assert not handshake_ok({"X-Twilio-Signatur\u0435": sig(WSS)})


@pytest.mark.parametrize(
    "lookalike",
    [
        WSS.replace("abc123", "\u0430bc123"),  # Cyrillic а
        WSS.replace("abc123", "abc１２３"),  # fullwidth digits
        WSS.replace(".com", ".com\u200b"),  # zero-width space
        WSS.replace("abc123", "xn--bc123-5of"),  # punycode form of the lookalike
    ],
)
def test_rejected_lookalike_url(lookalike: str) -> None:
    """A signature for a lookalike host does not pass for the real public URL."""
    assert not handshake_ok({SIGNATURE_HEADER: sig(lookalike)})


@pytest.mark.parametrize(
    "value",
    ["\ud800", "\udfff" + "A" * 27, "ＡＢＣ=", "\x00", "A" * 10_000, "=" * 28],
    ids=["lone-surrogate", "surrogate-prefix", "fullwidth", "nul", "10k", "padding"],
)
def test_rejected_garbage_signature_values(value: str) -> None:
    """Found by this suite: a lone surrogate (a ``\\ud800`` escape in the event JSON)
    used to escape as UnicodeEncodeError, a 502 instead of a 403."""
    assert not handshake_ok({SIGNATURE_HEADER: value})
    assert not webhook_ok({SIGNATURE_HEADER: value})


def test_rejected_surrogates_in_url_and_form() -> None:
    assert not webhook_ok({SIGNATURE_HEADER: sig(HOOK, FORM)}, url=HOOK + "\ud800")
    assert not webhook_ok({SIGNATURE_HEADER: sig(HOOK, FORM)}, form={**FORM, "x": "\udc80"})


# --- configuration --------------------------------------------------------------------
def test_empty_token_is_a_configuration_error_not_a_pass() -> None:
    with pytest.raises(ConfigurationError):
        validate_handshake({SIGNATURE_HEADER: sig(WSS)}, WSS, "")
    with pytest.raises(ConfigurationError):
        validate_webhook(HOOK, FORM, {SIGNATURE_HEADER: sig(HOOK, FORM)}, "")


def test_rejected_unknown_algorithm_in_settings_header() -> None:
    headers = {SIGNATURE_HEADER: sig(HOOK, FORM), SIGNATURE_SETTINGS_HEADER: "algorithm=NONE"}
    assert not webhook_ok(headers)


def test_app_with_empty_token_refuses_unsigned_connects() -> None:
    """An empty token is no token, and no token fails closed: a deployment whose secret
    resolves to "" refuses every handshake (403, ``unsigned_refused``) instead of
    accepting unsigned callers; only ``allow_unsigned=True`` accepts them."""
    app = App(store=MemoryStore(), twilio_auth_token="", public_url=WSS)
    out = io.StringIO()
    handler = lambda_handler(app, log=StepLogger(out))
    assert handler(websocket_event("CONNECT"), LambdaContext())["statusCode"] == 403
    assert '"step":"unsigned_refused"' in out.getvalue()
    opted_out = App(store=MemoryStore(), twilio_auth_token="", allow_unsigned=True)
    handler = lambda_handler(opted_out, log=StepLogger(io.StringIO()))
    assert handler(websocket_event("CONNECT"), LambdaContext())["statusCode"] == 200


# --- the whole stack: 403 and nothing stored -------------------------------------------
def signed_app() -> tuple[Any, MemoryStore, io.StringIO]:
    store = MemoryStore()
    app = build_app(
        store=store,
        connections=lambda _ref: LocalConnections(),
        twilio_auth_token=TOKEN,
        public_url=WSS,
    )
    mount_voice(app, RelaySettings(url=WSS))
    out = io.StringIO()
    return lambda_handler(app, log=StepLogger(out)), store, out


def test_stack_rejects_forged_connect_with_403_and_logs_no_token() -> None:
    handler, _store, out = signed_app()
    good = websocket_event("CONNECT", headers={SIGNATURE_HEADER: sig(WSS)})
    assert handler(good, LambdaContext())["statusCode"] == 200
    for headers in ({}, {SIGNATURE_HEADER: sig(WSS + "?x=1")}, {SIGNATURE_HEADER: "\ud800"}):
        result = handler(websocket_event("CONNECT", headers=headers), LambdaContext())
        assert result["statusCode"] == 403
    assert out.getvalue().count('"signature_rejected"') == 3
    assert TOKEN not in out.getvalue() and sig(WSS) not in out.getvalue()


def test_stack_rejects_forged_twiml_webhook() -> None:
    handler, _store, _out = signed_app()
    host = "abc123.lambda-url.us-east-1.on.aws"
    url = f"https://{host}/twiml"
    good = http_event("POST", "/twiml", form=FORM, headers={SIGNATURE_HEADER: sig(url, FORM)})
    assert handler(good, LambdaContext())["statusCode"] == 200
    forged = http_event(
        "POST", "/twiml", form={**FORM, "From": "+1999"}, headers={SIGNATURE_HEADER: sig(url, FORM)}
    )
    assert handler(forged, LambdaContext())["statusCode"] == 403


CONNECT_TEMPLATE = websocket_event("CONNECT", headers={SIGNATURE_HEADER: sig(WSS)}, now_ms=1)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    mutated(CONNECT_TEMPLATE)
    | st.builds(
        lambda v: websocket_event("CONNECT", headers={SIGNATURE_HEADER: v}),
        st.text(max_size=64),
    )
    | json_values
)
def test_stack_never_raises_on_mutated_signed_connects(raw: Any) -> None:
    handler, _store, _out = STACK
    result = handler(raw, LambdaContext())
    assert isinstance(result, dict)
    if "statusCode" in result:
        assert result["statusCode"] in (200, 400, 403, 404), result


STACK = signed_app()


@pytest.mark.parametrize("query", [{"x": "\ud800"}, {"\udc80": "a"}])
def test_stack_without_public_url_rejects_surrogates_in_the_query(query: dict[str, str]) -> None:
    """Found by this suite: with no ``public_url`` the handshake URL is rebuilt from the
    event, and ``urlencode`` raised UnicodeEncodeError on a lone surrogate (a 502)."""
    app = App(store=MemoryStore(), twilio_auth_token=TOKEN)
    handler = lambda_handler(app, log=StepLogger(io.StringIO()))
    event = websocket_event("CONNECT", headers={SIGNATURE_HEADER: sig(WSS)}, query=query)
    assert handler(event, LambdaContext())["statusCode"] == 403
