"""Shared aliases, and the ports re-exported from :mod:`warmline.core.ports`.

The ports (``SessionStore``, ``ConnectionClient``, ``Dispatcher``, ...) belong to the core,
which talks through them; they are defined in :mod:`warmline.core.ports` and named here
too, so ``from warmline.types import SessionStore`` keeps working. This module sits
above the core: the core never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

from warmline.core.ports import (
    ConnectionClient,
    ConnectionInfo,
    Dispatcher,
    Runner,
    SessionStore,
    SignatureCheck,
)

__all__ = [
    "JSON",
    "ConnectionClient",
    "ConnectionInfo",
    "Dispatcher",
    "Headers",
    "JSONObject",
    "LambdaContext",
    "Runner",
    "SessionStore",
    "SignatureCheck",
]

JSON: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]
Headers: TypeAlias = Mapping[str, str]


class LambdaContext(Protocol):
    """The parts of the Lambda context object warmline reads (docs/protocols.md §3.7)."""

    function_name: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...
