"""Exact-truth composites: labels agree with the centres, groups touch, inputs are validated."""

import csv

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from beadseg.core.errors import InputError
from beadseg.core.images import read_image, write_image
from beadseg.core.masks import read_mask, write_mask
from beadseg.core.registration import bead_evidence
from beadseg.data.composite.compose import write_composites
from beadseg.data.composite.layout import TruthLevel, draw_labels, layout_beads
from beadseg.data.composite.sources import collect_sources
from beadseg.data.synth import synth_image


def _sparse_tiles(folder, frames=("5120x_a", "5120x_b"), size=192, beads=7):
    """Sparse labelled tiles of isolated dark beads (two tiles per frame); returns the truth."""
    truth = {}
    for f, frame in enumerate(frames):
        for c in range(2):
            name = f"{frame}_grid_r0_c{c}"
            s = synth_image(
                size,
                beads,
                seed=10 * f + c,
                cluster_fraction=0.0,
                min_gap_px=14,
                illumination=0.0,
                background=0.5,
                contrast=0.45,
            )
            write_image(folder / "images" / f"{name}.png", s.image)
            write_mask(folder / "masks" / f"{name}.png", s.mask)
            truth[name] = s
    return folder


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _read(out, name):
    rows = _rows(out / "centres" / f"{name}.csv")
    labels = tifffile.imread(out / "labels" / f"{name}.tif").astype(int)
    return rows, labels


# bead counts are per 512 x 512 px: x 1/16 on a 128-px tile
MIXED = TruthLevel("mixed", 16 * 24, 0.6, max_group=5)


@pytest.fixture
def tiles(tmp_path):
    return _sparse_tiles(tmp_path / "data")


def test_labels_equal_centres(tiles, tmp_path):
    out = tmp_path / "out"
    res = write_composites(out, tiles, [MIXED], n_per_level=2, size=128, seed=1)
    assert res.names == ["truth_mixed_000", "truth_mixed_001"]
    for name in res.names:
        rows, labels = _read(out, name)
        assert len(rows) == 24
        ids = [int(r["id"]) for r in rows]
        assert ids == list(range(1, 25))
        assert set(np.unique(labels)) - {0} == set(ids)  # one instance per centre, nothing else
        for r in rows:
            x, y = float(r["x"]), float(r["y"])
            assert 0 <= x <= 127 and 0 <= y <= 127
            assert labels[int(round(y)), int(round(x))] == int(r["id"])
        mask = read_mask(out / "masks" / f"{name}.png").mask
        np.testing.assert_array_equal(mask, labels > 0)


def test_pasted_beads_sit_at_their_centres(tiles, tmp_path):
    out = tmp_path / "out"
    write_composites(out, tiles, [TruthLevel("few", 16 * 8, 0.0)], n_per_level=1, size=128, seed=3)
    rows, labels = _read(out, "truth_few_000")
    image = read_image(out / "images" / "truth_few_000.png")
    dark = np.clip(np.median(image) - image.mean(-1), 0, None)
    for r in rows:
        x, y = float(r["x"]), float(r["y"])
        win = (slice(int(y) - 5, int(y) + 6), slice(int(x) - 5, int(x) + 6))
        d = dark[win] * (dark[win] >= 0.5 * dark[win].max())
        cy, cx = ndi.center_of_mass(d)
        assert np.hypot(cy + win[0].start - y, cx + win[1].start - x) < 0.6


def test_touching_groups_touch(tiles, tmp_path):
    out = tmp_path / "out"
    res = write_composites(
        out, tiles, [TruthLevel("clumped", 16 * 24, 1.0, 6)], size=128, n_per_level=2, seed=2
    )
    diameter = 2 * res.radius_px
    for name in res.names:
        rows, labels = _read(out, name)
        xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
        group = np.array([int(r["group_id"]) for r in rows])
        size = np.array([int(r["group_size"]) for r in rows])
        assert (size >= 2).all() and all((group == g).sum() == size[group == g][0] for g in np.unique(group))
        d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        same = group[:, None] == group[None]
        nearest_mate = np.where(same, d, np.inf).min(1)
        assert np.all((nearest_mate >= 0.85 * diameter) & (nearest_mate <= 1.05 * diameter))
        assert d[~same].min() >= diameter + 2  # different groups keep apart
        for g in np.unique(group):  # a group's discs form one connected blob
            ids = np.flatnonzero(group == g) + 1
            assert ndi.label(np.isin(labels, ids), np.ones((3, 3)))[1] == 1


def test_seeded_and_reproducible(tiles, tmp_path):
    def files(out):
        return {
            p.relative_to(out): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "provenance.json"
        }

    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        write_composites(tmp_path / name, tiles, [MIXED], n_per_level=2, size=96, seed=seed)
    a, b, c = (files(tmp_path / n) for n in "abc")
    assert len(a) == 2 * 4 + 3 and a == b
    assert a.keys() == c.keys() and a != c


def test_backgrounds_are_bead_free_and_frames_restrict_sources(tiles):
    src = collect_sources(tiles, frames=["5120x_b"])
    assert {s.source for s in src.sprites} <= {"5120x_b_grid_r0_c0", "5120x_b_grid_r0_c1"}
    assert len(src.backgrounds) == 2 and len(src.sprites) >= 8
    for bg in src.backgrounds:
        original = read_image(tiles / "images" / f"{bg.source}.png")
        assert bead_evidence(original).max() > 10  # the tile had beads ...
        assert bead_evidence(bg.image).max() < 6  # ... its background has none left
    assert 3.0 < src.radius_px < 4.2  # synth beads: radius ~3.4 px
    with pytest.raises(InputError, match="5120x_zzz"):
        collect_sources(tiles, frames=["5120x_zzz"])


def test_no_usable_sparse_beads_is_a_one_line_error(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "dense"
    s = synth_image(96, 150, seed=0, cluster_fraction=0.6)  # crowded: nothing isolated or sparse
    write_image(data / "images" / "160x_f_grid_r0_c0.png", s.image)
    write_mask(data / "masks" / "160x_f_grid_r0_c0.png", s.mask)
    r = subprocess.run(
        [sys.executable, "-m", "beadseg", "synth", str(tmp_path / "out"), "--from", str(data)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    msg = r.stderr.strip()
    assert "\n" not in msg and str(data) in msg and "sparse" in msg
    assert not (tmp_path / "out").exists()


def test_cli_writes_levels_with_centres(tiles, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "beadseg",
            "synth",
            str(out),
            "--from",
            str(tiles),
            "--counts",
            "160",
            "--clump-fraction",
            "0.5",
            "--levels",
            "sparse",
            "--size",
            "128",
            "--n",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    # sparse has 40 beads per 512 x 512 (2.5 on 128 px: rounded to 2); n160 has 10
    assert [len(_rows(out / "centres" / f"truth_{n}_000.csv")) for n in ("sparse", "n160")] == [2, 10]
    assert {r["level"] for r in _rows(out / "composites.csv")} == {"sparse", "n160"}


def test_layout_that_does_not_fit_raises():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="fewer beads"):
        layout_beads(rng, (32, 32), [1] * 40, diameter_px=7.0)


def test_overlapping_discs_go_to_the_nearer_centre():
    labels = draw_labels((20, 20), np.array([[10.0, 6.0], [10.0, 11.0]]), radius_px=4.0)
    assert labels[10, 8] == 1 and labels[10, 9] == 2  # 8 is nearer to 6, 9 nearer to 11
    assert labels[10, 6] == 1 and labels[10, 11] == 2


def test_touch_range_sets_centre_distances(tiles, tmp_path):
    res = write_composites(
        tmp_path / "o", tiles, [TruthLevel("pairs", 16 * 12, 1.0, 2)], size=128, touch=(0.7, 0.8)
    )
    rows, _ = _read(tmp_path / "o", "truth_pairs_000")
    xy = {}
    for r in rows:
        xy.setdefault(r["group_id"], []).append((float(r["x"]), float(r["y"])))
    d = np.array([np.hypot(a[0] - b[0], a[1] - b[1]) for a, b in xy.values()]) / (2 * res.radius_px)
    assert len(d) == 6 and np.all((d >= 0.7) & (d <= 0.8))
    with pytest.raises(InputError, match="touch range"):
        layout_beads(np.random.default_rng(0), (64, 64), [2], 7.0, touch=(0.9, 0.9))


def test_failed_run_leaves_nothing_half_written(tiles, tmp_path):
    levels = [TruthLevel("ok", 16 * 4, 0.0), TruthLevel("too_many", 16 * 2000, 0.0)]
    with pytest.raises(InputError, match="fewer beads"):
        write_composites(tmp_path / "out", tiles, levels, n_per_level=1, size=128)
    assert list(tmp_path.iterdir()) == [tmp_path / "data"]  # no output, no staging folder
