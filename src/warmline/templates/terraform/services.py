"""Terraform resources created in the local AWS services: tables, queues, topics...

``aws_dynamodb_table`` (``hash_key``/``range_key``, ``attribute``, ``global_secondary_index``,
``local_secondary_index`` and ``ttl`` blocks; streams stay off), ``aws_sqs_queue``,
``aws_sns_topic``, ``aws_s3_bucket``, ``aws_ssm_parameter`` and
``aws_secretsmanager_secret`` (its value from an ``aws_secretsmanager_secret_version``)
become :mod:`warmline.config.services` value objects under the names the module's
references give them (``aws_dynamodb_table.x.name``), so what functions read from their
``environment`` exists locally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warmline.config.services import Bucket, Index, Parameter, Queue, Secret, Table, Topic
from warmline.templates.report import SourceError
from warmline.templates.terraform.module import TerraformModule

__all__ = ["SERVICE_KINDS", "read_service"]

_Resource = Table | Queue | Topic | Bucket | Parameter | Secret


def _blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key) or []
    return [b for b in (value if isinstance(value, list) else [value]) if isinstance(b, dict)]


def _keys(m: TerraformModule, body: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    if "hash_key" not in body:
        raise ValueError("missing hash_key")
    keys = [(str(m.eval(body["hash_key"], f"{where}.hash_key")), "HASH")]
    if body.get("range_key") is not None:
        keys.append((str(m.eval(body["range_key"], f"{where}.range_key")), "RANGE"))
    return tuple(keys)


def _index(m: TerraformModule, body: dict[str, Any], where: str, table_hash: str | None) -> Index:
    if "hash_key" not in body and table_hash is not None:
        body = {**body, "hash_key": table_hash}  # a local index shares the table's hash key
    non_key = m.eval(body.get("non_key_attributes") or [], f"{where}.non_key_attributes")
    return Index(
        str(m.eval(body["name"], f"{where}.name")),
        _keys(m, body, where),
        str(m.eval(body.get("projection_type", "ALL"), f"{where}.projection_type")),
        tuple(str(a) for a in non_key),
    )


def _table(m: TerraformModule, name: str, body: dict[str, Any], where: str) -> Table:
    keys = _keys(m, body, where)
    attributes = tuple(
        (str(m.eval(a["name"], f"{where}.attribute")), str(m.eval(a["type"], f"{where}.attribute")))
        for a in _blocks(body, "attribute")
    )
    gsis = tuple(
        _index(m, b, f"{where}.global_secondary_index", None)
        for b in _blocks(body, "global_secondary_index")
    )
    lsis = tuple(
        _index(m, b, f"{where}.local_secondary_index", keys[0][0])
        for b in _blocks(body, "local_secondary_index")
    )
    ttl = None
    for block in _blocks(body, "ttl"):
        if m.eval(block.get("enabled", True), f"{where}.ttl.enabled") is True:
            ttl = (
                str(m.eval(block.get("attribute_name", ""), f"{where}.ttl.attribute_name")) or None
            )
    return Table(name, keys, attributes, gsis, lsis, ttl, where)


def _secret_value(m: TerraformModule, secret: str) -> str | None:
    for (kind, name), body in m.resources.items():
        if kind == "aws_secretsmanager_secret_version":
            where = f"{kind}.{name}"
            target = str(body.get("secret_id", ""))
            if f"aws_secretsmanager_secret.{secret}." in target and "secret_string" in body:
                return str(m.eval(body["secret_string"], f"{where}.secret_string"))
    return None


def _read(m: TerraformModule, kind: str, name: str) -> _Resource:
    where = f"{kind}.{name}"
    body = m.resources[(kind, name)]
    physical = m.name_of(kind, name)
    if kind == "aws_dynamodb_table":
        return _table(m, physical, body, where)
    if kind == "aws_sqs_queue":
        fifo = m.eval(body.get("fifo_queue", False), f"{where}.fifo_queue") is True
        if fifo and not physical.endswith(".fifo"):
            physical += ".fifo"
        return Queue(physical, where)
    if kind == "aws_sns_topic":
        return Topic(physical, where)
    if kind == "aws_s3_bucket":
        return Bucket(physical, where)
    if kind == "aws_ssm_parameter":
        value = body.get("value", body.get("insecure_value", ""))
        return Parameter(
            physical,
            str(m.eval(value, f"{where}.value")),
            str(m.eval(body.get("type", "String"), f"{where}.type")),
            where,
        )
    return Secret(physical, _secret_value(m, name), where)


#: The resource types created in the local services, with how each is read.
SERVICE_KINDS: dict[str, Callable[[TerraformModule, str, str], _Resource]] = {
    kind: _read
    for kind in (
        "aws_dynamodb_table",
        "aws_sqs_queue",
        "aws_sns_topic",
        "aws_s3_bucket",
        "aws_ssm_parameter",
        "aws_secretsmanager_secret",
    )
}


def read_service(m: TerraformModule, kind: str, name: str) -> _Resource:
    """The local resource for ``kind.name``.

    Raises:
        SourceError: a property the local resource needs is missing or malformed.
    """
    try:
        return SERVICE_KINDS[kind](m, kind, name)
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise m.error(detail, f"{kind}.{name}") from exc
    except SourceError:
        raise
