"""Settings as an output folder records them, and how two records differ, in words.

A folder's manifest holds its command's settings as plain JSON (:func:`normalised`); a refusal
names the keys whose values differ (:func:`settings_difference`), and a setting that the folder
does not hold because it was written before that setting existed (:func:`unrecorded`).
"""

from __future__ import annotations

import json
from typing import Any


def normalised(settings: Any) -> Any:
    """``settings`` as JSON holds them (tuples as lists, paths as strings), keys sorted."""
    from .provenance import to_jsonable

    return json.loads(json.dumps(to_jsonable(settings), sort_keys=True))


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def settings_difference(old: Any, new: Any, limit: int = 3) -> str:
    """The keys whose values differ, as ``key old -> new`` (at most ``limit`` of them); a key
    the old folder did not record reads ``(not recorded)``."""

    def short(v: Any) -> str:
        if v is _UNSET:
            return "(not recorded)"
        text = json.dumps(v)
        return text if len(text) <= 48 else text[:45] + "..."

    a, b = _flat(normalised(old)), _flat(normalised(new))
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, _UNSET) != b.get(k, _UNSET))
    parts = [
        f"{k or 'settings'} {short(a.get(k, _UNSET))} -> {short(b.get(k, _UNSET))}" for k in keys[:limit]
    ]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more")
    return ", ".join(parts)


_UNSET = object()


def unrecorded(old: Any, new: Any) -> dict[str, str]:
    """When the only differences are settings ``old`` lacks (written before they existed): each
    such key with its value now; else {}."""
    a, b = _flat(normalised(old)), _flat(normalised(new))
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, _UNSET) != b.get(k, _UNSET))
    if not keys or any(k in a for k in keys):
        return {}
    return {k: json.dumps(b[k]) for k in keys}
