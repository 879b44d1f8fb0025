"""The reference agent behind an Amazon Connect contact flow (``contact_flow.json``).

The function's handler is ``handler``: the flow's "Invoke AWS Lambda function" blocks send
the customer's words as the ``utterance`` parameter and branch on ``$.External.next``.
Sessions live in DynamoDB so that every environment (and a transferred contact) sees the
same history; locally, leave ``WARMLINE_TABLE`` unset to use SQLite.

Environment:
    WARMLINE_TABLE: the DynamoDB table of sessions (optional).
    WARMLINE_CONNECT_TIMEOUT_S: the Lambda blocks' timeout, 1-8 (default 8).
    WARMLINE_CONNECT_BUDGET_S: time allowed for one answer before the fallback (default 3.5).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from warmline.adapters.connect_flow import connect_handler
from warmline.agent.app import build_app

if TYPE_CHECKING:
    from warmline.types import SessionStore


def _store() -> SessionStore:
    """Created at the first contact, never on a warm-up ping (boto3 stays off the init)."""
    table = os.environ.get("WARMLINE_TABLE")
    if table:
        from warmline.stores.dynamodb import DynamoDBStore

        return DynamoDBStore(table)
    from warmline.stores.sqlite import SQLiteStore

    return SQLiteStore.from_environment()


app = build_app(store=_store, name="warmline-connect")

handler = connect_handler(
    app,
    block_timeout_s=float(os.environ.get("WARMLINE_CONNECT_TIMEOUT_S", "8")),
    budget_s=float(os.environ.get("WARMLINE_CONNECT_BUDGET_S", "3.5")),
)
