"""Which IAM action, on which resource, a call to a local AWS service needs.

Pure: a :class:`~warmline.dev.proxy.authorize.ProxiedRequest` in, the ``(action,
resource ARN)`` pairs IAM evaluates out (all must be allowed), or None when the request is
one the emulator does not evaluate (it is then let through, and docs/fidelity.md says
which). The rules (docs/protocols.md §8.5, each service's "Actions, resources, and
condition keys" page in the Service Authorization Reference):

- **JSON protocols** (DynamoDB, SQS, SSM, Secrets Manager): the operation is the part of
  ``X-Amz-Target`` after the dot (``DynamoDB_20120810.PutItem`` -> ``dynamodb:PutItem``),
  the resource comes from the body (``TableName``, ``QueueUrl``, ``Name``, ``SecretId``).
- **Query protocols** (SNS, STS, SQS's older wire form): the operation is the form's
  ``Action`` (``sns:Publish``), the resource its ``TopicArn``...
- **S3** (REST): the action from the method, whether a key is named, and the subresource
  in the query (``GET /bucket/key`` -> ``s3:GetObject`` on ``arn:aws:s3:::bucket/key``).

Resource ARNs: ``arn:aws:dynamodb:{region}:{account}:table/{name}`` (``/index/{index}``
for a query on an index), ``arn:aws:sqs:{region}:{account}:{queue}``, the topic's ARN,
``arn:aws:ssm:{region}:{account}:parameter/{name without its leading slash}``,
``arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????`` (AWS appends six
random characters to a secret's name; policies match them with ``-??????`` or ``-*``),
``arn:aws:s3:::{bucket}`` and ``arn:aws:s3:::{bucket}/{key}``. Operations on no resource
(``ListTables``, ``ListQueues``...) are evaluated on ``*``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    from warmline.dev.proxy.authorize import ProxiedRequest

__all__ = ["Check", "required_checks", "s3_bucket_and_key"]

#: One ``(action, resource ARN)`` IAM must allow.
Check = tuple[str, str]

#: SQS's batch operations are authorized as their single forms (SQS developer guide,
#: "Amazon SQS API permissions: Actions and resource reference").
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
#: DynamoDB's transactions are authorized item by item, as the single operation.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
#: PartiQL needs ``dynamodb:PartiQL*`` actions decided by the statement's verb: not read here.
_UNEVALUATED = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
#: S3 subresources and the action each method needs on a bucket / an object.
_S3_BUCKET_SUB = {
    ("GET", "location"): "GetBucketLocation",
    ("GET", "versions"): "ListBucketVersions",
    ("GET", "uploads"): "ListBucketMultipartUploads",
    ("GET", "policy"): "GetBucketPolicy",
    ("GET", "tagging"): "GetBucketTagging",
    ("GET", "acl"): "GetBucketAcl",
    ("GET", "versioning"): "GetBucketVersioning",
    ("GET", "cors"): "GetBucketCORS",
    ("GET", "notification"): "GetBucketNotification",
    ("GET", "lifecycle"): "GetLifecycleConfiguration",
    ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "policy"): "PutBucketPolicy",
    ("PUT", "tagging"): "PutBucketTagging",
    ("PUT", "acl"): "PutBucketAcl",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("PUT", "cors"): "PutBucketCORS",
    ("PUT", "notification"): "PutBucketNotification",
    ("PUT", "lifecycle"): "PutLifecycleConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("DELETE", "tagging"): "PutBucketTagging",
    ("DELETE", "cors"): "PutBucketCORS",
    ("DELETE", "lifecycle"): "PutLifecycleConfiguration",
}
_S3_OBJECT_SUB = {
    ("GET", "tagging"): "GetObjectTagging",
    ("GET", "acl"): "GetObjectAcl",
    ("GET", "uploadId"): "ListMultipartUploadParts",
    ("PUT", "tagging"): "PutObjectTagging",
    ("PUT", "acl"): "PutObjectAcl",
    ("PUT", "uploadId"): "PutObject",
    ("DELETE", "tagging"): "DeleteObjectTagging",
    ("DELETE", "uploadId"): "AbortMultipartUpload",
    ("POST", "uploads"): "PutObject",
    ("POST", "uploadId"): "PutObject",
    ("POST", "restore"): "RestoreObject",
    ("POST", "select"): "GetObject",
}
_S3_OBJECT_PLAIN = {
    "GET": "GetObject",
    "HEAD": "GetObject",
    "PUT": "PutObject",
    "DELETE": "DeleteObject",
}
_S3_BUCKET_PLAIN = {
    "GET": "ListBucket",
    "HEAD": "ListBucket",
    "PUT": "CreateBucket",
    "DELETE": "DeleteBucket",
}
#: ListObjects(V2)'s query parameters: a GET on a bucket with only these lists it.
_LISTING = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "continuation-token",
        "start-after",
        "marker",
        "encoding-type",
        "fetch-owner",
    }
)
_S3_HOST_RE = re.compile(r"^(.+)\.s3[.-]")
_XML_KEY_RE = re.compile(r"<Key>([^<]*)</Key>")


def required_checks(request: ProxiedRequest, region: str, account: str) -> list[Check] | None:
    """What IAM must allow for ``request`` (None: not evaluated, let through).

    Args:
        request: the request as the SDK sent it.
        region: the emulated region (the ARNs name it).
        account: the emulated account id.
    """
    service = request.service
    if service == "s3":
        return _s3(request)
    operation, params = _operation(request)
    if not operation:
        return None
    prefix = f"arn:aws:{service}:{region}:{account}:"
    if service == "dynamodb":
        return _dynamodb(operation, params, prefix)
    if service == "sqs":
        return _sqs(operation, params, prefix, request.target)
    if service == "sns":
        return [(f"sns:{operation}", _sns_resource(operation, params, prefix))]
    if service == "ssm":
        return _ssm(operation, params, prefix)
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}", _secret_resource(operation, params, prefix))]
    if service == "sts":
        if operation == "GetCallerIdentity":
            return []  # "No permissions are required to perform this operation" (STS API)
        role = params.get("RoleArn")
        return [(f"sts:{operation}", role if isinstance(role, str) else "*")]
    return [(f"{service}:{operation}", "*")]


def _operation(request: ProxiedRequest) -> tuple[str, dict[str, Any]]:
    """The operation's name and its parameters, from a JSON or a query request."""
    target = request.header("X-Amz-Target")
    if target is not None:
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError:
            body = {}
        return target.rpartition(".")[2], body if isinstance(body, dict) else {}
    _path, _, query = request.target.partition("?")
    form = query
    if "x-www-form-urlencoded" in (request.header("Content-Type") or ""):
        form = request.body.decode("utf-8", "replace")
    params: dict[str, Any] = dict(parse_qsl(form, keep_blank_values=True))
    return str(params.get("Action", "")), params


def _dynamodb(operation: str, params: dict[str, Any], prefix: str) -> list[Check] | None:
    if operation in _UNEVALUATED:
        return None
    if operation in ("BatchGetItem", "BatchWriteItem"):
        tables = params.get("RequestItems") or {}
        return [(f"dynamodb:{operation}", f"{prefix}table/{t}") for t in tables]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        checks = []
        for item in params.get("TransactItems") or []:
            for kind, spec in item.items() if isinstance(item, dict) else ():
                action = _TRANSACT_ACTIONS.get(kind)
                if action is not None and isinstance(spec, dict):
                    table = spec.get("TableName", "")
                    checks.append((f"dynamodb:{action}", f"{prefix}table/{table}"))
        return checks
    stream = params.get("StreamArn")
    if isinstance(stream, str):
        return [(f"dynamodb:{operation}", stream)]
    table = params.get("TableName")
    if not isinstance(table, str):
        return [(f"dynamodb:{operation}", "*")]
    resource = table if table.startswith("arn:") else f"{prefix}table/{table}"
    index = params.get("IndexName")
    if isinstance(index, str) and operation in ("Query", "Scan"):
        resource += f"/index/{index}"
    return [(f"dynamodb:{operation}", resource)]


def _sqs(operation: str, params: dict[str, Any], prefix: str, target: str) -> list[Check]:
    action = "sqs:" + _SQS_BATCH.get(operation, operation)
    url = params.get("QueueUrl")
    name = params.get("QueueName")
    if isinstance(url, str) and url:
        return [(action, prefix + url.rstrip("/").rpartition("/")[2])]
    if isinstance(name, str) and name:
        return [(action, prefix + name)]
    path = target.partition("?")[0].rstrip("/")
    if path:  # the query protocol may address the queue by the request's path
        return [(action, prefix + path.rpartition("/")[2])]
    return [(action, "*")]


def _sns_resource(operation: str, params: dict[str, Any], prefix: str) -> str:
    for key in ("TopicArn", "TargetArn", "ResourceArn"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    name = params.get("Name")
    if operation == "CreateTopic" and isinstance(name, str):
        return prefix + name
    return "*"


def _parameter_arn(prefix: str, name: str) -> str:
    return name if name.startswith("arn:") else f"{prefix}parameter/{name.lstrip('/')}"


def _ssm(operation: str, params: dict[str, Any], prefix: str) -> list[Check]:
    action = f"ssm:{operation}"
    names = params.get("Names")
    if isinstance(names, list) and names:
        return [(action, _parameter_arn(prefix, str(n))) for n in names]
    for key in ("Name", "Path"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return [(action, _parameter_arn(prefix, value))]
    return [(action, "*")]


def _secret_resource(operation: str, params: dict[str, Any], prefix: str) -> str:
    secret = params.get("SecretId") or (params.get("Name") if operation == "CreateSecret" else None)
    if not isinstance(secret, str) or not secret:
        return "*"
    return secret if secret.startswith("arn:") else f"{prefix}secret:{secret}-??????"


def s3_bucket_and_key(host: str, path: str) -> tuple[str, str]:
    """The bucket and key a request addresses (virtual-hosted or path-style), decoded."""
    match = _S3_HOST_RE.match(host.lower())
    parts = path.lstrip("/")
    if match is not None:
        return match.group(1), unquote(parts)
    bucket, _, key = parts.partition("/")
    return unquote(bucket), unquote(key)


def _s3(request: ProxiedRequest) -> list[Check] | None:
    path, _, query = request.target.partition("?")
    bucket, key = s3_bucket_and_key(request.host, path)
    method = request.method
    subs = [part.partition("=")[0] for part in query.split("&") if part]
    if not bucket:
        return [("s3:ListAllMyBuckets", "*")] if method == "GET" else None
    if key:
        resource = f"arn:aws:s3:::{bucket}/{key}"
        for sub in subs:
            action = _S3_OBJECT_SUB.get((method, sub))
            if action is not None:
                return [(f"s3:{action}", resource)]
        plain = _S3_OBJECT_PLAIN.get(method)
        if plain is None:
            return None
        checks = [(f"s3:{plain}", resource)]
        source = request.header("x-amz-copy-source")
        if method == "PUT" and source:  # CopyObject also reads its source
            src_bucket, src_key = s3_bucket_and_key("s3.amazonaws.com", source.split("?")[0])
            checks.append(("s3:GetObject", f"arn:aws:s3:::{src_bucket}/{src_key}"))
        return checks
    resource = f"arn:aws:s3:::{bucket}"
    if method == "POST" and "delete" in subs:  # DeleteObjects: each key
        keys = _XML_KEY_RE.findall(request.body.decode("utf-8", "replace"))
        return [("s3:DeleteObject", f"{resource}/{k}") for k in keys]
    for sub in subs:
        action = _S3_BUCKET_SUB.get((method, sub))
        if action is not None:
            return [(f"s3:{action}", resource)]
    action = _S3_BUCKET_PLAIN.get(method)
    if action is None or (subs and (method != "GET" or not _LISTING.issuperset(subs))):
        return None  # a subresource not read here
    return [(f"s3:{action}", resource)]
