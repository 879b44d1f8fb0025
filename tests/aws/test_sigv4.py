"""The stdlib signer against botocore, the oracle (docs/protocols.md §6).

boto3 builds and signs the real PostToConnection / GetConnection / DeleteConnection requests;
a ``before-send`` hook captures each one and answers with a stub, so nothing leaves the
process. Time is frozen where botocore reads it: ``botocore.auth`` does
``from botocore.compat import get_current_datetime`` and calls that name from its own module
namespace, so ``botocore.auth.get_current_datetime`` is what gets patched.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hmac
import importlib.util
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmline.aws import sigv4 as sigv4_module
from warmline.aws.credentials import Credentials, region_from_environment
from warmline.aws.sigv4 import (
    SigV4Signer,
    amz_date,
    canonical_request,
    canonical_uri,
    hmac_sha256,
    quote,
    remove_dot_segments,
)
from warmline.connections.apigw import connection_path
from warmline.errors import ConfigurationError


@pytest.fixture(autouse=True)
def cold_caches() -> Iterator[None]:
    """Each test starts with the module's memo tables empty, so it runs the code that fills
    them (a table built in an earlier test would hide a change to how tables are built)."""
    caches = (sigv4_module._QUOTE_TABLES, sigv4_module._canonical_uris)
    for cache in caches:
        cache.clear()
    sigv4_module._last_date[0] = (-1, "")
    yield


AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="

#: Every character the brief lists, alone and together, plus real-shaped and non-ASCII ids.
TRICKY_IDS = [
    "R1kmxc2VNjMCFIA=",
    "a==",
    "a+b",
    "a/b/",
    "100%",
    "%3D",
    "a b",
    "~._-",
    "@",
    ":!$&'()*,;",
    "= == + / % ~ . _ - @ : ! $ & ' ( ) * , ;",
    "é",
    "日本語",
    "call 🎉",
    "..x",
    "x/../y",
]
MIDNIGHT_EVE = dt.datetime(2026, 12, 31, 23, 59, 59)
MIDNIGHT = dt.datetime(2027, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


_SESSION = boto3.session.Session()  # one session: loading botocore's data files is the slow part


class Oracle:
    """A boto3 ``apigatewaymanagementapi`` client whose requests are captured, not sent."""

    def __init__(self, endpoint: str, region: str, token: str | None) -> None:
        self.client: Any = cast(Any, _SESSION.client)(
            "apigatewaymanagementapi",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=AKID,
            aws_secret_access_key=SECRET,
            aws_session_token=token,
        )
        self.client.meta.events.register("before-send", self._capture)
        self._last: Captured | None = None

    def _capture(self, request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        self._last = Captured(
            method=request.method,
            path=urllib.parse.urlsplit(request.url).path,
            headers={
                k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
            },
            body=body if isinstance(body, bytes) else body.encode(),
        )
        status = 204 if request.method == "DELETE" else 200
        payload = b""
        if request.method == "GET":
            payload = json.dumps(
                {"connectedAt": "2026-01-01T00:00:00Z", "lastActiveAt": "2026-01-01T00:00:00Z"}
            ).encode()
        return AWSResponse(request.url, status, HTTPHeaders(), _Raw(payload))

    def send(self, op: str, connection_id: str, body: bytes, when: dt.datetime) -> Captured:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
            if op == "POST":
                self.client.post_to_connection(ConnectionId=connection_id, Data=body)
            elif op == "GET":
                self.client.get_connection(ConnectionId=connection_id)
            else:
                self.client.delete_connection(ConnectionId=connection_id)
        assert self._last is not None
        return self._last

    def close(self) -> None:
        self.client.close()


class _Raw:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._payload


_ORACLES: dict[tuple[str, str, str | None], Oracle] = {}


def oracle(endpoint: str, region: str, token: str | None) -> Oracle:
    key = (endpoint, region, token)
    if key not in _ORACLES:
        _ORACLES[key] = Oracle(endpoint, region, token)
    return _ORACLES[key]


@pytest.fixture(scope="module", autouse=True)
def _close_oracles() -> Iterator[None]:
    yield
    while _ORACLES:
        _ORACLES.popitem()[1].close()


def epoch(when: dt.datetime) -> float:
    return float(calendar.timegm(when.timetuple()))


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """Host header and base path the way the client sends them."""
    parts = urllib.parse.urlsplit(endpoint)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.netloc.lower()
    if parts.port == default:
        host = host.rsplit(":", 1)[0]
    return host, parts.path.rstrip("/")


def assert_same_as_botocore(
    *,
    op: str = "POST",
    connection_id: str = "R1kmxc2VNjMCFIA=",
    body: bytes = b"hello",
    region: str = "eu-west-1",
    endpoint: str = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    token: str | None = TOKEN,
    when: dt.datetime = MIDNIGHT_EVE,
    signer: SigV4Signer | None = None,
) -> Captured:
    sent = oracle(endpoint, region, token).send(op, connection_id, body, when)
    host, base = split_endpoint(endpoint)
    path = connection_path(base, connection_id)
    mine = (signer or SigV4Signer(region, "execute-api")).sign(
        op,
        host,
        path,
        body if op == "POST" else b"",
        Credentials(AKID, SECRET, token),
        epoch(when),
    )
    assert sent.path == path
    assert mine["X-Amz-Date"] == sent.headers["X-Amz-Date"]
    assert mine.get("X-Amz-Security-Token") == sent.headers.get("X-Amz-Security-Token")
    assert mine["Authorization"] == sent.headers["Authorization"]
    return sent


# --- exact equality with botocore -------------------------------------------------------------


@pytest.mark.parametrize("op", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("connection_id", TRICKY_IDS)
def test_table_every_operation_signs_like_botocore_for_tricky_ids(
    op: str, connection_id: str
) -> None:
    assert_same_as_botocore(op=op, connection_id=connection_id)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-northeast-1", "cn-north-1"])
@pytest.mark.parametrize(
    "endpoint",
    [
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/Stage_2-x",
        "https://api.example.com/chat/v1",
        "https://api.example.com",
        "https://api.example.com:8443/prod",
        "http://127.0.0.1:3001/dev",
        "http://localhost/dev",
    ],
)
def test_table_regions_stages_and_hosts_sign_like_botocore(region: str, endpoint: str) -> None:
    assert_same_as_botocore(region=region, endpoint=endpoint, connection_id="a=b/c")


@pytest.mark.parametrize(
    "body",
    [b"", b"hello", "héllo 🎉 日本".encode(), b"\x00\xff" * 100, b"x" * 131_072],
    ids=["empty", "ascii", "non-ascii", "binary", "max"],
)
@pytest.mark.parametrize("token", [TOKEN, None], ids=["token", "no-token"])
def test_table_bodies_with_and_without_token_sign_like_botocore(
    body: bytes, token: str | None
) -> None:
    sent = assert_same_as_botocore(body=body, token=token)
    signed = "host;x-amz-date;x-amz-security-token" if token else "host;x-amz-date"
    assert f"SignedHeaders={signed}," in sent.headers["Authorization"]
    assert "X-Amz-Content-SHA256" not in sent.headers


@pytest.mark.parametrize(
    "when",
    [
        MIDNIGHT_EVE,
        MIDNIGHT,
        dt.datetime(2028, 2, 29, 12, 0, 0),
        dt.datetime(1999, 12, 31, 23, 59, 59),
    ],
)
@pytest.mark.parametrize("op", ["POST", "GET", "DELETE"])
def test_table_timestamps_sign_like_botocore(when: dt.datetime, op: str) -> None:
    assert_same_as_botocore(when=when, op=op)


def test_table_one_signer_rolls_its_cached_key_at_midnight_utc() -> None:
    signer = SigV4Signer("eu-west-1", "execute-api")
    before = assert_same_as_botocore(signer=signer, when=MIDNIGHT_EVE)
    after = assert_same_as_botocore(signer=signer, when=MIDNIGHT)
    again = assert_same_as_botocore(signer=signer, when=MIDNIGHT_EVE)
    assert "/20261231/" in before.headers["Authorization"]
    assert "/20270101/" in after.headers["Authorization"]
    assert again.headers["Authorization"] == before.headers["Authorization"]


def test_table_a_rotated_secret_is_not_served_a_stale_key() -> None:
    signer = SigV4Signer("eu-west-1", "execute-api")
    one = signer.sign("POST", "h", "/p/@connections/x", b"", Credentials(AKID, SECRET), 0.0)
    two = signer.sign("POST", "h", "/p/@connections/x", b"", Credentials(AKID, SECRET + "2"), 0.0)
    assert one["Authorization"] != two["Authorization"]
    assert signer.signing_key(SECRET, "19700101") != signer.signing_key(SECRET + "2", "19700101")


_ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connection_id=_ids, body=st.binary(max_size=64), op=st.sampled_from(["POST", "GET"]))
def test_random_ids_and_bodies_sign_like_botocore(connection_id: str, body: bytes, op: str) -> None:
    assert_same_as_botocore(op=op, connection_id=connection_id, body=body)


# --- pieces ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), msg=st.binary(max_size=300))
def test_hmac_sha256_matches_the_standard_library(key: bytes, msg: bytes) -> None:
    """Keys shorter than, equal to and longer than the 64-byte block; empty ones too."""
    assert hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128])
def test_hmac_sha256_at_the_block_size_edges(size: int) -> None:
    key = bytes(range(size % 256)) * (size // 256 + 1)
    key = key[:size]
    assert hmac_sha256(key, b"what do ya want for nothing?") == hmac.digest(
        key, b"what do ya want for nothing?", "sha256"
    )


def test_signing_does_not_import_hashlib() -> None:
    """The signer's point is its import cost: hashlib + hmac would add ~2 ms to it."""
    code = (
        "import sys; import warmline.connections.apigw as a; "
        "c = a.ApiGatewayConnections('http://127.0.0.1:9/dev', region='us-east-1'); "
        "c._client.signer.sign('POST', 'h', '/dev/@connections/x', b'hi', c._client.credentials,"
        " 0.0); "
        "print(sorted(m for m in ('hashlib', 'hmac', '_hashlib') if m in sys.modules))"
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]"


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8")), safe=st.sampled_from(["", "/"]))
def test_quote_matches_urllib_parse(text: str, safe: str) -> None:
    assert quote(text, safe) == urllib.parse.quote(text, safe=safe + "~")


def test_wire_path_encodes_once_and_canonical_uri_twice() -> None:
    path = connection_path("/prod", "R1kmxc2VNjMCFIA=")
    assert path == "/prod/@connections/R1kmxc2VNjMCFIA%3D"
    assert canonical_uri(path) == "/prod/%40connections/R1kmxc2VNjMCFIA%253D"
    assert connection_path("", "a/b c") == "/@connections/a%2Fb%20c"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", "/"), ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/a//b/", "/a/b/"), ("/..", "/")],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


def test_amz_date_truncates_fractions_and_uses_utc() -> None:
    assert amz_date(epoch(MIDNIGHT_EVE) + 0.999) == "20261231T235959Z"
    assert amz_date(epoch(MIDNIGHT)) == "20270101T000000Z"


# --- botocore with and without the CRT signer ------------------------------------------------

HAS_AWSCRT = importlib.util.find_spec("awscrt") is not None


@pytest.mark.slow
@pytest.mark.skipif(
    not HAS_AWSCRT,
    reason="awscrt is not installed: botocore signs in Python whatever BOTO_DISABLE_CRT says, "
    "which the in-process tests already cover",
)
@pytest.mark.parametrize("disable_crt", ["true", "false"])
def test_table_cases_hold_with_boto_disable_crt(disable_crt: str) -> None:
    # BOTO_DISABLE_CRT is read once, when botocore is imported: a fresh interpreter is needed.
    env = dict(os.environ, BOTO_DISABLE_CRT=disable_crt)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "table and not boto_disable_crt",
            str(Path(__file__)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


# --- edges pinned by mutation testing -------------------------------------------------------


@pytest.mark.parametrize("safe", ["", "/", "@", "/=+"])
def test_quote_builds_each_table_like_urllib_parse(safe: str) -> None:
    every_byte = bytes(range(128)).decode("ascii") + "é☎"
    assert quote(every_byte, safe) == urllib.parse.quote(every_byte, safe=safe + "~")
    assert quote("a/b c") == "a%2Fb%20c"  # the default keeps only the unreserved


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a/./b/../c", "a/c"), ("a/b/", "a/b/"), ("./a", "a"), ("..", ""), ("/", "/")],
)
def test_remove_dot_segments_keeps_a_relative_path_relative(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


def test_header_values_are_trimmed_and_their_inner_whitespace_collapsed() -> None:
    canonical, signed = canonical_request(
        "post",
        "/p",
        {"host": " h  x ", "x-amz-date": "20270101T000000Z", "x-amz-security-token": " a \t b "},
        "e3b0",
    )
    assert canonical.split("\n")[:6] == [
        "POST",
        "/p",
        "",
        "host:h x",
        "x-amz-date:20270101T000000Z",
        "x-amz-security-token:a b",
    ]
    assert signed == "host;x-amz-date;x-amz-security-token"


def test_credentials_repr_shows_the_key_ids_last_four_characters() -> None:
    assert repr(Credentials("AKIA0123456789WXYZ", SECRET)) == (
        "Credentials(access_key='…WXYZ', secret_key='***', token=None)"
    )
    assert repr(Credentials("AKIA0123456789WXYZ", SECRET, TOKEN)) == (
        "Credentials(access_key='…WXYZ', secret_key='***', token='***')"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ACCESS_KEY_ID": AKID},
        {"AWS_SECRET_ACCESS_KEY": SECRET},
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": SECRET},
        {},
    ],
)
def test_credentials_need_both_keys_in_the_environment(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Credentials.from_environment(env)
    assert str(raised.value) == (
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(Lambda sets them) or pass Credentials(...)"
    )


@pytest.mark.parametrize(("access", "secret"), [("", SECRET), (AKID, "")])
def test_credentials_need_both_keys(access: str, secret: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Credentials(access, secret)
    assert str(raised.value) == "AWS credentials need both an access key and a secret key"


def test_a_signer_needs_a_region_and_a_service() -> None:
    with pytest.raises(ConfigurationError) as raised:
        SigV4Signer("", "execute-api")
    assert str(raised.value) == "a SigV4 signature needs a region"
    with pytest.raises(ConfigurationError) as raised:
        SigV4Signer("eu-west-1", "")
    assert str(raised.value) == "a SigV4 signature needs a service name"


def test_without_an_argument_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-south-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    assert region_from_environment() == "ap-south-2"
    assert Credentials.from_environment() == Credentials(AKID, SECRET)


@pytest.mark.parametrize(
    "extra",
    [
        {"X-Amz-Target": "AmazonSSM.GetParameter"},
        {"X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/json"},
    ],
)
def test_extra_headers_are_signed_like_botocore(extra: dict[str, str]) -> None:
    """Headers passed to sign() are signed under their lower-case names with their values."""
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    when = dt.datetime(2027, 1, 1, 12, 0, 0)
    host, path, body = "ssm.eu-west-1.amazonaws.com", "/", b'{"Name":"p"}'
    ours = SigV4Signer("eu-west-1", "ssm").sign(
        "POST",
        host,
        path,
        body,
        Credentials(AKID, SECRET, TOKEN),
        calendar.timegm(when.timetuple()),
        headers=extra,
    )
    request = AWSRequest(method="POST", url=f"https://{host}{path}", data=body, headers=extra)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(BotoCredentials(AKID, SECRET, TOKEN), "ssm", "eu-west-1").add_auth(
            request
        )
    assert ours["Authorization"] == request.headers["Authorization"]
    names = sorted(name.lower() for name in extra)
    assert (
        f"SignedHeaders={';'.join(sorted(['host', 'x-amz-date', 'x-amz-security-token', *names]))},"
        in ours["Authorization"]
    )
