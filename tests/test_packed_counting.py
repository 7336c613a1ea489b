"""The instance step when beads pack: touching pairs and packed grids split, beads cut by a
border counted once (by their centre), faint smudges left out; the count interval in counts.csv."""

import csv

import numpy as np
import pytest
from helpers import oracle_model

from beadseg.core.beads import area_count, keep_beads, segment_instances, slivers
from beadseg.core.config import InstanceConfig, PredictConfig
from beadseg.core.images import write_image
from beadseg.core.labels import centroids
from beadseg.inference.segmentation import predict_maps, segment


def _field(shape, centres, radius):
    """Foreground and a centre map (each bead's distance to its edge over its radius, the
    shipped model's centre target) of discs at ``centres``; overlaps go to the nearer centre."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.stack([np.hypot(yy - cy, xx - cx) for cy, cx in centres])
    near = d.min(0)
    prob = (near <= radius).astype(np.float32)
    if len(centres) > 1:  # the edge between two beads is half-way between their centres
        second = np.sort(d, 0)[1]
        edge = (second - near) / 2
    else:
        edge = np.full(shape, np.inf)
    centre = np.clip(np.minimum(radius - near, edge) / radius, 0, 1) * prob
    return prob, centre.astype(np.float32)


def _grid(n, pitch, radius, origin=6.0):
    return [(origin + pitch * i, origin + pitch * j) for i in range(n) for j in range(n)]


@pytest.mark.parametrize("pitch", [7.0, 6.0, 5.5])  # touching at 1.0, 0.86 and 0.79 diameters
def test_two_touching_discs_are_two_beads(pitch):
    centres = [(10.0, 10.0), (10.0, 10.0 + pitch)]
    prob, centre = _field((20, 30), centres, 3.5)
    labels = segment_instances(prob, centre)  # the defaults: centre peaks, border by centre
    assert labels.max() == 2
    assert {labels[10, 10], labels[10, int(10 + pitch)]} == {1, 2}


@pytest.mark.parametrize("pitch", [7.0, 5.6])  # just touching, and overlapping (0.8 diameters)
def test_packed_5x5_grid_of_touching_discs_is_25_beads(pitch):
    centres = _grid(5, pitch, 3.5)
    size = int(6 + 4 * pitch + 7)
    prob, centre = _field((size, size), centres, 3.5)
    labels = segment_instances(prob, centre)
    assert labels.max() == 25
    ids = {int(labels[int(round(cy)), int(round(cx))]) for cy, cx in centres}
    assert ids == set(range(1, 26))  # one bead per centre


def test_bead_cut_by_the_border_is_counted_where_its_centre_is():
    """Two frames side by side share a seam; a bead across it is counted in the frame that
    holds its centre (more than half of it shows there) and not in the other."""
    centres = [(12.0, 18.5), (12.0, 6.0), (12.0, 30.0)]  # the first straddles the seam at x = 20
    prob, centre = _field((24, 40), centres, 3.5)
    left = segment_instances(prob[:, :20], centre[:, :20])
    right = segment_instances(prob[:, 20:], centre[:, 20:])
    assert left.max() == 2 and right.max() == 1  # the seam bead once, on the left
    kept = segment_instances(prob[:, 20:], centre[:, 20:], InstanceConfig(border="keep"))
    assert kept.max() == 2  # border=keep: every piece
    assert slivers(kept, 38).sum() == 1


def test_bead_on_a_tile_seam_is_counted_once_through_the_tiled_path(tmp_path):
    """predict tiles a frame: probabilities are blended across tiles and beads found over the
    whole frame, so a bead cut by a tile seam is one bead, tiled or not."""
    model = oracle_model()
    img = np.full((192, 192, 3), 200, np.uint8)
    yy, xx = np.mgrid[:192, :192]
    centres = [(40.0, 95.5), (96.0, 96.0), (150.0, 60.0), (97.0, 150.0), (20.0, 20.0)]
    for cy, cx in centres:  # tiles of 96 px with 32 px of overlap: seams near x, y = 64-128
        img[np.hypot(yy - cy, xx - cx) <= 3.5] = 60
    tiled_cfg = PredictConfig(mode="tiled", tile_size=96, overlap=32)
    prob_tiled, _ = predict_maps(model, img, tiled_cfg)
    prob_full, _ = predict_maps(model, img, PredictConfig(mode="full"))
    assert np.abs(prob_tiled - prob_full).max() < 1e-5
    labels = segment(model, img, tiled_cfg).labels
    assert labels.max() == len(centres)
    found = centroids(labels)
    for c in centres:  # each bead once, where it is
        assert (np.hypot(*(found - c).T) < 1.0).sum() == 1
    from beadseg.inference.runner import predict_images

    write_image(tmp_path / "in" / "frame.png", img)
    predict_images(model, [tmp_path / "in"], tmp_path / "out", tiled_cfg, progress=False)
    row = next(csv.DictReader(open(tmp_path / "out" / "counts.csv")))
    assert int(row["count"]) == len(centres)
    assert len(list(csv.DictReader(open(tmp_path / "out" / "beads" / "frame.csv")))) == len(centres)


def test_faint_smudge_needs_evidence():
    prob, centre = _field((30, 40), [(15.0, 10.0), (15.0, 28.0)], 3.5)
    prob[:, 20:] *= 0.6  # the second object: a faint smudge, probability 0.6 at most
    centre[:, 20:] *= 0.45
    labels = segment_instances(prob, centre, threshold=0.5)
    assert labels.max() == 2  # no minimum: both
    strict = InstanceConfig(min_probability=0.7)
    assert segment_instances(prob, centre, strict, threshold=0.5).max() == 1
    assert segment_instances(prob, centre, InstanceConfig(min_centre=0.5), threshold=0.5).max() == 1
    only = keep_beads(segment_instances(prob, centre, threshold=0.5), prob, centre, strict)
    assert only.max() == 1 and only[15, 10] == 1


def test_area_count_is_foreground_over_single_bead_area():
    prob, _ = _field((40, 60), [(10.0, 10.0), (10.0, 30.0), (30.0, 12.0), (30.0, 45.0)], 3.5)
    labels = segment_instances(prob, None, InstanceConfig(method="distance"))
    assert area_count(labels) == pytest.approx(4.0)
    assert area_count(np.zeros((5, 5), int)) == 0.0


def test_peaks_closer_than_any_two_bead_centres_are_one_bead():
    """A bead whose centre map has two maxima 2 px apart (an elongated top) is one bead when
    peaks closer than peak_merge_px join; two beads 6 px apart stay two."""
    from beadseg.core.labels import merge_close

    prob, centre = _field((20, 40), [(10.0, 10.0), (10.0, 26.0), (10.0, 32.0)], 3.5)
    centre[10, 9], centre[10, 11] = 1.0, 1.0  # two tops 2 px apart in the first bead
    centre[10, 10] = 0.9
    split = segment_instances(prob, centre)
    merged = segment_instances(prob, centre, InstanceConfig(peak_merge_px=2.5))
    assert split.max() == 4 and merged.max() == 3
    m = np.zeros((9, 9), np.int32)
    m[1, 1], m[1, 3], m[7, 7] = 1, 2, 3
    assert merge_close(m, 2.5).max() == 2 and merge_close(m, 0).max() == 3
