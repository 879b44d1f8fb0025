"""A phone call as Twilio places it, following ``<Connect action>`` answers as Twilio does.

Small on purpose (``warmline call`` is the full simulator): the incoming-call webhook, the
``<ConversationRelay>`` WebSocket with a signed handshake and a ``setup``, prompts, and at
the end of each relay session the action request Twilio makes (docs/protocols.md §1.7):

- after the server's ``end``: ``SessionStatus=ended``, ``CallStatus=in-progress`` and the
  ``HandoffData`` as sent;
- after the socket dropped: ``SessionStatus=failed``, ``ErrorCode=64105``.

When the action answer is another ``<Connect><ConversationRelay>`` the call goes on: a new
WebSocket to its ``url``, the same ``CallSid``, a new ``sessionId``, the ``<Parameter>`` elements
in ``customParameters``. Any other answer ends the call (:attr:`RelayCaller.ended_with`).
A prompt whose session dropped before it was answered is said again on the next session,
as a person on the phone repeats what got no answer.

Used by the reconnect tests and by ``bench/load.py --rolling-restart``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from warmline.twilio.signature import compute_signature

__all__ = ["CallEnded", "RelayCaller"]

ACCOUNT_SID = "AC" + "0" * 32


class CallEnded(Exception):
    """The call is over (the action answer did not connect it again)."""


class _Dropped(Exception):
    """The socket dropped mid-turn; the call was connected again."""


@dataclass
class _Connect:
    action: str
    method: str
    url: str
    parameters: dict[str, str]


def _connect_of(twiml: str) -> _Connect | None:
    root = ET.fromstring(twiml)
    connect_el = root.find("Connect")
    relay = connect_el.find("ConversationRelay") if connect_el is not None else None
    if connect_el is None or relay is None:
        return None
    params = {p.get("name", ""): p.get("value", "") for p in relay.findall("Parameter")}
    return _Connect(
        action=connect_el.get("action", ""),
        method=connect_el.get("method", "POST"),
        url=relay.get("url", ""),
        parameters=params,
    )


@dataclass
class RelayCaller:
    """One call. ``await start()``, then ``await ask(text)`` per turn, ``await hang_up()``.

    Args:
        twiml_url: the incoming-call webhook.
        token: the Twilio auth token that signs every request.
        greets: the server says something on each ``setup`` (one talk cycle to skip).
        timeout_s: longest wait for one frame.
    """

    twiml_url: str
    token: str
    greets: bool = True
    timeout_s: float = 15.0
    call_sid: str = field(default_factory=lambda: "CA" + os.urandom(16).hex())
    #: one entry per relay session: (session id, the action answer's first element).
    sessions: list[tuple[str, str]] = field(default_factory=list)
    ended_with: str = ""
    greetings: list[str] = field(default_factory=list)
    #: ``handoffData`` of each ``end`` the server sent.
    handoffs: list[str] = field(default_factory=list)
    #: prompts said again after a dropped session.
    repeated: int = 0
    _ws: ClientConnection | None = None
    _connect: _Connect | None = None
    _session_id: str = ""
    _started: float = 0.0

    # --- the call ------------------------------------------------------------------------
    async def start(self) -> None:
        """Ring the webhook and connect the relay session it names."""
        answer = await asyncio.to_thread(self._post, self.twiml_url, self._form("ringing"))
        target = _connect_of(answer)
        if target is None:
            raise CallEnded(f"the webhook did not connect the call: {answer}")
        await self._open(target)

    async def ask(self, text: str) -> str:
        """Say ``text``; the answer, following reconnects until it arrives.

        Raises:
            CallEnded: the call ended before the answer.
            TimeoutError: no frame within ``timeout_s``.
        """
        while True:
            assert self._ws is not None
            try:
                await self._ws.send(_prompt(text))
                return await self._talk_cycle()
            except _Dropped:
                self.repeated += 1
            except ConnectionClosed:
                await self._session_over(None)
                self.repeated += 1

    async def race_end(self, text: str) -> str:
        """Wait for the server's ``end``, say ``text`` on the old socket before following it
        (the caller spoke while ``end`` was on its way), and return the answer to ``text``
        from the session that resumes the call."""
        while True:
            assert self._ws is not None
            frame = json.loads(await asyncio.wait_for(self._ws.recv(), self.timeout_s))
            if frame.get("type") == "end":
                await self._ws.send(_prompt(text))
                await self._session_over(frame.get("handoffData"))
                return await self._talk_cycle()

    async def hang_up(self) -> None:
        """The caller hangs up (Twilio closes the socket with 1000)."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    # --- internals -----------------------------------------------------------------------
    async def _open(self, target: _Connect) -> None:
        self._connect = target
        self._session_id = "VX" + os.urandom(16).hex()
        headers = {"X-Twilio-Signature": compute_signature(target.url, {}, self.token)}
        self._ws = await connect(target.url, additional_headers=headers, compression=None)
        self._started = time.monotonic()
        setup = {
            "type": "setup",
            "sessionId": self._session_id,
            "accountSid": ACCOUNT_SID,
            "parentCallSid": "",
            "callSid": self.call_sid,
            "from": "+15550100",
            "to": "+15550101",
            "forwardedFrom": "",
            "callType": "PSTN",
            "callerName": "",
            "direction": "inbound",
            "callStatus": "IN_PROGRESS" if self.sessions else "RINGING",
            "customParameters": target.parameters,
        }
        await self._ws.send(json.dumps(setup))
        if self.greets:
            self.greetings.append(await self._talk_cycle())

    async def _talk_cycle(self) -> str:
        """The text of the next talk cycle (up to ``last: true``), across reconnects."""
        tokens: list[str] = []
        while True:
            assert self._ws is not None
            try:
                raw = await asyncio.wait_for(self._ws.recv(), self.timeout_s)
            except ConnectionClosed:
                await self._session_over(None)
                raise _Dropped from None
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "end":
                await self._session_over(frame.get("handoffData"))
                continue
            if kind != "text":
                continue
            tokens.append(frame.get("token", ""))
            if frame.get("last"):
                return "".join(tokens)

    async def _session_over(self, handoff: str | None) -> None:
        """The relay session ended: make the action request and follow its answer."""
        assert self._connect is not None
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        form = self._form("in-progress")
        form["SessionId"] = self._session_id
        form["SessionDuration"] = str(max(1, round(time.monotonic() - self._started)))
        if handoff is not None:
            self.handoffs.append(handoff)
            form["SessionStatus"] = "ended"
            form["HandoffData"] = handoff
        else:
            form["SessionStatus"] = "failed"
            form["ErrorCode"] = "64105"
            form["ErrorMessage"] = "Websocket ended"
        action = urllib.parse.urljoin(self.twiml_url, self._connect.action)
        answer = await asyncio.to_thread(self._post, action, form)
        target = _connect_of(answer)
        root = ET.fromstring(answer)
        self.sessions.append((self._session_id, root[0].tag if len(root) else ""))
        if target is None:
            self.ended_with = answer
            raise CallEnded(answer)
        await self._open(target)

    def _form(self, status: str) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": status,
            "Direction": "inbound",
            "From": "+15550100",
            "To": "+15550101",
        }

    def _post(self, url: str, form: dict[str, str]) -> str:
        headers = {"X-Twilio-Signature": compute_signature(url, form, self.token)}
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: str = response.read().decode()
                return body
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            exc.close()
            raise CallEnded(f"{url} answered {exc.code}: {detail}") from None


def _prompt(text: str) -> str:
    return json.dumps({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True})
