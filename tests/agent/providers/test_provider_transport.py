"""Base URLs, Host headers, redaction, exception mapping and pre-warming of the transport."""

from __future__ import annotations

import pytest

from warmline.agent.providers import transport
from warmline.agent.providers.errors import ProviderError, redact
from warmline.agent.providers.fallback import ApologizingAnswerer
from warmline.agent.providers.openai import OpenAIChatAnswerer
from warmline.agent.providers.transport import Endpoint, describe_exception, parse_base_url
from warmline.errors import ConfigurationError
from warmline.http1 import ProtocolError, RemoteDisconnected


@pytest.mark.parametrize(
    ("url", "endpoint", "host"),
    [
        (
            "https://api.openai.com/v1",
            Endpoint("https", "api.openai.com", 443, "/v1"),
            "api.openai.com",
        ),
        (
            "http://localhost:11434/v1/",
            Endpoint("http", "localhost", 11434, "/v1"),
            "localhost:11434",
        ),
        ("http://127.0.0.1", Endpoint("http", "127.0.0.1", 80, ""), "127.0.0.1"),
        ("https://h.example:8443", Endpoint("https", "h.example", 8443, ""), "h.example:8443"),
        ("http://[::1]:8000/v1", Endpoint("http", "::1", 8000, "/v1"), "[::1]:8000"),
    ],
)
def test_base_urls_and_host_headers(url: str, endpoint: Endpoint, host: str) -> None:
    assert parse_base_url(url) == endpoint
    assert endpoint.host_header == host


@pytest.mark.parametrize(
    "url", ["api.openai.com/v1", "ftp://h/", "http://", "http://h/?x=1", "http://h:99999"]
)
def test_bad_base_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_base_url(url)


def test_a_base_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_base_url("https://user:hunter2-secret@llm.example/v1")
    assert "hunter2-secret" not in str(info.value)


def test_redact_replaces_every_secret_and_skips_short_or_missing_ones() -> None:
    text = "key sk-123456 and token tok/+= and abc"
    assert redact(text, ["sk-123456", None, "tok/+=", "abc"]) == "key *** and token *** and abc"


@pytest.mark.parametrize(
    ("exc", "started", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), False, "connect"),
        (TimeoutError("timed out"), False, "timeout"),
        (TimeoutError("timed out"), True, "timeout"),
        (RemoteDisconnected("the peer closed the connection mid-answer"), True, "stream"),
        (RemoteDisconnected("closed"), False, "stream"),
        (ConnectionResetError(104, "reset"), True, "stream"),
        (ProtocolError("not an HTTP/1.x status line: 'SSH-2.0'"), False, "protocol"),
        (OSError(-2, "Name or service not known"), False, "connect"),
    ],
)
def test_transport_exceptions_map_to_provider_error_kinds(
    exc: BaseException, started: bool, kind: str
) -> None:
    error = describe_exception(exc, provider="openai", secrets=("s3cr3t-key",), started=started)
    assert isinstance(error, ProviderError) and error.kind == kind
    assert str(error).startswith("openai: ")


def test_the_exception_text_is_redacted() -> None:
    error = describe_exception(
        OSError("proxy refused Bearer s3cr3t-key"),
        provider="openai",
        secrets=("s3cr3t-key",),
        started=False,
    )
    assert "s3cr3t-key" not in str(error) and "***" in str(error)


def test_prewarm_loads_the_tls_context_once_for_https() -> None:
    llm = OpenAIChatAnswerer("https://api.openai.com/v1", "k" * 20, "m")
    ApologizingAnswerer(llm).prewarm()
    context = transport._ssl_context
    assert context is not None
    assert transport.ssl_context() is context
