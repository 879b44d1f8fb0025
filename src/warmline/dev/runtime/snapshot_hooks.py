"""Runtime hooks for the emulator's snapstart mode, compatible with ``snapshot_restore_py``.

AWS bundles a module named ``snapshot_restore_py`` in its Python runtimes (docs/protocols.md
§3.5). Inside every emulated environment this module is installed under that name in
``sys.modules``, so handler code written for SnapStart imports and runs unchanged::

    from snapshot_restore_py import register_after_restore, register_before_snapshot

    @register_after_restore
    def reconnect() -> None: ...

    register_before_snapshot(warm_caches, "arg", key="value")

Order, as documented: before-snapshot hooks run in *reverse* registration order,
after-restore hooks in registration order. Outside snapstart mode the hooks are recorded and
never run, as on AWS for functions without SnapStart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "get_after_restore",
    "get_before_snapshot",
    "register_after_restore",
    "register_before_snapshot",
]

F = TypeVar("F", bound=Callable[..., Any])

_Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

_before_snapshot: list[_Hook] = []
_after_restore: list[_Hook] = []


def register_before_snapshot(func: F, *args: Any, **kwargs: Any) -> F:
    """Run ``func(*args, **kwargs)`` before the snapshot is taken; usable as a decorator.

    Args:
        func: the hook.
        *args: positional arguments for it.
        **kwargs: keyword arguments for it.

    Returns:
        ``func`` unchanged, so the decorator form keeps the name bound.
    """
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(func: F, *args: Any, **kwargs: Any) -> F:
    """Run ``func(*args, **kwargs)`` in each environment restored from the snapshot.

    Args:
        func: the hook.
        *args: positional arguments for it.
        **kwargs: keyword arguments for it.

    Returns:
        ``func`` unchanged, so the decorator form keeps the name bound.
    """
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot() -> list[_Hook]:
    """The before-snapshot hooks in the order they must run (reverse registration)."""
    return list(reversed(_before_snapshot))


def get_after_restore() -> list[_Hook]:
    """The after-restore hooks in the order they must run (registration order)."""
    return list(_after_restore)
