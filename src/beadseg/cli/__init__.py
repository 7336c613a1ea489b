"""The ``beadseg`` command line: each command maps its flags onto one library function and
prints what it returned (:mod:`.app`: the group, shared options and the entry point
:func:`main`; one module per command group registers its commands on import)."""

from . import data, inference, training  # noqa: F401  (register their commands)
from .app import app, main

__all__ = ["app", "main"]
