"""Credentials, SigV4 verification and IAM evaluation for the emulator's AWS endpoints.

On AWS every call a function makes to ``@connections``, Lambda or another service is
signed with its execution role's temporary credentials and evaluated against the role's
policies; a forgotten ``execute-api:ManageConnections`` is the most common WebSocket
deploy error. ``warmline dev`` does the same, so the error shows locally:

- :mod:`~warmline.dev.iam.principals`: per-function credentials (``ASIA...`` + session
  token, random per run) and the developer's keys for callers that are not functions;
- :mod:`~warmline.dev.iam.verify`: the signature check, reusing the signer's steps;
- :mod:`~warmline.dev.iam.evaluate`: IAM's evaluation (wildcards, ``Deny`` over ``Allow``,
  default deny, ``NotAction``/``NotResource``);
- :mod:`~warmline.dev.iam.roles`: each function's statements from ``warmline.toml`` (the
  deploy plan's, so local == deployed) or from its template's role;
- :mod:`~warmline.dev.iam.registry`: :class:`Iam`, what the endpoints call.

The statements themselves are data in :mod:`warmline.config.iam`, below the template
readers that produce them.
"""

from __future__ import annotations

from warmline.dev.iam.evaluate import Decision, action_matches, evaluate, resource_matches
from warmline.dev.iam.principals import Principal
from warmline.dev.iam.registry import Iam, connections_resource, function_resource
from warmline.dev.iam.verify import SignatureRejected

__all__ = [
    "Decision",
    "Iam",
    "Principal",
    "SignatureRejected",
    "action_matches",
    "connections_resource",
    "evaluate",
    "function_resource",
    "resource_matches",
]
