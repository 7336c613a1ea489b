"""What predict writes beside the counts: µm columns, calibrated label TIFFs, the run's
beads.csv, colour overlays and previews (issue 19 items 4 and 5)."""

import csv

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from helpers import oracle_model

from beadseg.core.config import PredictConfig
from beadseg.core.errors import InputError
from beadseg.core.images import read_pixel_size_um, write_image
from beadseg.core.labels import bead_table
from beadseg.core.masks import read_labels, write_labels
from beadseg.data.synth import synth_image
from beadseg.inference.merge import merge_runs
from beadseg.inference.overlay import OUTLINE_RGB, SPLIT_RGB, colour_overlay, preview


def _two_touching_discs(shape=(40, 50), r=8):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d1 = np.hypot(yy - 20, xx - 16)
    d2 = np.hypot(yy - 20, xx - 30)
    return np.where((d1 <= r) & (d1 <= d2), 1, np.where(d2 <= r, 2, 0)).astype(np.int32)


def test_um_columns_are_px_columns_times_pixel_size():
    labels = _two_touching_discs()
    px = bead_table(labels)
    um = bead_table(labels, pixel_size_um=0.65)
    assert not any(k.endswith(("_um", "_um2")) for k in px)
    for k in ("centroid_x", "centroid_y", "equivalent_diameter_px"):
        np.testing.assert_allclose(um[k.removesuffix("_px") + "_um"], px[k] * 0.65)
    np.testing.assert_allclose(um["area_um2"], px["area_px"] * 0.65**2)


def test_pixel_size_read_from_tiff_resolution_tags(tmp_path):
    a = np.zeros((4, 6), np.uint16)
    tifffile.imwrite(tmp_path / "cm.tif", a, resolution=(1e4 / 0.65,) * 2, resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "inch.tif", a, resolution=(25400 / 0.5,) * 2, resolutionunit="INCH")
    ij = {"imagej": True, "resolution": (1 / 0.345,) * 2}
    tifffile.imwrite(tmp_path / "ij.tif", a, metadata={"unit": "micron"}, **ij)
    tifffile.imwrite(
        tmp_path / "ij_nm.tif", a, metadata={"unit": "nm"}, **{**ij, "resolution": (1 / 650,) * 2}
    )
    tifffile.imwrite(tmp_path / "print.tif", a, resolution=(72, 72), resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "none.tif", a)
    write_image(tmp_path / "x.png", a.astype(np.uint8))
    assert read_pixel_size_um(tmp_path / "cm.tif") == pytest.approx(0.65, rel=1e-6)
    assert read_pixel_size_um(tmp_path / "inch.tif") == pytest.approx(0.5, rel=1e-6)
    assert read_pixel_size_um(tmp_path / "ij.tif") == pytest.approx(0.345, rel=1e-5)
    assert read_pixel_size_um(tmp_path / "ij_nm.tif") == pytest.approx(0.65, rel=1e-5)
    for name in ("print.tif", "none.tif", "x.png"):  # 72 dpi is a print setting, not a microscope's
        assert read_pixel_size_um(tmp_path / name) is None
    tifffile.imwrite(tmp_path / "odd.tif", a, resolution=(2e4, 1e4), resolutionunit="CENTIMETER")
    with pytest.raises(InputError, match=r"odd\.tif has non-square pixels.*--pixel-size-um"):
        read_pixel_size_um(tmp_path / "odd.tif")


@pytest.mark.parametrize("top", [3, 70000])  # uint16 (ImageJ TIFF) and uint32 (pixels per cm)
def test_label_tiff_carries_pixel_size_tifffile_reads_back(tmp_path, top):
    labels = _two_touching_discs()
    labels[labels == 2] = top
    write_labels(tmp_path / "l.tif", labels, pixel_size_um=0.65)
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        xres, yres = tif.pages.first.resolution
        if top < 65536:  # what Fiji reads: pixels per µm and unit=um in the ImageJ description
            assert tif.imagej_metadata["unit"] == "um"
            assert xres == yres == pytest.approx(1 / 0.65)
        else:
            assert tif.pages.first.resolutionunit.name == "CENTIMETER"
            assert xres == yres == pytest.approx(1e4 / 0.65)
    assert read_pixel_size_um(tmp_path / "l.tif") == pytest.approx(0.65)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.tif"), labels)
    write_labels(tmp_path / "plain.tif", labels)
    assert read_pixel_size_um(tmp_path / "plain.tif") is None


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _predict(monkeypatch, inputs, out, **cfg):
    import beadseg.inference.runner as P

    monkeypatch.setattr(P, "load_model", lambda model, *args, **kw: oracle_model())
    return P.predict_images("any", inputs, out, PredictConfig(mode="full", **cfg), progress=False)


def test_beads_csv_has_every_bead_of_the_run_resumed_frames_included(tmp_path, monkeypatch):
    paths = []
    for i, n in enumerate((6, 12)):
        paths.append(tmp_path / "in" / f"f{i}.png")
        write_image(paths[-1], synth_image(96, n, seed=i, cluster_fraction=0.0, min_gap_px=2).image)
    out = tmp_path / "out"
    _predict(monkeypatch, [paths[0]], out, pixel_size_um=0.5)
    s = _predict(monkeypatch, paths, out, pixel_size_um=0.5)
    assert s.n_resumed == 1 and s.n_images == 2
    beads = _rows(out / "beads.csv")
    assert list(beads[0])[0] == "image"
    counts = {r["image"]: r for r in _rows(out / "counts.csv")}
    for name, row in counts.items():
        mine = [b for b in beads if b["image"] == name]
        assert len(mine) == int(row["count"]) > 0
        assert [b["id"] for b in mine] == [b["id"] for b in _rows(out / "beads" / f"{name}.csv")]
        assert float(row["pixel_size_um"]) == 0.5
        area_mm2 = int(row["height"]) * int(row["width"]) * (0.5e-3) ** 2
        assert float(row["beads_per_mm2"]) == pytest.approx(int(row["count"]) / area_mm2, rel=1e-3)
    b = beads[0]
    assert float(b["area_um2"]) == pytest.approx(float(b["area_px"]) * 0.25, abs=1e-3)
    assert float(b["equivalent_diameter_um"]) == pytest.approx(
        float(b["equivalent_diameter_px"]) * 0.5, abs=2e-3
    )
    # another pixel size: nothing reused, every table in the new unit
    s = _predict(monkeypatch, paths, out, pixel_size_um=0.25)
    assert s.n_resumed == 0
    assert {r["pixel_size_um"] for r in _rows(out / "counts.csv")} == {"0.25"}


def test_no_pixel_size_leaves_unit_cells_empty_and_merge_joins_beads(tmp_path, monkeypatch):
    import beadseg.inference.runner as P

    monkeypatch.setattr(P, "load_model", lambda model, *args, **kw: oracle_model())
    for i in range(3):
        write_image(tmp_path / "in" / f"320x_f{i}.png", synth_image(64, 5 + i, seed=i).image)
    for i in range(2):
        cfg = PredictConfig(mode="full")
        P.predict_images("m", [tmp_path / "in"], tmp_path / f"s{i}", cfg, progress=False, shard=(i, 2))
    counts = _rows(tmp_path / "s0" / "counts.csv")
    assert {r["pixel_size_um"] for r in counts} == {""} and {r["beads_per_mm2"] for r in counts} == {""}
    assert "area_um2" not in _rows(tmp_path / "s0" / "beads.csv")[0]
    merge_runs([tmp_path / "s1", tmp_path / "s0"], tmp_path / "m")
    merged = _rows(tmp_path / "m" / "beads.csv")
    shards = _rows(tmp_path / "s0" / "beads.csv") + _rows(tmp_path / "s1" / "beads.csv")
    assert len(merged) == len(shards) == sum(int(r["count"]) for r in _rows(tmp_path / "m" / "counts.csv"))
    assert [r["image"] for r in merged] == sorted(r["image"] for r in merged)


def test_overlay_keeps_colour_and_marks_split_lines_apart_from_outlines():
    labels = _two_touching_discs()
    image = np.empty(labels.shape + (3,), np.float32)
    image[:] = (0.2, 0.5, 0.8)  # a blue-ish background: colour kept where there is no bead
    rgb = colour_overlay(image, labels)
    assert rgb.dtype == np.uint8 and rgb.shape == labels.shape + (3,)
    assert tuple(rgb[2, 45]) == (51, 128, 204)
    split = np.all(rgb == SPLIT_RGB, axis=-1)
    outline = np.all(rgb == OUTLINE_RGB, axis=-1)
    assert SPLIT_RGB != OUTLINE_RGB and split.any() and outline.any()
    cols = np.flatnonzero(split.any(0))
    assert cols.min() >= 22 and cols.max() <= 24  # the contact line, halfway between the centres
    assert outline[20, 16 - 8] and not split[20, 16 - 8]  # the left edge of the left disc
    assert not (split | outline)[20, 16]  # inside
    captioned = colour_overlay(image, labels, "2 beads | m")
    assert (captioned[:14, :40] != rgb[:14, :40]).any() and np.array_equal(captioned[30:], rgb[30:])


def test_preview_for_large_frames_full_size_overlay_as_configured(tmp_path):
    from beadseg.inference.frames import write_overlays

    assert preview(np.zeros((1000, 1500, 3), np.uint8)) is None  # 1.5 MP
    big = np.zeros((1100, 2000, 3), np.uint8)
    assert preview(big).shape == (550, 1000, 3)  # long side <= 1600 by a whole factor
    labels = np.zeros(big.shape[:2], np.int32)
    labels[100:120, 100:120] = 1
    write_overlays(tmp_path / "a", "big", big, labels, "1 beads | m")  # auto: the preview alone
    write_overlays(tmp_path / "a", "small", big[:500, :500], labels[:500, :500], None)
    assert sorted(p.name for p in (tmp_path / "a" / "overlays").iterdir()) == [
        "big_preview.png",
        "big_zoom.png",
        "small.png",
    ]
    write_overlays(tmp_path / "f", "big", big, labels, None, "full")
    assert sorted(p.name for p in (tmp_path / "f" / "overlays").iterdir()) == [
        "big.png",
        "big_preview.png",
        "big_zoom.png",
    ]
    write_overlays(tmp_path / "n", "big", big, labels, None, "none")
    assert not (tmp_path / "n").exists()


def test_cli_pixel_size_option(tmp_path):
    from beadseg.cli.app import main

    def run(*args):
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in args])
        return exit_.value.code

    write_image(tmp_path / "a.png", synth_image(40, 3, seed=0).image)
    args = ["predict", "default", tmp_path / "a.png", "--quiet", "--out"]
    assert run(*args, tmp_path / "o", "--pixel-size-um", 0.65) == 0
    assert "pixel_size_um: 0.65" in (tmp_path / "o" / "config.yaml").read_text()
    assert _rows(tmp_path / "o" / "counts.csv")[0]["pixel_size_um"] == "0.65"
    assert run(*args, tmp_path / "o2", "--pixel-size-um", 0) == 2  # must be > 0


def test_a_previewed_frame_gets_native_resolution_zoom_crops(tmp_path):
    """A frame above 2 MP gets a shrunk whole-frame preview, and beside it crops at native
    resolution (densest, sparsest, largest clump) where 6-px outlines can be checked."""
    from beadseg.inference.frames import write_overlays
    from beadseg.inference.overlay import ZOOM_FACTOR, ZOOM_SIDE, zoom_crops

    labels = np.zeros((1500, 1500), np.int32)
    yy, xx = np.mgrid[:1500, :1500]
    beads = [(100 + 12 * i, 100 + 12 * j) for i in range(8) for j in range(8)]  # a dense corner
    beads += [(1200, 300)]  # a lone bead
    beads += [(800, 800 + 7 * k) for k in range(5)]  # five touching in a row: the clump
    for n, (cy, cx) in enumerate(beads, 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = n
    image = np.full((1500, 1500), 0.6, np.float32)
    write_overlays(tmp_path, "frame", image, labels, "model", mode="auto")
    shown = iio.imread(tmp_path / "overlays" / "frame_zoom.png")
    assert shown.shape == (ZOOM_SIDE * ZOOM_FACTOR, 3 * ZOOM_SIDE * ZOOM_FACTOR + 2 * 8, 3)
    assert (tmp_path / "overlays" / "frame_preview.png").is_file()
    assert not (tmp_path / "overlays" / "frame.png").exists()
    assert zoom_crops(np.zeros((100, 100, 3), np.uint8), np.zeros((100, 100), np.int32)) is None
