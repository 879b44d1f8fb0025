"""warmline.core: the sans-I/O core. Events in, decisions and port calls out.

- :mod:`~warmline.core.events`: the normalized events adapters make from raw input.
- :mod:`~warmline.core.app`: the App (registration, dispatch), with
  :mod:`~warmline.core.conversation` (WebSocket messages), :mod:`~warmline.core.http`
  (``$connect`` and HTTP responses) and :mod:`~warmline.core.context` (what a handler gets).
- :mod:`~warmline.core.ports` and :mod:`~warmline.core.wiring`: the interfaces of all I/O,
  and the object that says which implementation serves each.
- :mod:`~warmline.core.relay`, :mod:`~warmline.core.session`, :mod:`~warmline.core.warmup`,
  :mod:`~warmline.core.routing`, :mod:`~warmline.core.limits`: the protocol rules.

Nothing here reads the environment, opens a socket, picks a backend or owns an event
loop; the adapters (:mod:`warmline.adapters`) do, at the edge.
"""
