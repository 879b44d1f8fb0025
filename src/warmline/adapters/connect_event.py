"""An Amazon Connect ``ContactFlowEvent`` in: read strictly, as a normalized event.

:func:`parse_contact_flow` is the only reader of the raw event (the Lambda adapter's
``to_event`` and the Connect handler both use it). The customer's turn becomes a relay
message, so a ``@app.contact_flow`` handler reads it as a ConversationRelay route would:
words in the utterance parameter are a final ``Prompt``, keys in the digits parameter a
``Dtmf``, neither is None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from warmline.core.events import ContactFlow
from warmline.errors import InvalidEventError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_DIGITS_PARAMETER",
    "DEFAULT_UTTERANCE_PARAMETER",
    "parse_contact_flow",
    "request_fingerprint",
]

#: The block parameter holding the customer's words, unless configured otherwise.
DEFAULT_UTTERANCE_PARAMETER = "utterance"
#: The block parameter holding the keys pressed (a DTMF menu), unless configured otherwise.
DEFAULT_DIGITS_PARAMETER = "digits"


def parse_contact_flow(
    raw: object,
    *,
    utterance_parameter: str = DEFAULT_UTTERANCE_PARAMETER,
    digits_parameter: str = DEFAULT_DIGITS_PARAMETER,
) -> ContactFlow:
    """Read a ``ContactFlowEvent`` strictly (docs/protocols.md §4.5).

    Args:
        raw: the event as Lambda passed it.
        utterance_parameter: the parameter whose words make the turn a ``Prompt``.
        digits_parameter: the parameter whose keys make it a ``Dtmf``.

    Returns:
        The normalized event; ``initial_contact_id`` falls back to ``contact_id``.

    Raises:
        InvalidEventError: not an object, another ``Name``, no ``Details`` /
            ``Details.ContactData`` object, no ``ContactId`` string, or a parameter,
            ``InitialContactId``, ``Channel`` or ``LanguageCode`` that is not a string
            (a ``null`` parameter counts as absent).
    """
    if not isinstance(raw, Mapping):
        raise InvalidEventError(f"a Connect event must be a JSON object, not {_kind(raw)}")
    name = raw.get("Name")
    if name is not None and name != "ContactFlowEvent":
        raise InvalidEventError(f"Name is {name!r}, not 'ContactFlowEvent'")
    details = raw.get("Details")
    if not isinstance(details, Mapping):
        raise InvalidEventError(f"Details must be an object, not {_kind(details)}")
    data = details.get("ContactData")
    if not isinstance(data, Mapping):
        raise InvalidEventError(f"Details.ContactData must be an object, not {_kind(data)}")
    contact_id = data.get("ContactId")
    if not isinstance(contact_id, str) or not contact_id.strip():
        raise InvalidEventError("Details.ContactData.ContactId must be a non-empty string")
    initial = data.get("InitialContactId")
    if initial is not None and not isinstance(initial, str):
        raise InvalidEventError(f"InitialContactId must be a string, not {_kind(initial)}")
    for field in ("Channel", "LanguageCode"):
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidEventError(f"ContactData.{field} must be a string, not {_kind(value)}")
    params = _parameters(details.get("Parameters"))
    return ContactFlow(
        contact_id=contact_id,
        initial_contact_id=initial or contact_id,
        parameters=params,
        contact_data=data,
        message=_turn_message(params, data, utterance_parameter, digits_parameter),
    )


def _parameters(params: object) -> dict[str, str]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidEventError(f"Details.Parameters must be an object, not {_kind(params)}")
    clean: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue  # an attribute that resolved to nothing: the parameter is absent
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidEventError(f"parameter {key!r} must be a string, not {_kind(value)}")
        clean[key] = value
    return clean


def _turn_message(
    params: Mapping[str, str], data: Mapping[str, Any], utterance: str, digits: str
) -> Any:
    """The customer's turn as a relay message: words, else keys, else None."""
    words = params.get(utterance, "").strip()
    keys = params.get(digits, "").strip()
    if not words and not keys:
        return None
    from warmline.core.relay import Dtmf, Prompt

    if words:
        lang = str(data.get("LanguageCode") or "en-US")
        return Prompt(voice_prompt=words, lang=lang, last=True)
    return Dtmf(digit=keys)


def request_fingerprint(event: ContactFlow) -> str:
    """What makes two invocations the same request: ContactId and every parameter.

    The canonical JSON itself, not a hash: parameters are short, and ``hashlib`` costs
    ~8 ms to import on a cold start.
    """
    params = sorted(event.parameters.items())
    return json.dumps([event.contact_id, params], ensure_ascii=False, separators=(",", ":"))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
