import numpy as np
import pytest

from beadseg.metrics import (
    best_shift_iou,
    count_error,
    count_summary,
    match_centroids,
    match_objects,
    mean_iou,
    pixel_scores,
    pooled,
)
from beadseg.registration import shift_mask


def test_pixel_scores_and_empty_cases():
    p = np.array([[1, 1, 0, 0]], bool)
    t = np.array([[1, 0, 0, 0]], bool)
    s = pixel_scores(p, t)
    assert (s.tp, s.fp, s.fn, s.tn) == (1, 1, 0, 2)
    assert s.iou == 0.5 and s.dice == pytest.approx(2 / 3)
    e = pixel_scores(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert e.iou == 1.0 and e.dice == 1.0
    miss = pixel_scores(np.ones((2, 2), bool), np.zeros((2, 2), bool))
    assert miss.iou == 0.0


def test_mean_vs_pooled():
    # image A: 1 of 1 pixel right; image B: 1 of 9 pixels right (truth 9, pred 1)
    a = pixel_scores(np.array([[1]], bool), np.array([[1]], bool))
    tb = np.ones((3, 3), bool)
    pb = np.zeros((3, 3), bool)
    pb[0, 0] = True
    b = pixel_scores(pb, tb)
    assert mean_iou([a, b]) == pytest.approx((1 + 1 / 9) / 2)
    assert pooled([a, b]).iou == pytest.approx(2 / 10)
    empty = pixel_scores(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert mean_iou([a, empty]) == 1.0 and pooled([a, empty]).iou == 1.0


def _random_labels(rng, shape=(96, 96), n=25, jitter=0):
    from beadseg.synth import synth_image

    s = synth_image(shape, n, seed=int(rng.integers(1e9)))
    lab = s.labels.copy()
    if jitter:
        lab = shift_mask(lab, int(rng.integers(-jitter, jitter + 1)), int(rng.integers(-jitter, jitter + 1)))
    return lab


@pytest.mark.parametrize("thresh", [0.1, 0.3, 0.5, 0.7])
def test_object_matching_equals_stardist(rng, thresh):
    from stardist.matching import matching

    from beadseg.synth import synth_image

    for _ in range(6):
        s = synth_image((96, 96), int(rng.integers(0, 40)), seed=int(rng.integers(1e9)))
        true = s.labels
        # prediction: shifted truth, with some objects dropped, merged or added
        pred = shift_mask(true, int(rng.integers(-2, 3)), int(rng.integers(-2, 3))).copy()
        ids = np.unique(pred)[1:]
        if len(ids) > 3:
            pred[pred == ids[0]] = 0
            pred[pred == ids[1]] = ids[2]
        pred[rng.integers(0, 90):][:3, :5] = 999
        ref = matching(true, pred, thresh=thresh)
        ours = match_objects(true, pred, thresh=thresh)
        for k in ("tp", "fp", "fn", "n_true", "n_pred"):
            assert getattr(ours, k) == getattr(ref, k), k
        for k in ("precision", "recall", "accuracy", "f1", "mean_true_score",
                  "mean_matched_score", "panoptic_quality"):
            assert getattr(ours, k) == pytest.approx(getattr(ref, k), abs=1e-6), k


def test_object_matching_empty():
    z = np.zeros((8, 8), int)
    m = match_objects(z, z)
    assert (m.tp, m.fp, m.fn, m.f1) == (0, 0, 0, 0.0)
    one = z.copy()
    one[2:4, 2:4] = 1
    assert match_objects(one, z).fn == 1 and match_objects(z, one).fp == 1


def test_object_matching_is_fast_on_4k_labels():
    from beadseg.synth import synth_image

    s = synth_image((1080, 1920), 3000, seed=0)
    m = match_objects(s.labels, shift_mask(s.labels, 1, 0))
    assert m.n_true == m.n_pred and m.tp > 0.9 * m.n_true


def test_centroid_matching():
    t = np.zeros((20, 20), int)
    t[2:5, 2:5] = 1
    t[10:13, 10:13] = 2
    p = shift_mask(t, 2, 0)  # 2 px off: matched within 3 px, not within 1 px
    assert match_centroids(t, p, 3).tp == 2
    assert match_centroids(t, p, 1).tp == 0


def test_best_shift_iou_recovers_offset():
    t = np.zeros((30, 30), bool)
    t[10:16, 10:16] = True
    p = shift_mask(t, 2, -1)
    iou, dy, dx = best_shift_iou(p, t, 3)
    assert iou == 1.0 and (dy, dx) == (2, -1)
    assert pixel_scores(p, t).iou < 0.6


def test_count_error():
    assert count_error(12, 10) == pytest.approx(0.2)
    assert count_error(2, 0) == 2.0
    cs = count_summary([11, 9, 0], [10, 10, 0])
    assert cs.median_abs_error == pytest.approx(0.1)
    assert cs.total_relative_error == pytest.approx(0.0)
