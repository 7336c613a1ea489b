"""Records that leave the machine (shipped and exported checkpoints, ONNX metadata, bioimage.io
packages) without the paths of the machine that wrote them."""

from __future__ import annotations

import re

#: an absolute path inside a string: POSIX (``/data/x``), home (``~/x``) or Windows (``C:\\x``,
#: ``\\\\server\\x``), starting the string or after a space, quote, bracket, ``=``, ``,`` or ``;``
#: (so ``a/b``, ``1/2`` and the ``//`` of a URL are left alone), up to the next such character
_ABSOLUTE_PATH = re.compile(r"""(?<![^\s'"(\[{=,;])(?:~|[A-Za-z]:)?[/\\][^\s'"()\[\]{},;]+""")
#: a string that is one absolute path (spaces allowed: ``/srv/lab/My beads``)
_ONE_PATH = re.compile(r"(?:~|[A-Za-z]:)?[/\\][^\n]*[^/\\\n]")


def _last_name(path: str) -> str:
    return re.split(r"[/\\]", path.rstrip("/\\"))[-1]


def strip_machine_paths(obj):
    """``obj`` with every absolute path inside its strings replaced by the path's last name.

    For records that leave the machine (shipped and exported checkpoints, ONNX metadata,
    bioimage.io packages): ``/data/ana/beads/run3/images`` -> ``images``, so a shared file names
    the data set's folders without the user's directory layout. Relative paths, URLs and
    fractions (``1/2``) are kept.

    Parameters
    ----------
    obj : str, dict, list, tuple or any
        A string, or nested dicts/lists/tuples of them (keys are kept; other values are
        returned unchanged).

    Returns
    -------
    Same type as ``obj``
        A new object; ``obj`` is not modified.

    Examples
    --------
    >>> strip_machine_paths({"path": ["/data/beads/real_all", "C:\\\\scans\\\\day2"], "n": 3})
    {'path': ['real_all', 'day2'], 'n': 3}
    >>> strip_machine_paths("trained on ['/data/a/x', 'y/z']")
    "trained on ['x', 'y/z']"
    >>> strip_machine_paths("/srv/lab/My beads/")
    'My beads'
    """
    if isinstance(obj, str):
        if _ONE_PATH.fullmatch(obj.rstrip("/\\")):
            return _last_name(obj)
        return _ABSOLUTE_PATH.sub(lambda m: _last_name(m.group()), obj)
    if isinstance(obj, dict):
        return {k: strip_machine_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(strip_machine_paths(v) for v in obj)
    return obj
