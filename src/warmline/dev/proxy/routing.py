"""Where the AWS proxy sends a host name: the emulator, the moto server, AWS, or nowhere.

Pure: a host and port in, a :class:`Route` out. The rules (docs/protocols.md §2.4, §8):

- ``{apiId}.execute-api.{region}.amazonaws.com`` with the emulated API's id and region:
  the emulator, which serves ``/{stage}/@connections/{id}`` as AWS does;
- ``lambda.{region}.amazonaws.com``: the emulator's Invoke API;
- ``{service}.{region}.amazonaws.com`` (and S3's virtual-hosted and global forms, SQS's
  legacy ``{region}.queue.amazonaws.com``, STS's global host) for a service the moto
  server answers: the moto server;
- any other ``*.amazonaws.com`` / ``*.amazonaws.com.cn`` / ``*.api.aws`` host: refused
  with an error naming the service, or tunnelled to AWS when the developer asked for it;
- every other host (a model provider, Twilio...): tunnelled unchanged, as a Lambda function
  outside a VPC reaches the internet.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["SERVED_NAMES", "Route", "RouteKind", "Router", "region_of", "service_of"]

_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
_EXECUTE_API_RE = re.compile(r"^([a-z0-9]+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_REGIONAL_RE = re.compile(r"^([a-z0-9-]+)\.(?:(?:fips|dualstack)\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.")
_S3_RE = re.compile(
    r"^(?:.+\.)?s3(?:[.-](?:dualstack|fips|[a-z]{2}(?:-[a-z]+)+-\d))*\.amazonaws\.com$"
)
_SQS_LEGACY_RE = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d)\.queue\.amazonaws\.com$")


class RouteKind(enum.Enum):
    """What the proxy does with a host's connection."""

    #: terminate TLS; requests go to the emulator's port (``@connections``, Invoke API).
    EMULATOR = "emulator"
    #: terminate TLS; requests go to the moto server.
    SERVICES = "services"
    #: terminate TLS; every request is answered with an error naming the service.
    REFUSE = "refuse"
    #: relay the bytes to the real host (no TLS termination).
    TUNNEL = "tunnel"
    #: terminate TLS; requests are re-signed with the developer's credentials and sent to
    #: the real AWS host (:mod:`warmline.dev.proxy.upstream`).
    AWS = "aws"


@dataclass(frozen=True, slots=True)
class Route:
    """A host's route; ``service`` names the AWS service (``""`` for non-AWS hosts)."""

    kind: RouteKind
    service: str = ""
    reason: str = ""


def service_of(host: str) -> str:
    """The AWS service a host name belongs to (``""`` if it is not an AWS host).

    Examples: ``dynamodb.eu-west-1.amazonaws.com`` -> ``dynamodb``;
    ``my-bucket.s3.us-east-1.amazonaws.com`` -> ``s3``; ``sts.amazonaws.com`` -> ``sts``.
    """
    host = host.lower().rstrip(".")
    if not host.endswith(_AWS_SUFFIXES):
        return ""
    if _EXECUTE_API_RE.match(host):
        return "execute-api"
    if _S3_RE.match(host):
        return "s3"
    if _SQS_LEGACY_RE.match(host):
        return "sqs"
    match = _REGIONAL_RE.match(host)
    if match:
        return match.group(1)
    return host.split(".", 1)[0]


def region_of(host: str) -> str | None:
    """The region in a regional AWS host name (None for global hosts)."""
    host = host.lower()
    match = _EXECUTE_API_RE.match(host) or _SQS_LEGACY_RE.match(host)
    if match:
        return match.group(match.lastindex or 1)
    found = re.search(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.", host + ".")
    return found.group(1) if found else None


class Router:
    """Routes host names for one emulator.

    Args:
        api_id: the emulated WebSocket API's id.
        region: the emulated region.
        services: the AWS services the moto server answers (empty: none runs).
        aws_passthrough: send calls to AWS hosts that are not emulated to AWS, re-signed
            with the developer's credentials, instead of refusing them.
    """

    def __init__(
        self,
        *,
        api_id: str,
        region: str,
        services: Collection[str] = (),
        aws_passthrough: bool = False,
    ) -> None:
        self.api_id = api_id
        self.region = region
        self.services = frozenset(services)
        self.aws_passthrough = aws_passthrough

    def route(self, host: str) -> Route:
        """The route for ``host`` (the port does not matter: AWS serves 443 and 80 alike)."""
        host = host.lower().rstrip(".")
        service = service_of(host)
        if not service:
            return Route(RouteKind.TUNNEL)
        region = region_of(host)
        if service == "execute-api":
            match = _EXECUTE_API_RE.match(host)
            if match is None:  # no API id: a client built without endpoint_url
                return self._other(
                    service,
                    f"{host} names no API (boto3's apigatewaymanagementapi has no default "
                    "endpoint; on AWS this host does not resolve): use "
                    "https://{domainName}/{stage} from the event",
                )
            if match.group(1) == self.api_id and match.group(2) == self.region:
                return Route(RouteKind.EMULATOR, service)
            return self._other(
                service,
                f"{host} is not the emulated API: this run serves "
                f"{self.api_id}.execute-api.{self.region}.amazonaws.com",
            )
        if region is not None and region != self.region:
            return self._other(
                service, f"{host} is in {region}; this run emulates {self.region} only"
            )
        if service == "lambda":
            return Route(RouteKind.EMULATOR, service)
        if service in self.services:
            return Route(RouteKind.SERVICES, service)
        if service in SERVED_NAMES:
            return self._other(
                service,
                f"{SERVED_NAMES[service]} is not running: the stack declares no "
                f"{SERVED_NAMES[service]} resource, so warmline dev started no local "
                f"{SERVED_NAMES[service]} ({host})",
            )
        return self._other(service, f"warmline dev does not emulate {service} ({host})")

    def _other(self, service: str, reason: str) -> Route:
        if self.aws_passthrough:
            return Route(RouteKind.AWS, service, reason)
        return Route(
            RouteKind.REFUSE,
            service,
            f"{reason}; `warmline dev --aws-profile NAME` (or --aws-passthrough, with your "
            "default credentials) sends such calls to AWS",
        )


#: The services the local moto server answers, by the first label of their host name.
SERVED_NAMES = {
    "dynamodb": "DynamoDB",
    "sqs": "SQS",
    "sns": "SNS",
    "s3": "S3",
    "ssm": "SSM",
    "secretsmanager": "Secrets Manager",
    "sts": "STS",
}
