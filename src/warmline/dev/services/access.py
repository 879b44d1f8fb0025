"""``AwsAccess``: how a ``warmline dev`` run's functions reach AWS services locally.

Puts together the moto server (when the stack declares resources,
:class:`~warmline.dev.services.local.LocalServices`) and the AWS proxy
(:class:`~warmline.dev.proxy.server.AwsProxy`), and gives :class:`~warmline.dev.server.
DevServer` the variables every environment receives: ``HTTPS_PROXY`` (the proxy) and
``NO_PROXY`` (loopback and the emulator's own host, so the event's
``https://{domainName}/{stage}`` is reached directly). No per-service
``AWS_ENDPOINT_URL_*`` is set: the SDK resolves its default endpoint as on AWS, and the
proxy routes that host name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from warmline.aws.credentials import Credentials
from warmline.config import DevConfig
from warmline.dev.gateway.tls import Certificates
from warmline.dev.iam import Iam
from warmline.dev.proxy.authorize import ServiceAuthorizer
from warmline.dev.proxy.certs import HostCertificates
from warmline.dev.proxy.routing import SERVED_NAMES, Router
from warmline.dev.proxy.server import AwsProxy
from warmline.dev.proxy.upstream import AwsUpstream
from warmline.dev.services.local import LocalServices

__all__ = ["AwsAccess"]

#: Loopback names every environment reaches without the proxy.
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class AwsAccess:
    """The local services and the AWS proxy of one dev server.

    Args:
        config: the run's config (its ``services``, region and API id).
        host: the interface the emulator listens on (reached without the proxy).
        state_dir: where the services keep their data between runs (None: nothing kept).
        reset: start the services from the template's resources only.
        aws_credentials: the developer's credentials (``--aws-profile``,
            ``--aws-passthrough``): calls to AWS services that are not emulated are
            re-signed with them and sent to AWS (None: refused).
        credentials_from: says whose they are (the start-up text).
        log: where refused hosts are reported.
        iam: verifies and authorizes the calls to local services (None: all allowed).
    """

    def __init__(
        self,
        config: DevConfig,
        *,
        host: str,
        state_dir: Path | None = None,
        reset: bool = False,
        aws_credentials: Callable[[], Credentials] | None = None,
        credentials_from: str = "",
        log: Callable[[str], None] | None = None,
        iam: Iam | None = None,
    ) -> None:
        self.config = config
        self.iam = iam
        self.host = host
        self.aws_passthrough = aws_credentials is not None
        self.credentials_from = credentials_from
        self.log = log
        #: re-signs the calls that go to real AWS (None: they are refused). Its
        #: ``address`` and ``tls`` say where AWS is (tests point them at a local server).
        self.upstream: AwsUpstream | None = None
        if aws_credentials is not None:
            keys = iam.by_key if iam is not None else {}
            self.upstream = AwsUpstream(aws_credentials, keys)
        #: the moto server, when the stack declares resources.
        self.services: LocalServices | None = None
        if config.services:
            self.services = LocalServices(
                config.services, region=config.region, state_dir=state_dir, reset=reset
            )
        self.proxy: AwsProxy | None = None

    async def start(self, certificates: Certificates, emulator_port: int) -> dict[str, str]:
        """Start the services and the proxy; returns the environments' variables.

        Raises:
            MissingExtraError: moto or cryptography is missing (the ``dev`` extra).
            ServicesError: the moto server did not start.
        """
        if certificates.ca_key is None:
            raise RuntimeError("the emulator's CA has no key to issue proxy certificates")
        host_certificates = HostCertificates(certificates.ca_cert, certificates.ca_key)
        if self.services is not None:
            await self.services.start()
        router = Router(
            api_id=self.config.websocket.api_id,
            region=self.config.region,
            services=SERVED_NAMES if self.services is not None else (),
            aws_passthrough=self.aws_passthrough,
        )
        self.proxy = AwsProxy(
            router,
            host_certificates,
            emulator=("127.0.0.1", emulator_port),
            services=("127.0.0.1", self.services.port) if self.services is not None else None,
            log=self.log,
            authorize=ServiceAuthorizer(self.iam) if self.iam is not None else None,
            upstream=self.upstream,
        )
        await self.proxy.start()
        bypass = ",".join(dict.fromkeys((*_LOOPBACK, self.host)))
        return {"HTTPS_PROXY": self.proxy.url, "NO_PROXY": bypass}

    async def close(self) -> None:
        """Stop the proxy and the services (their recording stays)."""
        if self.proxy is not None:
            await self.proxy.close()
            self.proxy = None
        if self.services is not None:
            await self.services.close()

    def listing(self) -> list[str]:
        """Start-up lines: which AWS host names reach what, and what the services hold."""
        region = self.config.region
        api = f"{self.config.websocket.api_id}.execute-api.{region}.amazonaws.com"
        emulated = [f"{api} (@connections)", f"lambda.{region}.amazonaws.com"]
        if self.services is not None:
            emulated.append(
                ", ".join(f"{n}.{region}.amazonaws.com" for n in SERVED_NAMES) + " (moto)"
            )
        other = (
            f"sent to AWS, re-signed with {self.credentials_from}'s credentials (the local "
            "keys never leave this machine)"
            if self.aws_passthrough
            else "refused with an error naming the service (--aws-profile NAME sends them to "
            "AWS with your credentials)"
        )
        lines = [
            "AWS host names (through HTTPS_PROXY, TLS from the local CA):",
            "  emulated: " + "; ".join(emulated),
            f"  other AWS services: {other}",
        ]
        if self.services is not None:
            lines.extend(self.services.listing())
        else:
            lines.append(
                "AWS services: none started (the stack declares no DynamoDB table, SQS queue, "
                "SNS topic, S3 bucket, SSM parameter or secret)"
            )
        return lines
