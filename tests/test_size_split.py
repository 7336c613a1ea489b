"""Splitting by size: an object with the area and shape of two beads or more, seeded once, is
split; a single large round bead is not; the foreground never changes."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from beadseg.core.beads import finish_instances, seed_instances, segment_instances
from beadseg.core.config import InstanceConfig
from beadseg.core.labels import centroids
from beadseg.core.size_split import object_shapes, split_by_size


def _discs(shape, centres, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.any([np.hypot(yy - cy, xx - cx) <= radius for cy, cx in centres], axis=0)


SINGLE = float(_discs((20, 20), [(10, 10)], 4).sum())  # 49 px


def test_a_pair_seen_as_one_object_is_split_at_its_waist():
    labels = _discs((20, 30), [(10, 10), (10, 16.5)], 4).astype(np.int32)
    out = split_by_size(labels, SINGLE, ratio=2.15)
    assert out.max() == 2
    got = sorted(centroids(out)[:, 1])
    assert abs(got[0] - 10) <= 1.5 and abs(got[1] - 16.5) <= 1.5


def test_a_chain_of_three_is_three():
    labels = _discs((20, 40), [(10, 8), (10, 14.5), (10, 21)], 4).astype(np.int32)
    out = split_by_size(labels, SINGLE, ratio=2.15)
    assert out.max() == 3
    assert np.allclose(sorted(centroids(out)[:, 1]), [8, 14.5, 21], atol=1.5)


def test_a_large_round_bead_stays_one():
    # a bead 1.25 diameters across: 1.6 single-bead areas, but round
    labels = _discs((24, 24), [(12, 12)], 5).astype(np.int32)
    assert labels.sum() / SINGLE > 1.5
    assert split_by_size(labels, SINGLE, ratio=2.15).max() == 1


def test_off_and_small_objects_are_left_alone():
    labels = _discs((20, 30), [(10, 10), (10, 16.5)], 4).astype(np.int32)
    assert split_by_size(labels, SINGLE, ratio=0).max() == 1
    assert split_by_size(labels, 2 * SINGLE, ratio=2.15).max() == 1  # one bead's area: whole


def test_elongation_of_a_disc_and_of_a_bar():
    disc = _discs((20, 20), [(10, 10)], 5).astype(np.int32)
    bar = np.zeros((10, 30), np.int32)
    bar[4:6, 5:25] = 1
    assert object_shapes(disc)[3][1] < 1.1
    assert object_shapes(bar)[3][1] > 5
    assert np.allclose(np.abs(object_shapes(bar)[2][1]), [0, 1])  # the major axis runs along x


def test_segment_instances_splits_a_pair_whose_centre_peaks_merged():
    # five single beads and a tight pair whose centre map has one peak between the two
    singles = [(10, 10), (10, 40), (10, 70), (40, 10), (40, 70)]
    pair = [(40, 37), (40, 43.5)]
    prob = _discs((60, 90), singles + pair, 4).astype(np.float32)
    yy, xx = np.mgrid[:60, :90]
    centre = np.max(
        [np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.5) for cy, cx in singles + [(40, 40.25)]], 0
    )
    merged = segment_instances(prob, centre.astype(np.float32), InstanceConfig(), 0.5)
    split = segment_instances(prob, centre.astype(np.float32), InstanceConfig(split_area_ratio=2.15), 0.5)
    assert merged.max() == 6
    assert split.max() == 7


def test_one_seeding_serves_every_split_ratio():
    # evaluate --calibrate seeds once per threshold and finishes with each ratio: the seeds
    # must come out of one finish unchanged, and each finish equal segment_instances
    singles = [(10, 10), (10, 40), (40, 10)]
    yy, xx = np.mgrid[:60, :90]
    prob = _discs((60, 90), singles + [(40, 37), (40, 43.5)], 4).astype(np.float32)
    centre = np.max(
        [np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.5) for cy, cx in singles + [(40, 40.25)]], 0
    )
    centre = centre.astype(np.float32)
    seeds = seed_instances(prob, centre, InstanceConfig(), 0.5)
    before = seeds.copy()
    for ratio in (0.0, 2.15, 0.0):
        cfg = InstanceConfig(split_area_ratio=ratio)
        assert np.array_equal(
            finish_instances(seeds, prob, centre, cfg), segment_instances(prob, centre, cfg, 0.5)
        )
        assert np.array_equal(seeds, before)
    assert finish_instances(seeds, prob, centre, InstanceConfig(split_area_ratio=2.15)).max() == 5


@given(
    st.lists(st.tuples(st.floats(6, 34), st.floats(6, 54)), min_size=1, max_size=8),
    st.floats(3, 5),
    st.floats(1.2, 3.0),
)
def test_splitting_keeps_the_foreground_and_never_joins(centres, radius, ratio):
    mask = _discs((40, 60), centres, radius)
    from scipy import ndimage as ndi

    labels = ndi.label(mask)[0].astype(np.int32)
    out = split_by_size(labels, float(np.pi * radius**2), ratio)
    assert np.array_equal(out > 0, labels > 0)
    assert len(np.unique(out[out > 0])) >= len(np.unique(labels[labels > 0]))
    # every new object lies inside one old object
    for new in np.unique(out[out > 0]):
        assert len(np.unique(labels[out == new])) == 1


def test_calibrate_scans_the_split_on_exact_truth_only(tmp_path):
    """`evaluate MODEL DATA --calibrate` of a centre-head model against exact truth (centres/)
    also picks the F1-best split-by-size ratio and writes it into calibrated.pt; against masks
    alone (clumps drawn as blobs) it leaves the model's ratio as it is."""
    import csv

    from beadseg.data.synth import synth_dataset
    from beadseg.evaluation.evaluate import evaluate
    from beadseg.models.checkpoint import load_checkpoint

    data = tmp_path / "d"
    synth_dataset(data, n=2, size=128, seed=4, min_beads=20, max_beads=40)
    masks_only = evaluate("default", data, tmp_path / "ev_masks", calibrate=True, gallery=False)
    assert masks_only.calibration.split_area_ratio is None
    (data / "centres").mkdir()
    import tifffile

    for lab in sorted((data / "labels").glob("*.tif")):
        pts = centroids(tifffile.imread(lab))
        with open(data / "centres" / f"{lab.stem}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["x", "y"])
            w.writerows([[x, y] for y, x in pts])
    exact = evaluate("default", data, tmp_path / "ev_exact", calibrate=True, gallery=False)
    ratio = exact.calibration.split_area_ratio
    assert ratio is not None and ratio in (0.0, 1.9, 2.0, 2.15, 2.3, 2.5)
    meta = load_checkpoint(exact.calibration.checkpoint)["meta"]
    assert meta["instances"]["split_area_ratio"] == ratio and meta["threshold_calibrated"]
    assert meta["instances"]["border"] == "by_centre"  # the other settings stay the model's
