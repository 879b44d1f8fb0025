"""Wiring: the one object that tells an App which implementation serves each port.

The App never chooses a backend, reads the environment or owns an event loop. The edge
does: an adapter builds a Wiring (``warmline.adapters.compose.from_environment`` reads
``WARMLINE_STORE``, the Twilio token, ``WARMLINE_DEV_FAULTS``, ... once) and hands it
to :meth:`warmline.core.app.App.compose`. What the App's constructor was given
explicitly wins over the Wiring; the Wiring fills in the rest.
"""

from __future__ import annotations

from warmline.core._struct import Struct, init_fields

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from warmline.core.ports import (
        ConnectionsFactory,
        Runner,
        SessionStore,
        SignatureCheck,
        StoreFactory,
    )

__all__ = ["Wiring"]


class Wiring(Struct):
    """The ports an App uses when its constructor was not given them.

    Attributes:
        store: the session store, or a zero-argument factory (called on first use).
        store_wrapper: wraps whichever store the App ends up with (the emulator's
            fault injection); None: the store as is.
        connections: ConnectionClient per connection (``(ref, log) -> client``).
        signature_check: checks ``$connect`` handshakes when a Twilio token is set.
        twilio_auth_token: the token, or a zero-argument callable that reads it.
        runner: runs handlers' coroutines.
        prewarm: loads what ``connections`` needs on its first send (modules, TLS), run
            on an environment's first warm-up while ``connections`` is the one in use.
        allow_unsigned: accept unsigned ``$connect`` handshakes and Twilio webhooks when no
            token is configured (``WARMLINE_ALLOW_UNSIGNED=1``); None or False: refuse
            them. The App's own ``allow_unsigned`` wins.
    """

    __slots__ = (
        "store",
        "store_wrapper",
        "connections",
        "signature_check",
        "twilio_auth_token",
        "runner",
        "prewarm",
        "allow_unsigned",
    )
    store: SessionStore | StoreFactory | None
    store_wrapper: Callable[[SessionStore], SessionStore] | None
    connections: ConnectionsFactory | None
    signature_check: SignatureCheck | None
    twilio_auth_token: str | Callable[[], str | None] | None
    runner: Runner | None
    prewarm: Callable[[], object] | None
    allow_unsigned: bool | None

    def __init__(
        self,
        *,
        store: SessionStore | StoreFactory | None = None,
        store_wrapper: Callable[[SessionStore], SessionStore] | None = None,
        connections: ConnectionsFactory | None = None,
        signature_check: SignatureCheck | None = None,
        twilio_auth_token: str | Callable[[], str | None] | None = None,
        runner: Runner | None = None,
        prewarm: Callable[[], object] | None = None,
        allow_unsigned: bool | None = None,
    ) -> None:
        init_fields(
            self,
            store=store,
            store_wrapper=store_wrapper,
            connections=connections,
            signature_check=signature_check,
            twilio_auth_token=twilio_auth_token,
            runner=runner,
            prewarm=prewarm,
            allow_unsigned=allow_unsigned,
        )
