"""The bounds of the values users give, chosen in one place: plausible physical sizes,
dilution factors, and the largest shift searches.

A value outside them is refused with one line naming the value, the range and the unit, rather
than turned into a silently absurd number (a pixel size of 1e-30 µm makes every density
1e60 times too large) or an hour of searching.

=========================  ===============  ===================================================
quantity                   range            why
=========================  ===============  ===================================================
pixel size (µm)            0.01 - 100       in the sample plane: 100x objective on 1 µm camera
                                            pixels is 0.01; a 1x macro lens on 100 µm ones 100
chamber depth (µm)         1 - 10,000       thin slides to 1 cm cuvettes (a haemocytometer: 100)
dilution factor            1 - 1e12         1 is undiluted; a 1e12-fold series is already absurd
shift search radius (px)   0 - 32           annotations sit a few px off their beads; 32 px is a
                                            bead diameter or more at every scale beadseg uses
centroid match distance    0 - 100 px       a bead's radius is the sensible distance; every pair
                                            within it is a candidate (memory grows with it)
probability threshold      (0, 1), open     a pixel is bead above it; 0 or 1 makes every pixel
                                            bead, or none
=========================  ===============  ===================================================
"""

from __future__ import annotations

import math
import numbers

from .errors import InputError

#: (low, high, unit, what it is, example) of each physical quantity users give
PHYSICAL = {
    "pixel_size_um": (0.01, 100.0, "µm", "pixel size of a microscope image", "0.345; 345 nm is 0.345"),
    "depth_um": (1.0, 10_000.0, "µm", "depth of a counting chamber", "100"),
}

#: dilution factors: 1 (undiluted) up to this
MAX_DILUTION = 1e12

#: the largest shift (px) any mask-shift search looks at: evaluate's shift-tolerant IoU, mask
#: alignment in training, the dataset doctor's registration and owner searches
MAX_SHIFT_RADIUS_PX = 32

#: the largest distance (px) at which bead centres are matched (evaluate --centroid-px)
MAX_CENTROID_DISTANCE_PX = 100.0


def physical_problem(value: float, quantity: str) -> str | None:
    """Why ``value`` is not a plausible ``quantity`` (a key of :data:`PHYSICAL`), or None.

    Examples
    --------
    >>> physical_problem(0.345, "pixel_size_um") is None
    True
    >>> physical_problem(0, "depth_um")
    '0 µm is outside 1-10000 µm, the plausible depth of a counting chamber; give it in µm (e.g. 100)'
    """
    low, high, unit, what, example = PHYSICAL[quantity]
    try:
        v = float(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number; give the {what} in {unit} (e.g. {example})"
    if math.isfinite(v) and low <= v <= high:
        return None
    return (
        f"{v:g} {unit} is outside {low:g}-{high:g} {unit}, the plausible {what}; "
        f"give it in {unit} (e.g. {example})"
    )


def shift_radius_problem(radius_px: int) -> str | None:
    """Why ``radius_px`` is not a shift search radius (0 to :data:`MAX_SHIFT_RADIUS_PX`), or None.

    Examples
    --------
    >>> shift_radius_problem(3) is None
    True
    >>> shift_radius_problem(1000)[:30]
    '1000 px is outside 0-32 px (an'
    """
    real = isinstance(radius_px, numbers.Real) and not isinstance(radius_px, bool)
    if not real or not float(radius_px).is_integer():
        return f"{radius_px!r} is not a whole number of pixels"
    if not 0 <= radius_px <= MAX_SHIFT_RADIUS_PX:
        return (
            f"{radius_px} px is outside 0-{MAX_SHIFT_RADIUS_PX} px (annotations sit a few px off their "
            "beads; a larger search matches beads to their neighbours)"
        )
    return None


def check_physical(value: float, quantity: str, name: str) -> float:
    """``value`` when it is a plausible ``quantity`` (see :func:`physical_problem`).

    Raises
    ------
    InputError
        Naming ``name`` (the option or key), the value, the range and the unit.
    """
    problem = physical_problem(value, quantity)
    if problem:
        raise InputError(f"{name} {problem}")
    return float(value)


def check_shift_radius(radius_px: int, name: str) -> int:
    """``radius_px`` when it is a shift search radius (see :func:`shift_radius_problem`).

    Raises
    ------
    InputError
        Naming ``name`` (the option or key), the value and the range.
    """
    problem = shift_radius_problem(radius_px)
    if problem:
        raise InputError(f"{name} {problem}; give a smaller radius")
    return int(radius_px)


def check_centroid_distance(distance_px: float, name: str) -> float:
    """``distance_px`` when it is a centre matching distance (above 0, at most
    :data:`MAX_CENTROID_DISTANCE_PX`).

    Raises
    ------
    InputError
        Naming ``name``, the value and the range.
    """
    try:
        ok = 0 < float(distance_px) <= MAX_CENTROID_DISTANCE_PX
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"{name} {distance_px!r} is not a distance in px above 0 and at most "
            f"{MAX_CENTROID_DISTANCE_PX:g} (centres are matched within about a bead radius; e.g. 3)"
        )
    return float(distance_px)


def check_threshold(threshold: float | None, name: str = "--threshold") -> None:
    """A probability threshold must lie strictly between 0 and 1 (None: the model's).

    Raises
    ------
    InputError
        Naming the value (as ``name``) and the fix.
    """
    if threshold is not None and not 0 < threshold < 1:
        raise InputError(
            f"{name} {threshold} is not a probability between 0 and 1 (exclusive); "
            "e.g. 0.5, or leave it out to use the model's"
        )
