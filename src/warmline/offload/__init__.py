"""Offload: answer a turn in another function, streamed, exactly once, fenced.

A route integration dies at 29 s (docs/protocols.md §2.5); an LLM answer may take longer. The
route hands the turn to a worker through a :class:`~warmline.types.Dispatcher` and returns
in milliseconds; the worker streams the answer through ``@connections``::

    worker = TurnWorker(answer)                       # answer(turn) -> tokens
    offload(app, LambdaInvokeDispatcher("my-worker"), worker=worker)

Names are loaded on first use (module ``__getattr__``), so importing this package costs
nothing until a piece is needed: the router needs the payload and its dispatcher, not the
streaming engine.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from warmline.offload.claims import (
        Claim,
        ClaimLostError,
        TurnBusyError,
        TurnClaims,
        claim_key,
    )
    from warmline.offload.dispatchers import (
        Delivery,
        LocalDispatcher,
        SnsDispatcher,
        SqsDispatcher,
    )
    from warmline.offload.lambda_invoke import DispatchError, LambdaInvokeDispatcher
    from warmline.offload.payload import SCHEMA_VERSION, TurnPayload, is_turn_payload
    from warmline.offload.route import offload, route_mode
    from warmline.offload.stream import StreamOutcome, StreamPolicy, TurnStream
    from warmline.offload.worker import TurnContext, TurnWorker, mark_over

__all__ = [
    "SCHEMA_VERSION",
    "Claim",
    "ClaimLostError",
    "Delivery",
    "DispatchError",
    "LambdaInvokeDispatcher",
    "LocalDispatcher",
    "SnsDispatcher",
    "SqsDispatcher",
    "StreamOutcome",
    "StreamPolicy",
    "TurnBusyError",
    "TurnClaims",
    "TurnContext",
    "TurnPayload",
    "TurnStream",
    "TurnWorker",
    "claim_key",
    "is_turn_payload",
    "mark_over",
    "offload",
    "route_mode",
]

_WHERE = {
    "Claim": "claims",
    "ClaimLostError": "claims",
    "TurnBusyError": "claims",
    "TurnClaims": "claims",
    "claim_key": "claims",
    "Delivery": "dispatchers",
    "LocalDispatcher": "dispatchers",
    "SnsDispatcher": "dispatchers",
    "SqsDispatcher": "dispatchers",
    "DispatchError": "lambda_invoke",
    "LambdaInvokeDispatcher": "lambda_invoke",
    "SCHEMA_VERSION": "payload",
    "TurnPayload": "payload",
    "is_turn_payload": "payload",
    "offload": "route",
    "route_mode": "route",
    "StreamOutcome": "stream",
    "StreamPolicy": "stream",
    "TurnStream": "stream",
    "TurnContext": "worker",
    "TurnWorker": "worker",
    "mark_over": "worker",
}


__getattr__, __dir__ = lazy_names(
    __name__, {k: f"warmline.offload.{v}" for k, v in _WHERE.items()}, globals(), __all__
)
