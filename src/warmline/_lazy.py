"""Names a package resolves on first use (PEP 562), shared by the package ``__init__``\\ s.

A package ``__init__`` that imported its backends eagerly would make every import of the
package pay for all of them (boto3 behind the DynamoDB store, the HTTP stack behind the
``@connections`` client). Instead each ``__init__`` lists ``name -> module`` and gets its
module ``__getattr__``/``__dir__`` from here; the real imports stay under
``if TYPE_CHECKING:`` for the type checker. No ``typing`` at run time (~5 ms).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping, Sequence
    from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str,
    names: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    exported: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__`` (for error messages).
        names: exported name -> module that defines it.
        namespace: the package's ``globals()``; a resolved name is cached there.
        exported: the package's ``__all__``.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(exported)

    return __getattr__, __dir__
