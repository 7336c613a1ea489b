"""A classical bead segmenter (no deep learning), the baseline in the benchmarks.

Background subtraction (box-filter estimate), smoothing, a threshold in units of the image's
noise (:func:`beadseg.core.registration.bead_evidence`), hole filling and the same watershed split of
touching beads as the deep models use. One parameter, the threshold, is calibrated on labelled
images by :func:`calibrate_threshold`.
"""

from __future__ import annotations

import numpy as np

from ..core.beads import instances_from_mask
from ..core.config import InstanceConfig
from ..core.registration import bead_evidence


def classical_segment(
    image: np.ndarray, threshold_sd: float = 4.0, instances: InstanceConfig | None = None
) -> np.ndarray:
    """Instance labels of dark beads: evidence >= ``threshold_sd`` noise SDs, split by watershed."""
    evidence = bead_evidence(image)
    return instances_from_mask(evidence >= threshold_sd, None, instances or InstanceConfig())


def calibrate_threshold(
    images: list[np.ndarray],
    true_labels: list[np.ndarray],
    candidates=(2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0),
    centroid_px: float = 3.0,
) -> float:
    """The threshold (noise SDs) with the best pooled centroid-matching F1 on labelled images
    (:func:`beadseg.core.metrics.pool_matchings`; the first candidate wins a tie)."""
    from ..core.metrics import match_centroids, pool_matchings

    f1 = [
        pool_matchings(
            [
                match_centroids(lab, classical_segment(img, t), centroid_px)
                for img, lab in zip(images, true_labels)
            ]
        ).f1
        for t in candidates
    ]
    return float(candidates[int(np.argmax(f1))])
