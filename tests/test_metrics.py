import numpy as np
import pytest

from beadseg.core.metrics import (
    best_shift_iou,
    count_error,
    count_summary,
    match_centroids,
    match_objects,
    match_points,
    mean_iou,
    pixel_scores,
    pool_matchings,
    pooled,
)
from beadseg.core.registration import shift_mask

STARDIST_COUNTS = ("tp", "fp", "fn", "n_true", "n_pred")
STARDIST_SCORES = (
    "precision",
    "recall",
    "accuracy",
    "f1",
    "mean_true_score",
    "mean_matched_score",
    "panoptic_quality",
)


def assert_same_as_stardist(ours, ref):
    """Our matching equals stardist's: counts exactly, scores to 1e-6 (stardist: float32 IoU)."""
    for k in STARDIST_COUNTS:
        assert getattr(ours, k) == getattr(ref, k), k
    for k in STARDIST_SCORES:
        assert getattr(ours, k) == pytest.approx(getattr(ref, k), abs=1e-6), k


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
    from beadseg.data.synth import synth_image

    s = synth_image(shape, n, seed=int(rng.integers(1e9)))
    lab = s.labels.copy()
    if jitter:
        lab = shift_mask(lab, int(rng.integers(-jitter, jitter + 1)), int(rng.integers(-jitter, jitter + 1)))
    return lab


@pytest.mark.parametrize("thresh", [0.1, 0.3, 0.5, 0.7])
def test_object_matching_equals_stardist(rng, thresh):
    from stardist.matching import matching

    from beadseg.data.synth import synth_image

    for _ in range(6):
        s = synth_image((96, 96), int(rng.integers(0, 40)), seed=int(rng.integers(1e9)))
        true = s.labels
        # prediction: shifted truth, with some objects dropped, merged or added
        pred = shift_mask(true, int(rng.integers(-2, 3)), int(rng.integers(-2, 3))).copy()
        ids = np.unique(pred)[1:]
        if len(ids) > 3:
            pred[pred == ids[0]] = 0
            pred[pred == ids[1]] = ids[2]
        pred[rng.integers(0, 90) :][:3, :5] = 999
        ref = matching(true, pred, thresh=thresh)
        ours = match_objects(true, pred, thresh=thresh)
        assert_same_as_stardist(ours, ref)


def test_object_matching_empty_images():
    """Nothing to find and nothing found scores 1 (the one exception to stardist, which gives 0);
    one empty side scores 0."""
    z = np.zeros((8, 8), int)
    m = match_objects(z, z)
    assert (m.tp, m.fp, m.fn) == (0, 0, 0)
    assert m.f1 == m.precision == m.recall == m.accuracy == m.panoptic_quality == 1.0
    assert match_points(np.zeros((0, 2)), np.zeros((0, 2))).f1 == 1.0
    one = z.copy()
    one[2:4, 2:4] = 1
    miss, extra = match_objects(one, z), match_objects(z, one)
    assert (miss.fn, miss.f1, miss.recall) == (1, 0.0, 0.0)
    assert (extra.fp, extra.f1, extra.precision) == (1, 0.0, 0.0)


def test_pooling_sums_counts_and_ignores_empty_empty_images():
    z = np.zeros((8, 8), int)
    t = z.copy()
    t[1:4, 1:4] = 1
    t[5:8, 5:8] = 2
    p = z.copy()
    p[1:4, 1:4] = 1  # one found, one missed
    p[5:7, 0:2] = 2  # one false
    a = match_objects(t, p)
    empty = match_objects(z, z)
    pooled_a = pool_matchings([a, empty, empty])
    assert (pooled_a.tp, pooled_a.fp, pooled_a.fn) == (1, 1, 1)
    assert pooled_a.f1 == pytest.approx(a.f1) == pytest.approx(0.5)
    assert pool_matchings([empty, empty]).f1 == 1.0
    with pytest.raises(ValueError, match="different"):
        pool_matchings([a, match_objects(t, p, 0.7)])


def test_pooling_equals_stardist_matching_dataset(rng):
    from stardist.matching import matching_dataset

    from beadseg.data.synth import synth_image

    trues, preds = [], []
    for _ in range(5):
        s = synth_image((64, 64), int(rng.integers(5, 30)), seed=int(rng.integers(1e9)))
        trues.append(s.labels)
        preds.append(shift_mask(s.labels, int(rng.integers(-2, 3)), 1))
    ref = matching_dataset(trues, preds, thresh=0.5, show_progress=False)
    ours = pool_matchings([match_objects(t, p, 0.5) for t, p in zip(trues, preds)])
    assert_same_as_stardist(ours, ref)


def test_object_matching_on_a_4k_label_image_has_the_known_answer():
    """25,347 6x6 squares on a 3840x2160 grid; the prediction is the truth shifted down 1 px
    (IoU 30/42 each) with every 24th square missing and 300 small false objects in the gaps."""
    true = np.zeros((2160, 3840), np.int32)
    pred = np.zeros_like(true)
    k = 0
    for y in range(4, 2160 - 10, 18):
        for x in range(4, 3840 - 10, 18):
            k += 1
            true[y : y + 6, x : x + 6] = k
            if k % 24 != 0:
                pred[y + 1 : y + 7, x : x + 6] = k
    n_missed = k // 24
    pred[pred > 0] += 10_000_000  # ids unrelated to the truth's
    for i in range(300):  # false objects in the 12-px gaps between the squares
        y, x = 12 + 18 * (i // 100), 12 + 18 * (i % 100)
        pred[y : y + 4, x : x + 4] = 20_000_000 + i
    m = match_objects(true, pred)
    assert (m.n_true, m.n_pred) == (k, k - n_missed + 300)
    assert (m.tp, m.fn, m.fp) == (k - n_missed, n_missed, 300)
    assert m.mean_matched_score == pytest.approx(30 / 42)
    c = match_centroids(true, pred, 3.0)  # centres 0.5 px apart
    assert (c.tp, c.fn, c.fp) == (k - n_missed, n_missed, 300)


def test_match_points_is_optimal_and_inclusive():
    # greedy nearest-first would pair (2.5, 1.5) and leave (0, 4) 4 px apart: one match;
    # the optimal assignment pairs 0-1.5 and 2.5-4: two matches
    true = np.array([[0, 0], [0, 2.5]])
    pred = np.array([[0, 1.5], [0, 4.0]])
    m = match_points(true, pred, 3.0)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.mean_matched_score == pytest.approx(1 - 1.5 / 3)
    assert match_points([[0, 0]], [[0, 3.0]], 3.0).tp == 1  # at the distance: matched
    assert match_points([[0, 0]], [[0, 3.01]], 3.0).tp == 0
    none = match_points(true, np.zeros((0, 2)), 3.0)
    assert (none.tp, none.fn, none.f1, none.criterion) == (0, 2, 0.0, "centroid")


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


def test_docstring_examples_hold():
    import doctest

    import beadseg.core.beads
    import beadseg.core.labels
    import beadseg.core.metrics
    import beadseg.inference.tiling

    for module in (beadseg.core.metrics, beadseg.core.beads, beadseg.core.labels, beadseg.inference.tiling):
        assert doctest.testmod(module).failed == 0, module.__name__
