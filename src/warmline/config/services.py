"""The AWS resources a stack declares that ``warmline dev`` creates in its local services.

A template's DynamoDB tables, SQS queues, SNS topics, S3 buckets, SSM parameters and
Secrets Manager secrets are read by the template readers into one :class:`ServiceResources`
(``DevConfig.services``); the emulator starts one moto server for them and creates each
resource under the name ``Ref`` gives it in the template, so the names functions read from
their environment are the names that exist locally. Only what a resource needs in order to
be used is kept: a table's keys, indexes and TTL attribute (streams stay off), a queue's
FIFO flag, a parameter's type and value.

Each value object checks its own shape at construction (``ValueError`` naming the problem),
so a reader only has to locate the error in its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Bucket",
    "Index",
    "Parameter",
    "Queue",
    "Secret",
    "ServiceResources",
    "Table",
    "Topic",
]

#: DynamoDB key attribute types (AWS::DynamoDB::Table AttributeDefinition: S, N or B).
_ATTRIBUTE_TYPES = ("S", "N", "B")
#: KeySchema roles: exactly one HASH, then at most one RANGE.
_KEY_TYPES = ("HASH", "RANGE")
#: Projection types of a secondary index.
_PROJECTIONS = ("ALL", "KEYS_ONLY", "INCLUDE")
#: SSM parameter types (AWS::SSM::Parameter Type).
_PARAMETER_TYPES = ("String", "StringList", "SecureString")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")


def _check_keys(keys: tuple[tuple[str, str], ...], what: str) -> None:
    roles = [role for _, role in keys]
    if roles not in (["HASH"], ["HASH", "RANGE"]):
        raise ValueError(f"{what} key schema must be one HASH key, then at most one RANGE key")


@dataclass(frozen=True, slots=True)
class Index:
    """A global or local secondary index.

    Attributes:
        name: IndexName.
        keys: (attribute, ``HASH``/``RANGE``) pairs.
        projection: ``ALL``, ``KEYS_ONLY`` or ``INCLUDE``.
        non_key_attributes: projected attributes with ``INCLUDE``.
    """

    name: str
    keys: tuple[tuple[str, str], ...]
    projection: str = "ALL"
    non_key_attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_keys(self.keys, f"index {self.name}")
        if self.projection not in _PROJECTIONS:
            raise ValueError(f"index {self.name}: projection must be one of {_PROJECTIONS}")

    def request(self) -> dict[str, Any]:
        """The index as DynamoDB's CreateTable request writes it."""
        projection: dict[str, Any] = {"ProjectionType": self.projection}
        if self.non_key_attributes:
            projection["NonKeyAttributes"] = list(self.non_key_attributes)
        return {
            "IndexName": self.name,
            "KeySchema": [{"AttributeName": a, "KeyType": r} for a, r in self.keys],
            "Projection": projection,
        }


@dataclass(frozen=True, slots=True)
class Table:
    """A DynamoDB table (on-demand capacity; streams off).

    Attributes:
        name: TableName (what ``Ref`` gives).
        keys: (attribute, ``HASH``/``RANGE``) pairs.
        attributes: (attribute, ``S``/``N``/``B``) for every key attribute.
        global_indexes, local_indexes: the secondary indexes.
        ttl_attribute: the TimeToLive attribute, when enabled.
        resource: the logical id or address it came from (for the start-up listing).
    """

    name: str
    keys: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...]
    global_indexes: tuple[Index, ...] = ()
    local_indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    resource: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"table name {self.name!r}: 3-255 of A-Z a-z 0-9 _ . -")
        _check_keys(self.keys, f"table {self.name}")
        defined = dict(self.attributes)
        for attr, kind in self.attributes:
            if kind not in _ATTRIBUTE_TYPES:
                raise ValueError(f"attribute {attr}: type must be S, N or B, got {kind!r}")
        for index in (None, *self.global_indexes, *self.local_indexes):
            keys = self.keys if index is None else index.keys
            for attr, _ in keys:
                if attr not in defined:
                    raise ValueError(f"key attribute {attr!r} is not in AttributeDefinitions")

    def request(self) -> dict[str, Any]:
        """DynamoDB's CreateTable request for this table."""
        body: dict[str, Any] = {
            "TableName": self.name,
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": t} for a, t in self.attributes
            ],
            "KeySchema": [{"AttributeName": a, "KeyType": r} for a, r in self.keys],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.global_indexes:
            body["GlobalSecondaryIndexes"] = [i.request() for i in self.global_indexes]
        if self.local_indexes:
            body["LocalSecondaryIndexes"] = [i.request() for i in self.local_indexes]
        return body


@dataclass(frozen=True, slots=True)
class Queue:
    """An SQS queue (``.fifo`` names are FIFO queues, as SQS requires)."""

    name: str
    resource: str = ""

    @property
    def fifo(self) -> bool:
        """Whether SQS treats it as a FIFO queue."""
        return self.name.endswith(".fifo")


@dataclass(frozen=True, slots=True)
class Topic:
    """An SNS topic."""

    name: str
    resource: str = ""


@dataclass(frozen=True, slots=True)
class Bucket:
    """An S3 bucket."""

    name: str
    resource: str = ""


@dataclass(frozen=True, slots=True)
class Parameter:
    """An SSM parameter with its value from the template."""

    name: str
    value: str
    type: str = "String"
    resource: str = ""

    def __post_init__(self) -> None:
        if self.type not in _PARAMETER_TYPES:
            raise ValueError(f"parameter {self.name}: Type must be one of {_PARAMETER_TYPES}")


@dataclass(frozen=True, slots=True)
class Secret:
    """A Secrets Manager secret (``value`` None: created without a value)."""

    name: str
    value: str | None = None
    resource: str = ""


@dataclass(frozen=True, slots=True)
class ServiceResources:
    """Everything a stack declares in the services the emulator runs locally."""

    tables: tuple[Table, ...] = ()
    queues: tuple[Queue, ...] = ()
    topics: tuple[Topic, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    secrets: tuple[Secret, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.tables
            or self.queues
            or self.topics
            or self.buckets
            or self.parameters
            or self.secrets
        )

    def counts(self) -> dict[str, int]:
        """How many resources of each kind, by service name (only the non-empty ones)."""
        pairs = {
            "DynamoDB tables": len(self.tables),
            "SQS queues": len(self.queues),
            "SNS topics": len(self.topics),
            "S3 buckets": len(self.buckets),
            "SSM parameters": len(self.parameters),
            "Secrets Manager secrets": len(self.secrets),
        }
        return {k: v for k, v in pairs.items() if v}

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form, for the process that creates them."""
        return {
            "tables": [
                {"request": t.request(), "ttl": t.ttl_attribute, "name": t.name}
                for t in self.tables
            ],
            "queues": [{"name": q.name, "fifo": q.fifo} for q in self.queues],
            "topics": [{"name": t.name} for t in self.topics],
            "buckets": [{"name": b.name} for b in self.buckets],
            "parameters": [
                {"name": p.name, "value": p.value, "type": p.type} for p in self.parameters
            ],
            "secrets": [{"name": s.name, "value": s.value} for s in self.secrets],
        }
