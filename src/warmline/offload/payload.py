"""The turn payload: everything a worker needs to answer one turn, as small versioned JSON.

Why a schema of its own: the payload crosses a process boundary (Lambda async invoke, SNS,
SQS, docs/protocols.md §3.4, §4.2, §4.3) and may be delivered late, twice, or to a worker
deployed from a newer or older commit. So it is explicit about its version, carries no
live objects, and is validated field by field on the way in: a malformed payload raises
:class:`~warmline.errors.InvalidEventError` naming the field, and the worker logs and drops
it (a retry of garbage would fail the same way, forever).

Wire form (version 1)::

    {"kind": "warmline.turn", "v": 1,
     "connectionId": "R1kmxc2VNjMCFIA=", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
     "stage": "prod", "sessionId": "VX...", "turn": 3,
     "prompt": "what are your opening hours", "lang": "en-US", "createdAt": 1763900000.123}

Unknown extra fields are kept in :attr:`TurnPayload.extra` (a newer router may add some);
a ``v`` newer than :data:`SCHEMA_VERSION` is refused, since its meaning is unknown here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from warmline.errors import InvalidEventError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.events import ConnectionRef
    from warmline.core.session import SessionRecord

__all__ = [
    "KIND",
    "MAX_TURN_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "TurnPayload",
    "is_turn_payload",
]

#: The ``kind`` discriminator, so a worker can tell a turn from other async work.
KIND = "warmline.turn"
#: The payload schema this module writes and the newest it reads.
SCHEMA_VERSION = 1
#: Largest encoded payload: the smallest async limit on the three paths (SNS and SQS
#: 256 KB; Lambda async invoke 1 MB, 256 KB in older documentation) (docs/protocols.md §3.4).
MAX_TURN_PAYLOAD_BYTES = 256 * 1024

_REQUIRED_STR = ("connectionId", "sessionId")
_OPTIONAL_STR = ("domainName", "stage", "prompt", "lang")
_KNOWN = frozenset(("kind", "v", "turn", "createdAt", *_REQUIRED_STR, *_OPTIONAL_STR))


def is_turn_payload(payload: object) -> bool:
    """True when ``payload`` says it is a warmline turn (whether or not it is valid)."""
    return isinstance(payload, Mapping) and payload.get("kind") == KIND


@dataclass(frozen=True, slots=True)
class TurnPayload:
    """One turn handed to a worker.

    Attributes:
        connection_id: the API Gateway connection to answer on.
        domain_name: ``requestContext.domainName`` (the ``@connections`` endpoint host).
        stage: ``requestContext.stage``.
        session_id: the session record's key (fencing and claims live under it).
        turn: the session's turn number when the prompt arrived (the fence).
        prompt: what the caller said.
        lang: the prompt's language tag, ``""`` if unknown.
        created_at: epoch seconds when the router dispatched the turn.
        extra: unknown fields of the wire form, kept as they came.
    """

    connection_id: str
    session_id: str
    turn: int
    prompt: str = ""
    lang: str = ""
    domain_name: str = ""
    stage: str = ""
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.connection_id, str) or not self.connection_id:
            raise InvalidEventError("turn payload: connectionId must be a non-empty string")
        if not isinstance(self.session_id, str) or not self.session_id:
            raise InvalidEventError("turn payload: sessionId must be a non-empty string")
        if not isinstance(self.turn, int) or isinstance(self.turn, bool) or self.turn < 0:
            raise InvalidEventError(f"turn payload: turn must be an int >= 0, not {self.turn!r}")

    @classmethod
    def for_turn(
        cls,
        conn: ConnectionRef,
        session: SessionRecord,
        prompt: str,
        lang: str,
        created_at: float,
        extra: dict[str, Any] | None = None,
    ) -> TurnPayload:
        """The payload of ``session``'s current turn, answered on ``conn``."""
        return cls(
            connection_id=conn.connection_id,
            session_id=session.session_id,
            turn=session.turn,
            prompt=prompt,
            lang=lang,
            domain_name=conn.domain_name,
            stage=conn.stage,
            created_at=created_at,
            extra=dict(extra or {}),
        )

    @property
    def key(self) -> str:
        """``session#turn``: the identity of this unit of work (for logs and dedup ids)."""
        return f"{self.session_id}#{self.turn}"

    def to_dict(self) -> dict[str, Any]:
        """The wire form (a JSON object)."""
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            {
                "kind": KIND,
                "v": SCHEMA_VERSION,
                "connectionId": self.connection_id,
                "domainName": self.domain_name,
                "stage": self.stage,
                "sessionId": self.session_id,
                "turn": self.turn,
                "prompt": self.prompt,
                "lang": self.lang,
                "createdAt": self.created_at,
            }
        )
        return doc

    def to_json(self) -> str:
        """The wire form as compact JSON text.

        Raises:
            InvalidEventError: over :data:`MAX_TURN_PAYLOAD_BYTES` once encoded.
        """
        text = json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # a lone surrogate cannot cross any wire
            raise InvalidEventError("turn payload has text that is not valid Unicode") from exc
        if size > MAX_TURN_PAYLOAD_BYTES:
            raise InvalidEventError(
                f"turn payload is {size} bytes, over the {MAX_TURN_PAYLOAD_BYTES}-byte limit"
            )
        return text

    @classmethod
    def from_dict(cls, doc: object) -> TurnPayload:
        """Validate and read the wire form.

        Args:
            doc: the decoded JSON (a WorkerTask's payload).

        Returns:
            The payload.

        Raises:
            InvalidEventError: not a turn payload, a newer schema, or a field of the wrong
                type; the message names the field.
        """
        if not isinstance(doc, Mapping):
            raise InvalidEventError(f"turn payload must be a JSON object, not {type(doc).__name__}")
        if doc.get("kind") != KIND:
            raise InvalidEventError(f"not a turn payload: kind is {doc.get('kind')!r}")
        version = doc.get("v")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidEventError(f"turn payload: v must be an int >= 1, not {version!r}")
        if version > SCHEMA_VERSION:
            raise InvalidEventError(
                f"turn payload v{version} is newer than this worker reads (v{SCHEMA_VERSION})"
            )
        for name in _REQUIRED_STR:
            value = doc.get(name)
            if not isinstance(value, str) or not value:
                raise InvalidEventError(f"turn payload: {name} must be a non-empty string")
        for name in _OPTIONAL_STR:
            value = doc.get(name, "")
            if not isinstance(value, str):
                raise InvalidEventError(f"turn payload: {name} must be a string")
        for name in (*_REQUIRED_STR, *_OPTIONAL_STR):
            try:
                str(doc.get(name, "")).encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate: no wire can carry it
                raise InvalidEventError(f"turn payload: {name} is not valid Unicode") from exc
        turn = doc.get("turn")
        if not isinstance(turn, int) or isinstance(turn, bool) or turn < 0:
            raise InvalidEventError(f"turn payload: turn must be an int >= 0, not {turn!r}")
        created = doc.get("createdAt", 0.0)
        if not isinstance(created, int | float) or isinstance(created, bool):
            raise InvalidEventError("turn payload: createdAt must be a finite number")
        try:
            finite = math.isfinite(created)  # an int past 1e308 overflows here
        except OverflowError:
            finite = False
        if not finite:
            raise InvalidEventError("turn payload: createdAt must be a finite number")
        return cls(
            connection_id=doc["connectionId"],
            session_id=doc["sessionId"],
            turn=turn,
            prompt=doc.get("prompt", ""),
            lang=doc.get("lang", ""),
            domain_name=doc.get("domainName", ""),
            stage=doc.get("stage", ""),
            created_at=float(created),
            extra={k: v for k, v in doc.items() if k not in _KNOWN},
        )
