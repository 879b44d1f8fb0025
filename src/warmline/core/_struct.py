"""A tiny base for the frozen, slotted value classes on the Lambda hot path.

Why not ``dataclasses``: importing it loads ``inspect`` (and with it ``ast``, ``dis``,
``tokenize``), and each ``@dataclass(frozen=True, slots=True)`` compiles several methods
with ``exec`` and rebuilds the class at import time. Measured in fresh interpreters with
cached bytecode, that was about two thirds of ``import warmline.adapters.aws_lambda`` (the
module itself plus ~1 ms per class). These classes keep the same contract — keyword
construction, immutability, value equality, a readable repr, ``copy`` and ``pickle`` —
with a hand-written ``__init__`` per class and the rest here, built once.
"""

from __future__ import annotations

__all__ = ["Struct", "init_fields"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def init_fields(obj: Struct, **values: Any) -> None:
    """Set fields on a frozen instance (for ``__init__`` and ``evolve`` only)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def _rebuild(cls: type[Struct], values: tuple[Any, ...]) -> Struct:
    """Unpickle (or copy) a Struct: set its fields without running ``__init__`` again."""
    obj = object.__new__(cls)
    names: tuple[str, ...] = cls.__slots__
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


class Struct:
    """Frozen value object whose fields are its ``__slots__``."""

    __slots__ = ()

    def _fields(self) -> tuple[str, ...]:
        return type(self).__slots__

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use evolve()/a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields())
        return f"{type(self).__name__}({args})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default protocol restores slots with setattr, which a frozen class refuses.
        return (_rebuild, (type(self), self._values()))

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (like ``dataclasses.replace``)."""
        values = {name: getattr(self, name) for name in self._fields()}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        values.update(changes)
        return type(self)(**values)
