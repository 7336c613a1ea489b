"""What every workflow shares: settings values made comparable, results made JSON-ready."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def absolute(path: str | Path | None) -> str | None:
    """A path as an absolute string for a folder's settings identity (None stays None): the
    same input named from another working folder is the same input."""
    return None if path is None else str(Path(path).resolve())


def plain(obj: Any) -> Any:
    """``obj`` with paths as strings and tuples as lists, for JSON."""
    from ..outputs.provenance import to_jsonable

    return to_jsonable(obj)


def quiet(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log``, or a function that prints nothing."""
    return log if log is not None else (lambda line: None)
