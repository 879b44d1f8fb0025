"""What Twilio sends and reads over HTTP around a ConversationRelay call.

One :class:`CallIdentity` per call carries the SIDs and numbers that every request of the
call repeats: the incoming-call webhook, each ``setup`` frame and each ``<Connect action>``
request (docs/protocols.md §1.2, §1.7, §1.8). :func:`request_webhook` makes such a request
as Twilio does (form-encoded POST, or GET with the parameters in the query string, signed
either way: §1.5), and :func:`read_twiml` reads the TwiML that comes back:
``<Connect><ConversationRelay>`` with its attributes, ``<Language>`` and ``<Parameter>``
children, and its ``action`` resolved against the URL the TwiML came from.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from warmline.errors import RemoteProtocolError
from warmline.twilio.signature import compute_signature

__all__ = [
    "API_VERSION",
    "CallIdentity",
    "RelayTwiml",
    "TwimlAnswer",
    "read_twiml",
    "request_webhook",
]

#: ``ApiVersion`` of every voice webhook (§1.8).
API_VERSION = "2010-04-01"

#: ``ErrorCode`` / ``ErrorMessage`` of a session whose socket ended without ``end`` (§1.4).
WEBSOCKET_ENDED = ("64105", "Websocket ended")


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + os.urandom(16).hex()


@dataclass(frozen=True)
class CallIdentity:
    """The call as Twilio names it; the same values on every request of the call."""

    caller: str = "+15550100"
    callee: str = "+15550101"
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    account_sid: str = field(default_factory=lambda: new_sid("AC"))
    application_sid: str = field(default_factory=lambda: new_sid("AP"))
    direction: str = "inbound"
    caller_name: str = ""
    forwarded_from: str = ""

    def _call_fields(self, call_status: str) -> dict[str, str]:
        """The parameters every voice request carries (§1.8)."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "ApplicationSid": self.application_sid,
            "CallSid": self.call_sid,
            "CallStatus": call_status,
            "Called": self.callee,
            "Caller": self.caller,
            "Direction": self.direction,
            "From": self.caller,
            "To": self.callee,
        }

    def incoming_form(self) -> dict[str, str]:
        """The incoming-call webhook's parameters (§1.8)."""
        form = self._call_fields("ringing")
        if self.caller_name:
            form["CallerName"] = self.caller_name
        if self.forwarded_from:
            form["ForwardedFrom"] = self.forwarded_from
        return form

    def setup_frame(
        self, session_id: str, custom_parameters: dict[str, str], *, reconnected: bool
    ) -> dict[str, Any]:
        """The ``setup`` frame of one session (§1.2): ``callStatus`` is ``RINGING`` on the
        call's first session, ``IN_PROGRESS`` on a session connected again by ``action``."""
        return {
            "type": "setup",
            "sessionId": session_id,
            "accountSid": self.account_sid,
            "parentCallSid": "",
            "callSid": self.call_sid,
            "from": self.caller,
            "to": self.callee,
            "forwardedFrom": self.forwarded_from,
            "callType": "PSTN",
            "callerName": self.caller_name,
            "direction": self.direction,
            "callStatus": "IN_PROGRESS" if reconnected else "RINGING",
            "customParameters": custom_parameters,
        }

    def action_form(
        self,
        session_id: str,
        status: str,
        duration_s: float,
        *,
        handoff_data: str | None = None,
        error: tuple[str, str] | None = None,
    ) -> dict[str, str]:
        """The ``<Connect action>`` request's parameters when a session ends (§1.7).

        Args:
            status: ``ended`` (the app sent ``end``), ``completed`` (the caller hung up)
                or ``failed`` (the socket ended without ``end``).
            duration_s: how long the session's socket was open, as measured.
            handoff_data: the ``end`` frame's ``handoffData``.
            error: ``(ErrorCode, ErrorMessage)`` of a failed session.
        """
        form = self._call_fields("completed" if status == "completed" else "in-progress")
        form["SessionId"] = session_id
        form["SessionStatus"] = status
        form["SessionDuration"] = str(max(0, round(duration_s)))
        if handoff_data is not None:
            form["HandoffData"] = handoff_data
        if error is not None:
            form["ErrorCode"], form["ErrorMessage"] = error
        return form


@dataclass
class RelayTwiml:
    """A ``<Connect><ConversationRelay>``, as the caller simulator needs it.

    ``attributes`` keeps every attribute as written (unknown ones too); the properties
    read the ones that change what Twilio does on the socket, with Twilio's defaults
    (§1.6).
    """

    url: str
    parameters: dict[str, str] = field(default_factory=dict)
    action: str | None = None
    method: str = "POST"
    attributes: dict[str, str] = field(default_factory=dict)
    languages: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def for_socket(
        cls, url: str, *, welcome_greeting: str | None = None, dtmf_detection: bool = True
    ) -> RelayTwiml:
        """A relay known by its WebSocket URL only (``warmline call --ws``): no action,
        DTMF on so that scripted key presses reach the server."""
        attributes = {"url": url, "dtmfDetection": "true" if dtmf_detection else "false"}
        if welcome_greeting:
            attributes["welcomeGreeting"] = welcome_greeting
        return cls(url, attributes=attributes)

    def _flag(self, name: str, default: bool = False) -> bool:
        value = self.attributes.get(name)
        return default if value is None else value.strip().lower() == "true"

    @property
    def welcome_greeting(self) -> str | None:
        return self.attributes.get("welcomeGreeting") or None

    @property
    def dtmf_detection(self) -> bool:
        return self._flag("dtmfDetection")

    @property
    def partial_prompts(self) -> bool:
        return self._flag("partialPrompts")

    @property
    def interruptible(self) -> str:
        """Which caller input can cut the agent's speech: ``none``/``dtmf``/``speech``/``any``."""
        return _interrupt_mode(self.attributes.get("interruptible"))

    @property
    def welcome_greeting_interruptible(self) -> str:
        return _interrupt_mode(self.attributes.get("welcomeGreetingInterruptible"))

    @property
    def channels(self) -> frozenset[str]:
        """The ``info`` channels subscribed through ``debug`` and ``events``."""
        words = (self.attributes.get("debug", "") + " " + self.attributes.get("events", "")).split()
        return frozenset(words)

    @property
    def transcription_language(self) -> str:
        return (
            self.attributes.get("transcriptionLanguage")
            or self.attributes.get("language")
            or "en-US"
        )

    @property
    def tts_language(self) -> str:
        return self.attributes.get("ttsLanguage") or self.attributes.get("language") or "en-US"


def _interrupt_mode(value: str | None) -> str:
    """``true``/``false`` mean ``any``/``none``; absent means ``any`` (§1.6)."""
    if value is None:
        return "any"
    mode = value.strip().lower()
    return {"true": "any", "false": "none"}.get(mode, mode)


@dataclass
class TwimlAnswer:
    """What a TwiML document tells Twilio to do next."""

    body: str
    #: the top-level verbs in order (``Connect``, ``Say``, ``Dial``, ``Hangup``...).
    verbs: list[str]
    relay: RelayTwiml | None


def read_twiml(body: str, base_url: str) -> TwimlAnswer:
    """Read a TwiML answer; relative URLs in it resolve against ``base_url``, the URL it
    was fetched from, as Twilio resolves them (§1.8).

    Raises:
        RemoteProtocolError: the body is not a TwiML ``<Response>``, or its
            ``<ConversationRelay>`` has no ``url``.
    """
    try:
        root = ET.fromstring(body.encode())
    except ET.ParseError as exc:
        raise RemoteProtocolError(f"TwiML is not XML: {exc}") from exc
    if root.tag != "Response":
        raise RemoteProtocolError(f"TwiML root is <{root.tag}>, not <Response>")
    verbs = [child.tag for child in root]
    connect = root.find("Connect")
    element = connect.find("ConversationRelay") if connect is not None else None
    if connect is None or element is None:
        return TwimlAnswer(body, verbs, None)
    if not element.get("url"):
        raise RemoteProtocolError("<ConversationRelay> has no url")
    action = connect.get("action")
    relay = RelayTwiml(
        url=str(element.get("url")),
        parameters={p.get("name", ""): p.get("value", "") for p in element.findall("Parameter")},
        action=urljoin(base_url, action) if action else None,
        method=(connect.get("method") or "POST").upper(),
        attributes=dict(element.attrib),
        languages=[dict(lang.attrib) for lang in element.findall("Language")],
    )
    return TwimlAnswer(body, verbs, relay)


def request_webhook(
    url: str, form: dict[str, str], auth_token: str | None, method: str = "POST"
) -> tuple[int, str]:
    """Request ``url`` as Twilio requests a voice webhook; (status, body).

    POST sends ``form`` form-encoded and signs the URL plus the parameters; GET appends
    them to the query string and signs that whole URL with no parameters (§1.5). Nothing
    is signed without ``auth_token``.

    Raises:
        RemoteProtocolError: ``method`` is neither GET nor POST.
        OSError: the server cannot be reached.
    """
    from warmline.http1 import Http1Connection, client_tls, message, split_endpoint

    method = method.upper()
    if method not in ("GET", "POST"):
        raise RemoteProtocolError(f"webhook method must be GET or POST, not {method!r}")
    if method == "GET":
        url = url + ("&" if urlsplit(url).query else "?") + urlencode(form)
        form = {}
    scheme, host, port, host_header, path = split_endpoint(url.split("?", 1)[0], "webhook")
    query = urlsplit(url).query
    headers = [("Host", host_header), ("Connection", "close")]
    body = b""
    if method == "POST":
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = urlencode(form).encode()
    if auth_token:
        headers.append(("X-Twilio-Signature", compute_signature(url, form, auth_token)))
    tls = client_tls(None) if scheme == "https" else None
    conn = Http1Connection(host, port, timeout_s=10, tls=tls)
    target = (path or "/") + (f"?{query}" if query else "")
    try:
        response = conn.request(message(method, target, headers, body))
    finally:
        conn.close()
    return response.status, response.body.decode("utf-8", errors="replace")
