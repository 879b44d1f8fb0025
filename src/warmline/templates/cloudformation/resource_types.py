"""CloudFormation resource types a local run does not need or cannot run, and what then.

Shared by the SAM/CloudFormation reader and the Serverless reader (whose ``resources``
section is CloudFormation): every resource nothing consumed is explained by its type, so
the start-up report says what happens instead of silently dropping it. Inline code
(``ZipFile``/``InlineCode``) is written to a cache directory so it runs like a ``CodeUri``.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from warmline.templates.report import NoteKind

__all__ = ["IGNORED_TYPES", "explain_resource", "inline_code_dir"]

#: Resource types the cloud needs and a local run does not, with why.
IGNORED_TYPES = {
    "AWS::IAM::Role": "no function that runs here uses this role",
    "AWS::IAM::Policy": "attached to no role of a function that runs here",
    "AWS::IAM::ManagedPolicy": "attached to no role of a function that runs here",
    "AWS::Lambda::Permission": "the emulator invokes functions without IAM permissions",
    "AWS::ApiGatewayV2::Deployment": "routes are live as soon as the emulator starts",
    "AWS::ApiGatewayV2::IntegrationResponse": "AWS_PROXY integrations return the response",
    "AWS::Logs::LogGroup": "function logs go to the console",
    "AWS::Lambda::Version": "the emulator runs $LATEST",
    "AWS::Lambda::Alias": "the emulator runs $LATEST",
    "AWS::CloudWatch::Alarm": "no metrics locally",
    "AWS::CloudWatch::Dashboard": "no metrics locally (the warmline dev dashboard shows them)",
    "AWS::Lambda::LayerVersion": "layers are not attached (their code is not on sys.path)",
    "AWS::Serverless::LayerVersion": "layers are not attached (their code is not on sys.path)",
}
#: Types that are not emulated and that code may call: what happens instead (DynamoDB,
#: SQS, SNS, S3, SSM and Secrets Manager resources are created locally: services.py).
_UNSUPPORTED_TYPES = {
    "AWS::StepFunctions::StateMachine": "Step Functions",
    "AWS::Serverless::StateMachine": "Step Functions",
    "AWS::Kinesis::Stream": "Kinesis",
}
_ENDPOINT_ENV = {
    "Step Functions": "SFN",
    "Kinesis": "KINESIS",
}


def inline_code_dir(code: str, handler: Any) -> Path:
    """Write inline ``ZipFile``/``InlineCode`` to a cache directory named by its hash."""
    module = str(handler).rsplit(".", 1)[0] if isinstance(handler, str) else "index"
    digest = hashlib.sha256(f"{module}\0{code}".encode()).hexdigest()[:20]
    target = Path(tempfile.gettempdir()) / "warmline-sources" / f"inline-{digest}"
    target.mkdir(parents=True, exist_ok=True)
    module_file = target / f"{module.replace('.', '/')}.py"
    module_file.parent.mkdir(parents=True, exist_ok=True)
    module_file.write_text(code, encoding="utf-8")
    return target


def explain_resource(kind: str, name: str) -> tuple[NoteKind, str]:
    """What the emulator does about a CloudFormation resource type it does not run.

    Args:
        kind: the resource type.
        name: the name ``Ref`` gives it locally.
    """
    if kind in IGNORED_TYPES:
        return "ignored", IGNORED_TYPES[kind]
    service = _UNSUPPORTED_TYPES.get(kind)
    if service is not None:
        return "unsupported", (
            f"{service} is not emulated: Ref gives {name!r}; handler calls to {service} go to "
            f"AWS, or to AWS_ENDPOINT_URL_{_ENDPOINT_ENV[service]} if set (e.g. a local emulator)"
        )
    return "unsupported", f"not emulated; Ref gives {name!r} and nothing runs for it"
