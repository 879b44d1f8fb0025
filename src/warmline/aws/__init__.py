"""The one AWS layer: SigV4 signing, credentials, one keep-alive HTTP/1.1 client, retries.

Everything in warmline that talks to AWS is a thin client on it:

* :mod:`warmline.aws.sigv4`: the signer (:class:`SigV4Signer`) and the steps of a
  signature as plain functions, for a verifier to reuse;
* :mod:`warmline.aws.credentials`: keys, region, endpoint overrides and the CA bundle, read
  from the environment with boto3's names;
* :mod:`warmline.aws.client`: :class:`AwsClient`, signed requests to one endpoint over a
  kept-alive :class:`warmline.http1.Http1Connection`, with the one retry policy
  (:class:`RetryPolicy`) and retry-and-resend loop;
* :mod:`warmline.aws.lambda_invoke`, :mod:`warmline.aws.ssm`,
  :mod:`warmline.aws.secretsmanager`: the Lambda ``Invoke``, SSM ``GetParameter`` and
  Secrets Manager ``GetSecretValue`` clients (the last two share
  :mod:`warmline.aws.json_api`). The ``@connections`` client is
  :class:`warmline.connections.apigw.ApiGatewayConnections`; Bedrock signs with
  :class:`SigV4Signer` from :mod:`warmline.agent.providers.bedrock`.

The HTTP/1.1 connection itself lives outside this package, in :mod:`warmline.http1`,
because the LLM providers stream over the same class to endpoints that are not AWS's.

No boto3, no ``hashlib``, no ``http.client``. Names resolve on first use (PEP 562), so
``import warmline.aws`` loads none of the modules.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "AwsClient": "warmline.aws.client",
    "Credentials": "warmline.aws.credentials",
    "LambdaClient": "warmline.aws.lambda_invoke",
    "RetryPolicy": "warmline.aws.client",
    "SigV4Signer": "warmline.aws.sigv4",
    "get_parameter": "warmline.aws.ssm",
    "get_secret_string": "warmline.aws.secretsmanager",
}

__all__ = [
    "AwsClient",
    "Credentials",
    "LambdaClient",
    "RetryPolicy",
    "SigV4Signer",
    "get_parameter",
    "get_secret_string",
]

if TYPE_CHECKING:
    from warmline.aws.client import AwsClient, RetryPolicy
    from warmline.aws.credentials import Credentials
    from warmline.aws.lambda_invoke import LambdaClient
    from warmline.aws.secretsmanager import get_secret_string
    from warmline.aws.sigv4 import SigV4Signer
    from warmline.aws.ssm import get_parameter


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
