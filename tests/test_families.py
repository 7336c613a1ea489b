"""Exact-truth families: every bead where its centre says, beads cut by the border owned by
the image that holds their centre, densities up to a monolayer, reproducible, reachable from
`beadseg synth --from --family`."""

import csv

import numpy as np
import pytest
import tifffile
from test_composite import _sparse_tiles

from beadseg.core.beads import centre_inside, slivers
from beadseg.data.composite.compose import make_family_composite, write_composites
from beadseg.data.composite.family import FAMILIES, family
from beadseg.data.composite.layout import LEVELS, TruthLevel
from beadseg.data.composite.packing import ballistic_group, grown_group, lattice_pack, layout_family
from beadseg.data.composite.sources import collect_sources
from beadseg.data.targets import centre_targets


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return collect_sources(_sparse_tiles(tmp_path_factory.mktemp("data")), dense_sprites=True)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_labels_and_centres_agree_and_slivers_lie_outside(sources, name):
    level = TruthLevel("x", 1600, 0.5, 12)
    c = make_family_composite(np.random.default_rng(2), sources, level, family(name), 128)
    lay = c.layout
    assert len(lay) >= 95  # 100 asked on 128 px (1600 per 512 px)
    inside = centre_inside(lay.centers, (128, 128))
    assert inside.sum() < len(lay)  # some beads are cut by the border with their centre outside
    for k, ((y, x), r) in enumerate(zip(lay.centers, lay.radius), start=1):
        assert 0.7 * 3 < r < 1.3 * 4.2  # a sprite's radius (~3.4 px) times 0.75-1.25
        if inside[k - 1]:  # a bead owns the pixel of its centre
            assert c.labels[min(max(int(round(y)), 0), 127), min(max(int(round(x)), 0), 127)] == k
    assert set(np.unique(c.labels)) - {0} <= set(range(1, len(lay) + 1))
    assert c.image.dtype == np.uint8 and c.image.shape == (128, 128, 3)


def test_touching_beads_touch_at_the_family_spacing():
    rng = np.random.default_rng(0)
    radii = np.full(6, 3.5)
    for build in (
        lambda: grown_group(rng, radii, (0.75, 1.1), chain=False),
        lambda: ballistic_group(rng, radii, (0.8, 1.05)),
    ):
        pos = build()
        d = np.hypot(*(pos[:, None] - pos[None]).transpose(2, 0, 1)) / 7.0
        np.fill_diagonal(d, np.inf)
        assert np.all(d.min(1) >= 0.75 - 1e-6) and np.all(d.min(1) <= 1.1 + 1e-6)
    pack = lattice_pack(rng, np.full(30, 3.5), (0.8, 0.9))
    d = np.hypot(*(pack[:, None] - pack[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert len(pack) == 30 and np.median(d.min(1)) < 7.0  # a 2-D pack: neighbours overlap


def test_monolayer_level_fits_and_is_dense():
    rng = np.random.default_rng(3)
    level = LEVELS["monolayer"]
    n = level.n_beads // 16  # on 128 px
    from beadseg.data.composite.layout import group_sizes

    sizes = group_sizes(rng, n, level.clump_fraction, level.max_group)
    radii = rng.uniform(2.7, 4.5, n)
    lay, index = layout_family(rng, (128, 128), sizes, radii, (0.75, 1.1))
    assert len(lay) >= 0.97 * n and sorted(index) == sorted(set(index))
    np.testing.assert_array_equal(lay.radius, radii[index])
    from beadseg.data.composite.layout import draw_labels

    assert (draw_labels((128, 128), lay.centers, lay.radius) > 0).mean() > 0.2


def test_write_family_set_is_reproducible_with_inside_column(tmp_path):
    data = _sparse_tiles(tmp_path / "data")
    for name in ("a", "b"):
        write_composites(tmp_path / name, data, [LEVELS["packed"]], 1, 96, seed=2, family=FAMILIES["train"])
    a, b = (tmp_path / n for n in "ab")
    assert (a / "images" / "truth_packed_000.png").read_bytes() == (
        b / "images" / "truth_packed_000.png"
    ).read_bytes()
    rows = _rows(a / "centres" / "truth_packed_000.csv")
    assert {"radius_px", "inside"} <= set(rows[0])
    counted = sum(r["inside"] == "1" for r in rows)
    summary = _rows(a / "composites.csv")[0]
    assert int(summary["n_beads"]) == counted and int(summary["n_cut_outside"]) == len(rows) - counted > 0


def test_cli_family_and_unknown_family(tmp_path):
    from helpers import assert_refused, run_cli

    data = _sparse_tiles(tmp_path / "data")
    r = run_cli("synth", tmp_path / "o", "--from", data, "--family", "heldout", "--size", "96", "--n", "1")
    assert r.returncode == 0, r.stderr
    assert {x["level"] for x in _rows(tmp_path / "o" / "composites.csv")} == {
        "sparse", "medium", "dense", "clumped", "packed", "monolayer"
    }  # fmt: skip
    assert_refused(
        run_cli("synth", tmp_path / "p", "--from", data, "--family", "nope"),
        "nope",
        "heldout",
        out=tmp_path / "p",
    )


def test_centre_target_is_zero_on_beads_centred_outside():
    labels = np.zeros((20, 20), np.int32)
    yy, xx = np.mgrid[:20, :20]
    labels[np.hypot(yy - 10, xx - 10) <= 3.5] = 1
    labels[np.hypot(yy - 10, xx + 2) <= 3.5] = 2  # centre at x = -2: a sliver
    target, valid = centre_targets(labels > 0, 38, np.array([[10, 10], [10, -2.0]]), labels, "distance")
    assert target[10, 10] == 1 and target[labels == 2].max() == 0 and valid.all()
    # annotated masks: a small object on the border is a sliver, no centre either
    t2, _ = centre_targets(labels > 0, 38, kind="distance")
    assert t2[labels == 2].max() == 0 and t2[10, 10] == 1
    assert slivers(labels, 38).tolist() == [False, False, True]


def test_sprites_from_dense_tiles_only_when_asked(tmp_path):
    from beadseg.core.images import write_image
    from beadseg.core.masks import write_mask
    from beadseg.data.synth import synth_image

    data = _sparse_tiles(tmp_path / "data")
    s = synth_image(
        192, 80, seed=7, cluster_fraction=0.0, min_gap_px=12, illumination=0.0, background=0.5, contrast=0.45
    )
    write_image(data / "images" / "160x_d_grid_r0_c0.png", s.image)
    write_mask(data / "masks" / "160x_d_grid_r0_c0.png", s.mask)
    plain, dense = collect_sources(data), collect_sources(data, dense_sprites=True)
    assert not any(sp.source.startswith("160x") for sp in plain.sprites)
    assert any(sp.source.startswith("160x") for sp in dense.sprites)
    assert len(dense.backgrounds) == len(plain.backgrounds)  # the dense tile gives no background
    _ = tifffile  # labels are read by other tests
