"""Sessions in DynamoDB: one table, strongly consistent lookups, compare-and-set by condition.

Single-table design (every key attribute is a string ``pk``):

=====================  ============================================================
``S#<session_id>``     the record: ``connection_id``, ``call_sid``, ``version``,
                       ``expires_at`` (TTL, epoch seconds), ``turn``, ``data`` (JSON)
``C#<connection_id>``  pointer to the session id, so ``by_connection`` is a
                       strongly consistent ``GetItem`` (a GSI would be eventually
                       consistent, and the next message may arrive milliseconds later)
``K#<call_sid>``       pointer for ``by_call_sid``
=====================  ============================================================

A put is one ``TransactWriteItems``: the record with a condition on its version
(``attribute_not_exists(pk)`` or an expired record for a create, ``version = :expected``
otherwise) plus its pointers; if the condition fails nothing is written and the caller
gets :class:`~warmline.errors.VersionConflictError` (docs/protocols.md §7). Expired records
are filtered on read, because DynamoDB's TTL deletes lazily, days later (§7). On-demand
capacity; TTL on ``expires_at``.

boto3 is imported on first use (``warmline[aws]``): ~160 ms that only a DynamoDB-backed
deployment pays, once per environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from warmline.core.session import DEFAULT_TTL_S, SessionRecord
from warmline.errors import (
    MissingExtraError,
    StoreError,
    StoreUnavailableError,
    VersionConflictError,
)
from warmline.stores.base import (
    check_key,
    check_record,
    check_ttl,
    decode_data,
    encode_data,
    is_live,
    stamp,
)

__all__ = ["DynamoDBStore"]

_SESSION, _CONNECTION, _CALL = "S#", "C#", "K#"


class DynamoDBStore:
    """A SessionStore on one DynamoDB table (see the module docstring for the layout).

    Args:
        table_name: the table; its partition key is the string attribute ``pk``.
        client: a boto3 DynamoDB client (default: one built from the environment).
        clock: wall-clock seconds, for TTL.
        ttl_s: lifetime given to records stored without ``expires_at``.
        endpoint_url: passed to boto3 when it builds the client.
        region_name: passed to boto3 when it builds the client.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
        ttl_s: int = DEFAULT_TTL_S,
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._clock = clock
        self._ttl_s = check_ttl(ttl_s)
        self._endpoint_url = endpoint_url
        self._region_name = region_name

    @property
    def client(self) -> Any:
        """The boto3 client, built on first use."""
        if self._client is None:
            try:
                import boto3
            except ImportError as exc:
                raise MissingExtraError("boto3", "aws") from exc
            self._client = boto3.client(
                "dynamodb", endpoint_url=self._endpoint_url, region_name=self._region_name
            )
        return self._client

    # --- table management (deploy tools and tests) -----------------------------------
    def create_table(self) -> None:
        """Create the table (on-demand) with TTL on ``expires_at``; no-op if it exists."""
        client = self.client
        try:
            client.create_table(
                TableName=self.table_name,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except client.exceptions.ResourceInUseException:
            return
        client.get_waiter("table_exists").wait(TableName=self.table_name)
        client.update_time_to_live(
            TableName=self.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )

    # --- reads -----------------------------------------------------------------------
    def _get_item(self, pk: str) -> dict[str, Any] | None:
        try:
            found = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": pk}}, ConsistentRead=True
            )
        except Exception as exc:  # botocore errors: translated at the boundary
            raise _translate(exc) from exc
        item: dict[str, Any] | None = found.get("Item")
        return item

    def get(self, session_id: str) -> SessionRecord | None:
        """The live record, or None (expired records are filtered here, not by TTL)."""
        check_key(session_id)
        return self._live(session_id)

    def _live(self, session_id: str) -> SessionRecord | None:
        item = self._get_item(_SESSION + session_id)
        if item is None:
            return None
        record = _from_item(item)
        return record if is_live(record.expires_at, self._clock()) else None

    def _by_pointer(self, prefix: str, value: str, attribute: str) -> SessionRecord | None:
        pointer = self._get_item(prefix + value)
        if pointer is None:
            return None
        record = self._live(pointer["session_id"]["S"])
        # A pointer may be stale (the record moved to another connection); trust the record.
        if record is None or getattr(record, attribute) != value:
            return None
        return record

    def by_connection(self, connection_id: str) -> SessionRecord | None:
        """The live record on this connection, or None."""
        check_key(connection_id, "connection_id")
        return self._by_pointer(_CONNECTION, connection_id, "connection_id")

    def by_call_sid(self, call_sid: str) -> SessionRecord | None:
        """The live record of this call, or None."""
        check_key(call_sid, "call_sid")
        return self._by_pointer(_CALL, call_sid, "call_sid")

    # --- writes ----------------------------------------------------------------------
    def put(self, record: SessionRecord) -> SessionRecord:
        """Compare-and-set on ``version`` (0 = create); pointers written in the same transaction."""
        check_record(record)
        encoded = encode_data(record.data, record.session_id)
        now = self._clock()
        stored = record.evolve(
            version=record.version + 1, expires_at=stamp(record, now, self._ttl_s)
        )
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": _to_item(stored, encoded),
            "ExpressionAttributeNames": {"#v": "version", "#e": "expires_at"},
        }
        if record.version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk) OR #e <= :now"
            put["ExpressionAttributeValues"] = {":now": {"N": str(int(now))}}
            del put["ExpressionAttributeNames"]["#v"]
        else:
            put["ConditionExpression"] = "#v = :expected AND #e > :now"
            put["ExpressionAttributeValues"] = {
                ":expected": {"N": str(record.version)},
                ":now": {"N": str(int(now))},
            }
        items: list[dict[str, Any]] = [{"Put": put}]
        ttl = {"N": str(stored.expires_at)}
        session = {"S": stored.session_id}
        if stored.connection_id:
            item = {"pk": {"S": _CONNECTION + stored.connection_id}, "session_id": session}
            items.append(
                {"Put": {"TableName": self.table_name, "Item": {**item, "expires_at": ttl}}}
            )
        if stored.call_sid:
            item = {"pk": {"S": _CALL + stored.call_sid}, "session_id": session}
            items.append(
                {"Put": {"TableName": self.table_name, "Item": {**item, "expires_at": ttl}}}
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if _is_condition_failure(exc):
                current = self._live(record.session_id)
                actual = current.version if current else 0
                raise VersionConflictError(record.session_id, record.version, actual) from exc
            raise _translate(exc) from exc
        return stored

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the live record and its pointers.

        Returns:
            True if a live record was deleted, False if there was none (whatever
            ``expected_version`` says: a record already gone is what the caller wanted).

        Raises:
            VersionConflictError: a live record exists and its version differs.
        """
        check_key(session_id)
        record = self._live(session_id)
        if record is None:
            return False
        if expected_version is not None and expected_version != record.version:
            raise VersionConflictError(session_id, expected_version, record.version)
        delete: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": _SESSION + session_id}},
            "ConditionExpression": "#v = :seen AND #e > :now",
            "ExpressionAttributeNames": {"#v": "version", "#e": "expires_at"},
            "ExpressionAttributeValues": {
                ":seen": {"N": str(record.version)},
                ":now": {"N": str(int(self._clock()))},
            },
        }
        items: list[dict[str, Any]] = [{"Delete": delete}]
        for prefix, value in ((_CONNECTION, record.connection_id), (_CALL, record.call_sid)):
            if value:
                pointer = {"pk": {"S": prefix + value}}
                items.append(
                    {
                        "Delete": {
                            "TableName": self.table_name,
                            "Key": pointer,
                            # Only our own pointer: a newer record may have taken it over.
                            "ConditionExpression": "attribute_not_exists(pk) OR session_id = :id",
                            "ExpressionAttributeValues": {":id": {"S": session_id}},
                        }
                    }
                )
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if _is_condition_failure(exc):
                # Someone wrote or deleted in between: decide again from what is there now.
                return self.delete(session_id, expected_version=expected_version)
            raise _translate(exc) from exc
        return True


def _to_item(record: SessionRecord, data: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": _SESSION + record.session_id},
        "session_id": {"S": record.session_id},
        "version": {"N": str(record.version)},
        "expires_at": {"N": str(record.expires_at)},
        "turn": {"N": str(record.turn)},
        "data": {"S": data},
    }
    if record.connection_id:
        item["connection_id"] = {"S": record.connection_id}
    if record.call_sid:
        item["call_sid"] = {"S": record.call_sid}
    return item


def _from_item(item: dict[str, Any]) -> SessionRecord:
    key = str(item.get("session_id", {}).get("S", "?"))
    data = decode_data(item.get("data", {}).get("S", ""), key)
    try:
        return SessionRecord(
            session_id=item["session_id"]["S"],
            connection_id=item.get("connection_id", {}).get("S", ""),
            call_sid=item.get("call_sid", {}).get("S"),
            version=int(item["version"]["N"]),
            expires_at=int(item["expires_at"]["N"]),
            turn=int(item["turn"]["N"]),
            data=data,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreError(f"unreadable session item {item.get('pk')!r}: {exc}") from exc


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _is_condition_failure(exc: Exception) -> bool:
    code = _error_code(exc)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def _translate(exc: Exception) -> StoreError:
    code = _error_code(exc)
    if code:
        return StoreError(f"DynamoDB {code}: {exc}")
    return StoreUnavailableError(f"DynamoDB unreachable: {exc}")
