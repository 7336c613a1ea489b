"""The words of the reports, each defined once.

A result carries its own definitions (``metrics.json`` and ``summary.json`` hold them under
``definitions``, keyed by field name, with the settings of the run filled in); the report lists
them under readable names. :data:`GENERAL` defines the words every report uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

GENERAL = {
    "pixel IoU": "|P and T| / |P or T| of the predicted (P) and true (T) foreground pixels; "
    "an image with both empty scores 1",
    "precision, recall, F1": "from one-to-one matched pairs of predicted and true objects (TP), "
    "unmatched predictions (FP) and unmatched true objects (FN): precision = TP / (TP + FP), "
    "recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN)",
    "Dice": "2 |P and T| / (|P| + |T|) of the predicted (P) and true (T) foreground pixels; "
    "an image with both empty scores 1",
    "source frame": "the camera frame a tile was cut from: the file name before _grid_ "
    "(else the whole stem); tiles of one frame overlap and are not independent",
    "dilution": "the leading <number>x of a file name, read as a whole number (320x is 320)",
    "beads per MP": "beads per million pixels of image area",
    "dilution slope": "slope of log10(beads per MP) against log10(dilution), fitted over source "
    "frames (tiles of one frame are not independent); a true dilution series gives -1",
}

#: readable names of the keys of :attr:`beadseg.evaluation.scores.Evaluation.definitions`
EVALUATION_NAMES = {
    "iou_mean": "pixel IoU (mean)",
    "iou_pooled": "pixel IoU (pooled)",
    "iou_best_shift": "shift-tolerant IoU",
    "object": "object F1 (IoU 0.5)",
    "centroid": "centroid F1",
    "count_error": "count error",
    "true_instances": "true instances",
}

#: readable names of the keys of ``summary.json["definitions"]`` (`beadseg analyze`)
ANALYSIS_NAMES = {
    "domain": "domain",
    "beads_split": "beads (watershed split)",
    "objects": "connected objects",
    "beads_area": "beads by area",
    "brightness": "brightness",
    "contrast": "contrast",
    "bead_contrast": "bead contrast",
    "foreground_fraction": "foreground fraction",
    "mask_corr": "mask fit (correlation)",
    "dilution_fit": "dilution fit",
}


def named_terms(
    definitions: Mapping[str, str], names: Mapping[str, str], general: Iterable[str] = ()
) -> dict[str, str]:
    """Readable term -> definition: ``definitions`` (keyed by field name) under their ``names``
    (a key without a name keeps its own), plus the :data:`GENERAL` terms listed in ``general``.

    Examples
    --------
    >>> terms = named_terms({"count_error": "(pred - true) / max(true, 1)"}, EVALUATION_NAMES, ["Dice"])
    >>> list(terms)
    ['count error', 'Dice']
    """
    out = {names.get(k, k): v for k, v in definitions.items()}
    for term in general:
        out[term] = GENERAL[term]
    return out
