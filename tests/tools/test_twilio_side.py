"""The Twilio side over HTTP: forms, signatures (twilio's validator as the oracle), TwiML."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

from warmline.errors import RemoteProtocolError
from warmline.tools.relay_rules import MAX_CONSECUTIVE_INVALID, OutboundReader
from warmline.tools.twilio_side import CallIdentity, read_twiml, request_webhook

TOKEN = "side-token"


@contextmanager
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook that records method, path, headers and body."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode() if length else ""
            seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _record  # noqa: N815 (the stdlib's names)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_webhooks_are_signed_as_twilios_validator_expects(method: str) -> None:
    from twilio.request_validator import RequestValidator

    form = CallIdentity().incoming_form()
    with recorder() as (base, seen):
        status, _ = request_webhook(f"{base}/voice?tenant=t1", form, TOKEN, method)
    assert status == 200
    (request,) = seen
    assert request["method"] == method
    url = base + request["path"]
    params = dict(parse_qsl(request["body"])) if method == "POST" else {}
    signature = request["headers"]["X-Twilio-Signature"]
    assert RequestValidator(TOKEN).validate(url, params, signature)
    received = params if method == "POST" else dict(parse_qsl(request["path"].split("?", 1)[1]))
    assert {k: v for k, v in received.items() if k != "tenant"} == form


def test_the_action_form_carries_the_call_and_the_measured_session() -> None:
    call = CallIdentity("+1555", "+1666")
    ended = call.action_form("VX1", "ended", 12.6, handoff_data='{"reason":"x"}')
    failed = call.action_form("VX2", "failed", 0.2, error=("64105", "Websocket ended"))
    for form in (ended, failed):
        assert form["CallSid"] == call.call_sid and form["AccountSid"] == call.account_sid
        assert form["ApiVersion"] == "2010-04-01" and form["CallStatus"] == "in-progress"
        assert (form["From"], form["Caller"], form["To"], form["Called"]) == (
            "+1555",
            "+1555",
            "+1666",
            "+1666",
        )
    assert (ended["SessionDuration"], ended["HandoffData"]) == ("13", '{"reason":"x"}')
    assert (failed["SessionDuration"], failed["ErrorCode"]) == ("0", "64105")
    assert call.action_form("VX3", "completed", 1)["CallStatus"] == "completed"


def test_twiml_is_read_with_relative_urls_resolved_against_where_it_came_from() -> None:
    body = (
        '<Response><Connect action="../cr-action?a=1" method="get">'
        '<ConversationRelay url="wss://h/ws" welcomeGreeting="Hi" interruptible="false" '
        'debug="debugging" events="tokens-played" futureThing="1">'
        '<Language code="es-ES" ttsProvider="google" /><Parameter name="k" value="v" />'
        "</ConversationRelay></Connect></Response>"
    )
    answer = read_twiml(body, "https://example.com/voice/twiml")
    relay = answer.relay
    assert relay is not None and answer.verbs == ["Connect"]
    assert (relay.action, relay.method) == ("https://example.com/cr-action?a=1", "GET")
    assert (relay.welcome_greeting, relay.interruptible, relay.parameters) == (
        "Hi",
        "none",
        {"k": "v"},
    )
    assert relay.channels == {"debugging", "tokens-played"}
    assert relay.attributes["futureThing"] == "1"
    assert relay.languages == [{"code": "es-ES", "ttsProvider": "google"}]
    hangup = read_twiml("<Response><Say>bye</Say><Hangup /></Response>", "https://x/")
    assert (hangup.verbs, hangup.relay) == (["Say", "Hangup"], None)
    with pytest.raises(RemoteProtocolError):
        read_twiml("<Response><Connect><ConversationRelay /></Connect></Response>", "https://x/")
    with pytest.raises(RemoteProtocolError):
        read_twiml("not xml", "https://x/")


def test_ten_invalid_frames_in_a_row_close_and_a_valid_one_resets_the_count() -> None:
    reader = OutboundReader()
    for _ in range(MAX_CONSECUTIVE_INVALID - 1):
        assert not reader.read('{"type": "sendDigits", "digits": "hello"}').close
    valid = reader.read('{"type": "text", "token": "hi", "last": true}')
    assert valid.message is not None and valid.reply is None
    outcomes = [reader.read(b"\xffnot json") for _ in range(MAX_CONSECUTIVE_INVALID)]
    assert [o.close for o in outcomes] == [False] * 9 + [True]
    reply = outcomes[0].reply
    assert reply is not None and reply["type"] == "error"
    assert reply["description"].startswith("Invalid message received, code: 64107, ")
    assert outcomes[0].frame == {"raw": "\ufffdnot json"}
