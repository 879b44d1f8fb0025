"""The API Gateway side of ``warmline dev``: WebSocket API, ``@connections``, Invoke API.

Modules, from pure to I/O::

    frames.py, http.py, events.py, schedule.py   sans-I/O codecs and event builders
    websocket.py                                 one open connection (frames, timers)
    gateway.py                                   $connect / routing / $disconnect semantics
    connections_api.py, invoke_api.py            the HTTP APIs on the same port
    access.py                                    Host check, control endpoints' token
    listener.py                                  accept, TLS sniffing, HTTP keep-alive
    bus.py, scheduler.py                         async invocations, SQS, SNS, schedules
    tls.py                                       the local CA for https://

``warmline.dev.server.DevServer`` wires them to the runtime.
"""

from __future__ import annotations
