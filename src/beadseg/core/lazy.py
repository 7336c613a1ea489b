"""Package faces whose names are imported on first use (``import beadseg`` and
``import beadseg.inference`` stay cheap: no torch, no scipy until a name is used)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, where: dict[str, str], extra=()) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``where`` is taken from the
    submodule it maps to (relative to ``package``) on first use.

    Examples
    --------
    In a package's ``__init__.py``::

        __getattr__, __dir__ = lazy_names(__name__, {"load_model": "runtime"})
    """

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{where[name]}", package), name)

    def __dir__() -> list[str]:
        return sorted(set(where) | set(extra))

    return __getattr__, __dir__
