"""``--aws-profile``: a function's call to a service warmline does not emulate reaches AWS
re-signed with the profile's credentials (a local TLS server stands in for AWS)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from proxy_helpers import read_request

from warmline.aws.credentials import Credentials
from warmline.config import parse_config
from warmline.dev.gateway.tls import make_certificates, server_context
from warmline.dev.iam.principals import Principal
from warmline.dev.iam.verify import verify
from warmline.dev.proxy.authorize import Denial, ProxiedRequest
from warmline.dev.proxy.upstream import AwsUpstream, resolve_credentials
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer
from warmline.errors import ConfigurationError

PROFILE_KEY = "AKIAFAKEPROFILE00001"
PROFILE_SECRET = "fakeProfileSecretKey0000000000000000000"
HOST = "translate.us-east-1.amazonaws.com"
APP = """
import os
import boto3

def handler(event, context):
    if event.get("what") == "bundle":
        with open(os.environ["AWS_CA_BUNDLE"]) as bundle:
            return {"certs": bundle.read().count("BEGIN CERTIFICATE")}
    client = boto3.client("translate")
    out = client.translate_text(Text="hello", SourceLanguageCode="en", TargetLanguageCode="es")
    return {"text": out["TranslatedText"], "own": boto3.Session().get_credentials().access_key}
"""


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake profile ``wl-test`` in files named by the variables boto3 reads."""
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[wl-test]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = {PROFILE_SECRET}\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile wl-test]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return "wl-test"


def test_the_profile_resolves_and_an_unknown_one_is_refused(profile: str) -> None:
    assert resolve_credentials(profile)() == Credentials(PROFILE_KEY, PROFILE_SECRET)
    with pytest.raises(ConfigurationError, match="profile 'nope'"):
        resolve_credentials("nope")


def test_a_call_signed_with_a_key_of_another_run_is_not_re_signed(profile: str) -> None:
    upstream = AwsUpstream(resolve_credentials(profile), {"ASIALOCALKEY"})
    auth = "AWS4-HMAC-SHA256 Credential=ASIAOTHER/20260101/us-east-1/translate/aws4_request, "
    auth += "SignedHeaders=host;x-amz-date, Signature=00"
    request = ProxiedRequest(HOST, "translate", "POST", "/", (("Authorization", auth),), b"{}")
    denial = upstream.resign(request)
    assert isinstance(denial, Denial) and denial.code == "UnrecognizedClientException"


async def _fake_aws(tmp_path: Path, seen: list[bytes]) -> tuple[asyncio.Server, ssl.SSLContext]:
    (tmp_path / "aws-certs").mkdir()
    certs = make_certificates(tmp_path / "aws-certs", [HOST])

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        body = json.dumps(
            {"TranslatedText": "hola", "SourceLanguageCode": "en", "TargetLanguageCode": "es"}
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context(certs))
    return server, ssl.create_default_context(cafile=str(certs.ca_cert))


@pytest.mark.slow
def test_a_function_reaches_aws_with_the_profile_and_keeps_its_local_keys(
    tmp_path: Path, profile: str
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    raw = {"functions": {"app": {"handler": "app.handler", "code": str(code), "timeout": 30}}}
    config = parse_config(raw, base_dir=tmp_path)
    seen: list[bytes] = []

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], str]:
        fake, trust = await _fake_aws(tmp_path, seen)
        port = fake.sockets[0].getsockname()[1]
        sink = LogSink(console=None)
        server = DevServer(config, port=0, log_sink=sink, aws_profile=profile)
        assert server.aws.upstream is not None
        server.aws.upstream.address = lambda host: ("127.0.0.1", port)
        server.aws.upstream.tls = trust
        await server.start()
        try:
            called = await server.invoke("app", {})
            bundle = await server.invoke("app", {"what": "bundle"})
            own_key = server.iam.by_key
            local = next(k for k, p in own_key.items() if p.function == "app")
            assert called.status == "ok", called.error
            return called.payload, bundle.payload, local
        finally:
            await server.close()
            sink.close()
            fake.close()

    called, bundle, local_key = asyncio.run(scenario())
    assert called == {"text": "hola", "own": local_key}  # its own session: the role's keys
    assert bundle["certs"] >= 2  # the system's CAs and the emulator's
    (request,) = seen
    assert local_key.encode() not in request  # the local keys never leave
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    assert f"Credential={PROFILE_KEY}/" in dict(headers)["Authorization"]
    principal = Principal("dev", "arn", Credentials(PROFILE_KEY, PROFILE_SECRET), ())
    verify(
        {PROFILE_KEY: principal},
        method=method,
        path=target,
        query="",
        headers=headers,  # type: ignore[arg-type]
        body=body,
        region="us-east-1",
        service="translate",
        now=time.time(),
    )  # raises SignatureRejected unless AWS would accept the profile's signature
