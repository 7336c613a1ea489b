"""Image domains: real tiles and synthetic tiles, told apart by name and confirmed by looks.

A data set can mix real microscope tiles with synthetic ones (``synthetic_*`` names, or tiles
``beadseg synth`` recorded in the folder's ``synthetic.json``: :data:`beadseg.core.naming.SYNTHETIC_RECORD`).
Their bead density, colour and masks differ, so every headline of the dataset doctor is reported
per domain, never pooled. The record and the name decide the domain; image statistics confirm
it, and a tile whose looks disagree with its name is reported.

Looks: three features that separate the two domains of the public microbead data, each taken
only when the two named domains differ clearly on it:

* ``green_cast``: ``(G - R) / grey`` of the background (synthetic ~0.05-0.1, real ~0-0.03);
* ``bead_blue_ratio``: blue darkening / green darkening of the beads (synthetic ~0.8, real ~0.2-0.55:
  real beads are blue-violet);
* ``soft_mask``: intermediate mask values at object edges (the synthetic masks are soft).

A tile looks like the domain on whose side of the midpoint between the two domain medians most of
the usable features fall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REAL = "real"
SYNTHETIC = "synthetic"
DOMAINS = (REAL, SYNTHETIC)
FEATURES = ("green_cast", "bead_blue_ratio", "soft_mask")


def domain_by_name(name: str) -> str:
    """``"synthetic"`` for names starting with ``synthetic`` (any case), else ``"real"``."""
    return SYNTHETIC if str(name).lower().startswith("synthetic") else REAL


def domain_of(name: str, folder=None) -> str:
    """The domain of the tile ``name`` of the data folder ``folder``: synthetic when
    ``beadseg synth`` recorded it there as generated (whatever it is called), else by its name
    (:func:`domain_by_name`)."""
    from ..core.naming import read_synthetic_names

    if folder is not None and str(name) in read_synthetic_names(folder):
        return SYNTHETIC
    return domain_by_name(name)


@dataclass(frozen=True)
class DomainMismatch:
    """A tile whose looks disagree with the domain its name gives."""

    name: str
    named: str
    looks_like: str
    evidence: str


@dataclass
class DomainCheck:
    """Which domain each tile looks like, and the tiles whose looks disagree with their name.

    ``checked`` is False when the set holds one named domain only (nothing to compare with).
    """

    checked: bool
    features_used: list[str]
    medians: dict[str, dict[str, float]]
    looks_like: dict[str, str] = field(default_factory=dict)
    mismatches: list[DomainMismatch] = field(default_factory=list)


def _features(m) -> dict[str, float]:
    return {"green_cast": m.green_cast, "bead_blue_ratio": m.bead_blue_ratio, "soft_mask": float(m.soft_mask)}


def _usable(med: dict[str, dict[str, float]], spread: dict[str, float], feature: str) -> bool:
    a, b = med[REAL][feature], med[SYNTHETIC][feature]
    if not (np.isfinite(a) and np.isfinite(b)):
        return False
    if feature == "soft_mask":
        return a != b
    # the medians must differ by more than 3 robust SDs of the spread inside the domains
    return abs(a - b) > 3 * spread[feature]


def check_domains(measurements) -> DomainCheck:
    """Confirm each tile's named domain by its looks (see the module docstring)."""
    feats = {m.name: _features(m) for m in measurements}
    named = {m.name: m.domain for m in measurements}
    groups = {d: [feats[n] for n in feats if named[n] == d] for d in DOMAINS}
    if not all(groups.values()):
        return DomainCheck(False, [], {}, dict(named))
    med, spread = {}, {}
    for d, rows in groups.items():
        med[d] = {
            f: float(np.nanmedian([r[f] for r in rows]))
            if any(np.isfinite(r[f]) for r in rows)
            else float("nan")
            for f in FEATURES
        }
    for f in FEATURES:
        dev = [abs(r[f] - med[d][f]) for d, rows in groups.items() for r in rows if np.isfinite(r[f])]
        spread[f] = 1.4826 * float(np.median(dev)) if dev else float("inf")
    used = [f for f in FEATURES if _usable(med, spread, f)]
    out = DomainCheck(bool(used), used, med)
    for name, x in feats.items():
        votes = []
        for f in used:
            if np.isfinite(x[f]):
                mid = (med[REAL][f] + med[SYNTHETIC][f]) / 2
                toward_synth = (x[f] > mid) == (med[SYNTHETIC][f] > med[REAL][f])
                votes.append(SYNTHETIC if toward_synth else REAL)
        look = (
            max(DOMAINS, key=votes.count)
            if votes and votes.count(REAL) != votes.count(SYNTHETIC)
            else named[name]
        )
        out.looks_like[name] = look
        if look != named[name]:
            shown = ", ".join(
                f"{f} {x[f]:.2f} ({REAL} {med[REAL][f]:.2f}, {SYNTHETIC} {med[SYNTHETIC][f]:.2f})"
                for f in used
            )
            out.mismatches.append(DomainMismatch(name, named[name], look, shown))
    return out
