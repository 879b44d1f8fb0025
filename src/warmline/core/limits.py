"""Every platform limit warmline enforces, each with its source.

Sources are the sections of ``docs/protocols.md`` named beside each constant; that page
links the vendor documentation they come from.
"""

from __future__ import annotations

# --- API Gateway WebSocket (docs/protocols.md §2.5, quotas table; §2.1 close codes) ---------
#: Integration timeout of every WebSocket route; not raisable.
INTEGRATION_TIMEOUT_S = 29.0
#: Largest WebSocket frame API Gateway accepts (32 KB).
MAX_FRAME_BYTES = 32 * 1024
#: Largest message (all frames of one message) API Gateway accepts (128 KB).
MAX_MESSAGE_BYTES = 128 * 1024
#: Largest ``PostToConnection`` body (service model: max 131072 bytes) (§2.4).
MAX_POST_BYTES = 131_072
#: Idle connection timeout (10 min), connection duration (2 h).
IDLE_TIMEOUT_S = 10 * 60
MAX_CONNECTION_S = 2 * 60 * 60
#: Close code for a binary frame (§2.1; an oversize frame or message closes with 1009).
CLOSE_UNSUPPORTED_DATA = 1003
#: Body API Gateway sends when the integration exceeds 29 s (§2.6).
TIMEOUT_MESSAGE = "Endpoint request timed out"

# --- AWS Lambda (docs/protocols.md §3.1, §3.2) ------------------------------------------------
#: Init phase limit for on-demand environments.
INIT_TIMEOUT_S = 10.0
#: Largest function timeout.
MAX_FUNCTION_TIMEOUT_S = 900.0
#: Idle reclaim of an unused environment, as publicly measured; AWS documents none (§3.2).
IDLE_RECLAIM_S = 10 * 60

#: How long a warm-up of a fan-out (concurrency > 1) holds its environment, so the other
#: pings land in other environments: lambda-warmer's ``delay`` (75 ms) (§4.4).
WARMUP_HOLD_S = 0.075

# --- Amazon Connect (docs/protocols.md §4.5) ----------------------------------------------------
#: Synchronous contact-flow Lambda timeout ceiling.
CONNECT_TIMEOUT_S = 8.0
#: Largest contact-flow Lambda response (UTF-8).
CONNECT_MAX_RESPONSE_BYTES = 32 * 1024
