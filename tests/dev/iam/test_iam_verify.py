"""The signature check against requests botocore signed (botocore is the oracle, §6)."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from warmline.aws.credentials import Credentials
from warmline.dev.iam.principals import developer_principal, function_principal
from warmline.dev.iam.verify import SignatureRejected, canonical_query, verify

NOW = datetime.datetime(2026, 3, 1, 23, 59, 58)
FN = function_principal("ws", "ws-role", "123456789012", ())
DEV = developer_principal("123456789012", Credentials("AKIAEXAMPLEEXAMPLE01", "s" * 40))
PRINCIPALS = {p.credentials.access_key: p for p in (FN, DEV)}


def _signed(
    monkeypatch: pytest.MonkeyPatch,
    creds: Credentials,
    *,
    url: str = "https://127.0.0.1:3001/dev/%40connections/R1kmxc2VNjMCFIA%3D",
    method: str = "POST",
    body: bytes = b"hello",
    service: str = "execute-api",
    region: str = "us-east-1",
    at: datetime.datetime = NOW,
) -> AWSRequest:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: at)
    request = AWSRequest(method=method, url=url, data=body, headers={"User-Agent": "test"})
    boto = BotoCredentials(creds.access_key, creds.secret_key, creds.token)
    botocore.auth.SigV4Auth(boto, service, region).add_auth(request)
    return request


def _verify(request: AWSRequest, **overrides: Any) -> Any:
    prepared = request.prepare()
    path, _, query = prepared.url.split("://", 1)[1].partition("/")[2].partition("?")
    headers = list(prepared.headers.items())
    headers.append(("Host", prepared.url.split("://", 1)[1].split("/", 1)[0]))
    args: dict[str, Any] = {
        "method": prepared.method,
        "path": "/" + path,
        "query": query,
        "headers": headers,
        "body": prepared.body or b"",
        "region": "us-east-1",
        "service": "execute-api",
        "now": NOW.replace(tzinfo=datetime.UTC).timestamp(),
    }
    args.update(overrides)
    return verify(PRINCIPALS, **args)


def test_botocore_signed_requests_verify_as_their_principal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _verify(_signed(monkeypatch, FN.credentials)) is FN
    assert _verify(_signed(monkeypatch, DEV.credentials, method="GET", body=b"")) is DEV
    invoke = _signed(
        monkeypatch,
        FN.credentials,
        url="http://127.0.0.1:3001/2015-03-31/functions/target/invocations?Qualifier=live",
        service="lambda",
        body=b'{"a": 1}',
    )
    assert _verify(invoke, service="lambda") is FN


@pytest.mark.parametrize(
    ("creds", "kind"),
    [
        (Credentials("ASIAUNKNOWNUNKNOWN00", "x" * 40, "t"), "unrecognized"),
        (Credentials(FN.credentials.access_key, "wrong" * 8, FN.credentials.token), "mismatch"),
        (Credentials(FN.credentials.access_key, FN.credentials.secret_key), "unrecognized"),
        (
            Credentials(FN.credentials.access_key, FN.credentials.secret_key, "other"),
            "unrecognized",
        ),
        (Credentials(DEV.credentials.access_key, DEV.credentials.secret_key, "t"), "unrecognized"),
    ],
)
def test_wrong_keys_secrets_and_tokens_are_refused(
    monkeypatch: pytest.MonkeyPatch, creds: Credentials, kind: str
) -> None:
    with pytest.raises(SignatureRejected) as refused:
        _verify(_signed(monkeypatch, creds))
    assert refused.value.kind == kind


def test_a_request_changed_after_signing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    request = _signed(monkeypatch, FN.credentials)
    with pytest.raises(SignatureRejected) as refused:
        _verify(request, body=b"hellO")
    assert refused.value.kind == "mismatch"
    with pytest.raises(SignatureRejected) as moved:
        _verify(request, path="/dev/%40connections/other%3D")
    assert moved.value.kind == "mismatch"


def test_skew_beyond_five_minutes_is_refused_with_aws_s_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    within = _signed(monkeypatch, FN.credentials, at=NOW - datetime.timedelta(seconds=299))
    assert _verify(within) is FN
    stale = _signed(monkeypatch, FN.credentials, at=NOW - datetime.timedelta(minutes=6))
    with pytest.raises(SignatureRejected) as refused:
        _verify(stale)
    assert refused.value.kind == "expired"
    assert refused.value.message == (
        "Signature expired: 20260301T235358Z is now earlier than 20260301T235458Z "
        "(20260301T235958Z - 5 min.)"
    )
    early = _signed(monkeypatch, FN.credentials, at=NOW + datetime.timedelta(minutes=6))
    with pytest.raises(SignatureRejected) as ahead:
        _verify(early)
    assert ahead.value.message.startswith("Signature not yet current: 20260302T000558Z")


def test_the_scope_must_name_this_region_and_service(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SignatureRejected) as region:
        _verify(_signed(monkeypatch, FN.credentials, region="eu-west-1"))
    assert (region.value.kind, region.value.message) == (
        "scope",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )
    with pytest.raises(SignatureRejected) as service:
        _verify(_signed(monkeypatch, FN.credentials, service="lambda"))
    assert service.value.kind == "scope"


def test_unsigned_and_half_signed_requests_are_refused() -> None:
    base: dict[str, Any] = {
        "method": "POST",
        "path": "/dev/%40connections/x",
        "query": "",
        "body": b"",
        "region": "us-east-1",
        "service": "execute-api",
        "now": 0.0,
    }
    with pytest.raises(SignatureRejected) as missing:
        verify(PRINCIPALS, headers=[("Host", "h")], **base)
    assert (missing.value.kind, missing.value.message) == (
        "missing",
        "Missing Authentication Token",
    )
    forged = [("Authorization", "AWS4-HMAC-SHA256 Credential=x/y, Signature=z")]
    with pytest.raises(SignatureRejected) as incomplete:
        verify(PRINCIPALS, headers=forged, **base)
    assert incomplete.value.kind == "incomplete"


def test_the_canonical_query_is_sorted_and_encoded_once() -> None:
    assert canonical_query("b=2&a=x%20y&Qualifier=%24LATEST") == "Qualifier=%24LATEST&a=x%20y&b=2"
    assert canonical_query("") == ""
