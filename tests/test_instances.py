import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beadseg.core.beads import (
    count_beads,
    count_beads_in_mask,
    instances_from_mask,
    local_maxima,
    segment_instances,
    single_bead_area,
    split_by_markers,
    split_touching,
)
from beadseg.core.config import InstanceConfig
from beadseg.core.errors import InputError
from beadseg.core.labels import centroids, filter_sizes, label_components, relabel
from beadseg.core.limits import check_threshold
from beadseg.data.synth import synth_image


def _disc(mask, cy, cx, r2=12):
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r2] = True


def test_touching_pair_is_split():
    m = np.zeros((20, 30), bool)
    _disc(m, 10, 10)
    _disc(m, 10, 17)  # touching the first
    lab = split_touching(m)
    assert lab.max() == 2 and count_beads(m) == 2
    assert np.array_equal(lab > 0, m)


def _packed_grid(n=5, radius=4.5, pitch=9.0, sigma=1.5):
    """An n x n grid of discs whose centres are one diameter apart (each touches its four
    neighbours: one component), and a centre map with a Gaussian at every centre."""
    size = int(2 * radius + 2 + pitch * (n - 1)) + 2
    yy, xx = np.mgrid[:size, :size]
    first = int(radius) + 2
    centres = [(first + pitch * i, first + pitch * j) for i in range(n) for j in range(n)]
    d = np.min([np.hypot(yy - cy, xx - cx) for cy, cx in centres], axis=0)
    return d <= radius, np.exp(-(d**2) / (2 * sigma**2)).astype(np.float32), centres


def test_packed_grid_of_touching_beads_counts_every_bead():
    """25 beads packed edge to edge are one object; every route of core.beads finds 25."""
    mask, centre, centres = _packed_grid()
    assert label_components(mask)[1] == 1
    by_distance = split_touching(mask)
    assert by_distance.max() == 25 and count_beads(mask) == 25
    markers = label_components(local_maxima(centre, 1, 0.3, mask))[0]
    by_centre = split_by_markers(mask, centre, markers)
    assert by_centre.max() == 25
    peaks = segment_instances(mask.astype(np.float32), centre, InstanceConfig(method="centre_peaks"))
    assert peaks.max() == 25
    for labels in (by_distance, by_centre, peaks):  # one bead per centre, no centre shared
        ids = [labels[int(round(cy)), int(round(cx))] for cy, cx in centres]
        assert sorted(ids) == list(range(1, 26))
    yy, xx = np.mgrid[-5:6, -5:6]
    one_bead = int((np.hypot(yy, xx) <= 4.5).sum())  # 69 px
    assert count_beads_in_mask(mask, one_bead) == 25


def test_single_bead_area_is_the_isolated_beads_not_the_clumps():
    """Six isolated beads of different sizes and four clumps of three touching beads (40 % of
    the objects): the single-bead area is the median isolated bead, not the median object."""
    mask = np.zeros((80, 120), bool)
    singles = []
    for k, r2 in enumerate((9, 10, 11, 12, 13, 14)):
        one = np.zeros_like(mask)
        _disc(one, 8, 8 + 18 * k, r2)
        singles.append(int(one.sum()))
        mask |= one
    for k in range(4):  # three touching beads in a row
        for j in range(3):
            _disc(mask, 40 + 20 * (k % 2), 10 + 50 * (k // 2) + 6 * j, 12)
    assert label_components(mask)[1] == 10
    assert single_bead_area([mask]) == np.median(singles)
    areas = np.bincount(label_components(mask)[0].ravel())[1:]
    assert np.median(areas) > np.median(singles)  # what a plain median would have said
    assert single_bead_area([np.zeros((4, 4), bool)]) == 0.0


def test_threshold_is_a_probability():
    for ok in (None, 0.01, 0.5, 0.99):
        check_threshold(ok)
    for bad in (0, 1, 1.5, -0.2):
        with pytest.raises(InputError, match=f"--threshold {bad} is not a probability"):
            check_threshold(bad)


def test_isolated_beads_counted_exactly_and_touching_pairs_split():
    """A field of 7-px beads: 30 isolated ones and 20 touching pairs (centres 7 px apart,
    horizontal, vertical or diagonal). Every isolated bead is one object, every pair two."""
    m = np.zeros((200, 250), bool)
    pairs = []
    offsets = [(0, 7), (7, 0), (5, 5)]
    k = 0
    for row in range(10):
        for col in range(5):
            cy, cx = 12 + 19 * row, 12 + 48 * col
            _disc(m, cy, cx)
            if (row * 5 + col) % 5 < 2:  # 20 of the 50 sites get a touching neighbour
                dy, dx = offsets[k % 3]
                k += 1
                _disc(m, cy + dy, cx + dx)
                pairs.append(((cy, cx), (cy + dy, cx + dx)))
    n_true = 50 + len(pairs)
    assert len(pairs) == 20 and label_components(m)[1] == 50  # each pair is one component
    lab = split_touching(m)
    assert count_beads(m) == lab.max() == n_true
    assert np.array_equal(lab > 0, m)
    for a, b in pairs:  # the two centres of each pair lie in different objects
        assert lab[a] != lab[b] and lab[a] > 0 and lab[b] > 0


def test_count_equals_split_on_synthetic():
    s = synth_image(256, 400, seed=3)
    assert count_beads(s.mask) == split_touching(s.mask).max()


def test_size_filters_and_holes():
    m = np.zeros((30, 30), bool)
    m[2:4, 2:4] = True  # 4 px speck
    m[10:20, 10:20] = True
    m[14, 14] = False  # a hole
    lab = instances_from_mask(m, None, InstanceConfig(min_area_px=8, split_touching=False))
    assert lab.max() == 1 and lab[14, 14] == 1
    assert filter_sizes(lab, 0, 50).max() == 0  # 100 px object above the maximum


def test_relabel_equals_skimage_and_keeps_only_what_is_asked():
    from skimage.segmentation import relabel_sequential

    rng = np.random.default_rng(0)
    lab = rng.choice([0, 0, 3, 7, 8, 20, 41], size=(30, 40))
    ours, n = relabel(lab)
    np.testing.assert_array_equal(ours, relabel_sequential(lab)[0])
    assert n == 5 and ours.dtype == np.int32
    keep = np.zeros(42, bool)
    keep[[7, 41]] = True
    kept, n = relabel(lab, keep)
    assert n == 2 and set(np.unique(kept)) == {0, 1, 2}
    np.testing.assert_array_equal(kept == 2, lab == 41)
    huge = np.where(lab > 0, lab.astype(np.int64) * 10**12, 0)  # no lookup table that long
    np.testing.assert_array_equal(relabel(huge)[0], ours)
    seq = ours.copy()
    assert relabel(seq)[0] is seq  # already 1..n: no copy
    lab_bool, n = relabel(lab > 0)
    assert n == int(np.max(lab_bool)) >= 1
    with pytest.raises(ValueError, match="negative"):
        relabel(np.array([[-1, 2]]))


def test_local_maxima():
    v = np.zeros((9, 12))
    v[2, 2], v[2, 4], v[6, 9] = 5, 3, 4  # the 3 lies within 2 px of the 5
    peaks = local_maxima(v, 2, floor=1)
    assert list(zip(*np.nonzero(peaks))) == [(2, 2), (6, 9)]
    assert list(zip(*np.nonzero(local_maxima(v, 1, floor=1)))) == [(2, 2), (2, 4), (6, 9)]
    mask = np.ones_like(v, bool)
    mask[6, 9] = False
    assert list(zip(*np.nonzero(local_maxima(v, 2, floor=1, mask=mask)))) == [(2, 2)]


def test_bead_table_equals_regionprops():
    from skimage.measure import regionprops_table

    from beadseg.core.labels import bead_table

    s = synth_image(96, 30, seed=7)
    img = s.image / 255.0
    prob = np.random.default_rng(1).random(img.shape[:2])
    lab = s.labels.copy()
    lab[lab == 3] = 0  # a gap in the ids
    t = bead_table(lab, img, prob)
    props = ("label", "centroid", "area", "equivalent_diameter_area", "intensity_mean")
    ref = regionprops_table(lab, intensity_image=img.mean(-1), properties=props)
    ref_prob = regionprops_table(lab, intensity_image=prob, properties=("intensity_mean",))
    np.testing.assert_array_equal(t["id"], ref["label"])
    np.testing.assert_allclose(t["centroid_y"], ref["centroid-0"])
    np.testing.assert_allclose(t["centroid_x"], ref["centroid-1"])
    np.testing.assert_allclose(t["area_px"], ref["area"])
    np.testing.assert_allclose(t["equivalent_diameter_px"], ref["equivalent_diameter_area"])
    np.testing.assert_allclose(t["mean_intensity"], ref["intensity_mean"])
    np.testing.assert_allclose(t["mean_probability"], ref_prob["intensity_mean"])
    np.testing.assert_allclose(centroids(lab), np.c_[ref["centroid-0"], ref["centroid-1"]])
    assert set(bead_table(lab)) == {"id", "centroid_x", "centroid_y", "area_px", "equivalent_diameter_px"}


def test_fill_holes_equals_scipy():
    from scipy import ndimage as ndi

    from beadseg.core.labels import fill_holes

    rng = np.random.default_rng(0)
    for _ in range(5):
        m = rng.random((40, 50)) < 0.55
        np.testing.assert_array_equal(fill_holes(m), ndi.binary_fill_holes(m))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    bits=st.lists(st.booleans(), min_size=24 * 24, max_size=24 * 24),
    single=st.floats(0, 200, allow_nan=False),
)
def test_any_mask_splits_and_counts_consistently(bits, single):
    """Whatever mask a user brings: the split keeps every pixel and every component, counts
    what count_beads counts, and the mask count is at least one bead per object."""
    mask = np.array(bits, bool).reshape(24, 24)
    n_objects = label_components(mask)[1]
    labels = split_touching(mask)
    np.testing.assert_array_equal(labels > 0, mask)
    assert labels.max() == count_beads(mask) >= n_objects
    in_mask = count_beads_in_mask(mask, single)
    assert in_mask >= n_objects and (in_mask == 0) == (n_objects == 0)
    areas = np.bincount(label_components(mask)[0].ravel())[1:]
    area = single_bead_area([mask])
    assert (area == 0) if n_objects == 0 else areas.min() <= area <= areas.max()
