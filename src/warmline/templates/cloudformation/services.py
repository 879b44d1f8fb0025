"""CloudFormation resources created in the local AWS services: tables, queues, topics...

``AWS::DynamoDB::Table`` / ``AWS::Serverless::SimpleTable`` (keys, attribute definitions,
global and local secondary indexes, ``TimeToLiveSpecification``; streams stay off),
``AWS::SQS::Queue``, ``AWS::SNS::Topic``, ``AWS::S3::Bucket``, ``AWS::SSM::Parameter`` and
``AWS::SecretsManager::Secret`` become the :mod:`warmline.config.services` value objects,
under the name ``Ref`` gives each in the template, so the names functions read from
their ``Environment`` exist locally. Shared by the SAM/CloudFormation reader and the
Serverless reader (whose ``resources`` section is CloudFormation).
"""

from __future__ import annotations

import json
import secrets
import string
from typing import TYPE_CHECKING, Any

from warmline.config.services import Bucket, Index, Parameter, Queue, Secret, Table, Topic

if TYPE_CHECKING:
    from warmline.templates.build import StackBuilder
    from warmline.templates.cloudformation.resources import ResourceReader

__all__ = ["SERVICE_TYPES", "read_services", "resource_from_properties"]

#: The resource types created in the local services.
SERVICE_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::Serverless::SimpleTable",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::S3::Bucket",
    "AWS::SSM::Parameter",
    "AWS::SecretsManager::Secret",
)
#: SimpleTable's PrimaryKey types to DynamoDB's attribute types.
_SIMPLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}
#: GenerateSecretString's PasswordLength default (AWS::SecretsManager::Secret).
_PASSWORD_LENGTH = 32

_Resource = Table | Queue | Topic | Bucket | Parameter | Secret


def _keys(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise ValueError("KeySchema must be a list of {AttributeName, KeyType}")
    return tuple((str(k["AttributeName"]), str(k["KeyType"])) for k in raw)


def _indexes(raw: Any, prop: str) -> tuple[Index, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{prop} must be a list")
    out = []
    for index in raw:
        projection = index.get("Projection") or {}
        out.append(
            Index(
                str(index["IndexName"]),
                _keys(index.get("KeySchema")),
                str(projection.get("ProjectionType", "KEYS_ONLY")),
                tuple(str(a) for a in projection.get("NonKeyAttributes") or ()),
            )
        )
    return tuple(out)


def _table(name: str, props: dict[str, Any], resource: str) -> Table:
    attributes = props.get("AttributeDefinitions") or []
    if not isinstance(attributes, list):
        raise ValueError("AttributeDefinitions must be a list")
    ttl = props.get("TimeToLiveSpecification") or {}
    enabled = str(ttl.get("Enabled", "false")).lower() == "true"
    return Table(
        name,
        _keys(props.get("KeySchema")),
        tuple((str(a["AttributeName"]), str(a["AttributeType"])) for a in attributes),
        _indexes(props.get("GlobalSecondaryIndexes"), "GlobalSecondaryIndexes"),
        _indexes(props.get("LocalSecondaryIndexes"), "LocalSecondaryIndexes"),
        str(ttl["AttributeName"]) if enabled and ttl.get("AttributeName") else None,
        resource,
    )


def _simple_table(name: str, props: dict[str, Any], resource: str) -> Table:
    key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
    kind = _SIMPLE_TYPES.get(str(key.get("Type", "String")))
    if kind is None:
        raise ValueError("PrimaryKey.Type must be String, Number or Binary")
    attribute = str(key.get("Name", "id"))
    return Table(name, ((attribute, "HASH"),), ((attribute, kind),), resource=resource)


def _secret_value(props: dict[str, Any]) -> str | None:
    if "SecretString" in props:
        return str(props["SecretString"])
    generate = props.get("GenerateSecretString")
    if not isinstance(generate, dict):
        return None
    alphabet = string.ascii_letters + string.digits
    if str(generate.get("ExcludePunctuation", "false")).lower() != "true":
        alphabet += string.punctuation
    if str(generate.get("ExcludeNumbers", "false")).lower() == "true":
        alphabet = "".join(c for c in alphabet if not c.isdigit())
    excluded = str(generate.get("ExcludeCharacters", ""))
    alphabet = "".join(c for c in alphabet if c not in excluded) or string.ascii_letters
    length = int(generate.get("PasswordLength", _PASSWORD_LENGTH))
    password = "".join(secrets.choice(alphabet) for _ in range(length))
    template, key = generate.get("SecretStringTemplate"), generate.get("GenerateStringKey")
    if isinstance(template, str) and isinstance(key, str):
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)
    return password


def resource_from_properties(
    kind: str, name: str, props: dict[str, Any], resource: str
) -> _Resource | None:
    """The local resource for a CloudFormation resource (None: not a service type).

    Args:
        kind: the resource type.
        name: the name ``Ref`` gives it (the table, queue, topic, bucket... name).
        props: its resolved ``Properties``.
        resource: the logical id, for the start-up listing.

    Raises:
        ValueError: a property the local resource needs is malformed (says which).
        KeyError: a required property is missing.
    """
    if kind == "AWS::DynamoDB::Table":
        return _table(name, props, resource)
    if kind == "AWS::Serverless::SimpleTable":
        return _simple_table(name, props, resource)
    if kind == "AWS::SQS::Queue":
        return Queue(name, resource)
    if kind == "AWS::SNS::Topic":
        return Topic(name, resource)
    if kind == "AWS::S3::Bucket":
        return Bucket(name, resource)
    if kind == "AWS::SSM::Parameter":
        value, type_ = str(props.get("Value", "")), str(props.get("Type", "String"))
        return Parameter(name, value, type_, resource)
    if kind == "AWS::SecretsManager::Secret":
        return Secret(name, _secret_value(props), resource)
    return None


def add_resource(
    builder: StackBuilder, kind: str, name: str, props: dict[str, Any], logical_id: str, where: str
) -> bool:
    """Add one resource to ``builder``; False when ``kind`` is not created locally.

    Raises:
        SourceError: a malformed or missing property (names ``where``).
    """
    try:
        created = resource_from_properties(kind, name, props, logical_id)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise builder.error(detail, where) from exc
    if created is None:
        return False
    builder.add_resource(created)
    return True


def read_services(reader: ResourceReader) -> None:
    """Add every resource of a :data:`SERVICE_TYPES` type of the template to the builder."""
    for logical_id in reader.of_type(*SERVICE_TYPES):
        kind = reader.resources[logical_id]["Type"]
        where = f"Resources.{logical_id}.Properties"
        props = reader.r.resolve(reader.props(logical_id), where)
        if not isinstance(props, dict):
            raise reader.r.error("must be a mapping", where)
        add_resource(reader.b, kind, reader.r.name_of(logical_id), props, logical_id, where)
        if kind != "AWS::SQS::Queue":
            reader.handled.add(logical_id)
