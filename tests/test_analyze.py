import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from beadseg.analysis import analyze_dataset, grade_labels
from beadseg.core.files import find_pairs
from beadseg.core.images import write_image
from beadseg.core.masks import write_mask
from beadseg.core.registration import shift_mask
from beadseg.data.synth import synth_image, synth_tiled_frame


def _write(root, name, image, labels):
    write_image(root / "images" / f"{name}.png", image)
    write_mask(root / "masks" / f"{name}.png", labels > 0)


def _synthetic_like(root, name, n, seed, size=128):
    """A tile like the public synthetic_80x ones: green-cast background, beads that darken blue
    almost as much as green, soft mask."""
    s = synth_image(size, n, seed=seed, cluster_fraction=0.0, min_gap_px=2)
    dark = ndi.gaussian_filter(s.mask.astype(np.float32), 0.8)[..., None]
    bg = np.array([0.50, 0.55, 0.54], np.float32)
    img = bg * (1 - 0.3 * dark * np.array([0.6, 1.0, 0.85], np.float32))
    img = img + np.random.default_rng(seed).normal(0, 0.004, img.shape).astype(np.float32)
    write_image(root / "images" / f"{name}.png", np.clip(img, 0, 1))
    soft = np.round(ndi.gaussian_filter(s.mask.astype(np.float32), 0.6) * 255).astype(np.uint8)
    iio.imwrite(root / "masks" / f"{name}.png", soft)
    return s


def test_counts_sizes_foreground_exact(tmp_path):
    truths = {}
    for i, n in enumerate([5, 40, 120]):
        s = synth_image(128, n, seed=i, cluster_fraction=0.0, min_gap_px=2)
        _write(tmp_path, f"{(i + 1) * 160}x_frame{i}_grid_r0_c0", s.image, s.labels)
        truths[f"{(i + 1) * 160}x_frame{i}_grid_r0_c0"] = s
    summary = analyze_dataset(tmp_path, out=None, workers=1)
    rows = {r["name"]: r for r in summary["per_image"]}
    for name, s in truths.items():
        r = rows[name]
        n = s.labels.max()
        # isolated beads that do not touch: components, split count and truth agree exactly
        assert r["objects"] == n and r["beads_split"] == n
        assert r["foreground_fraction"] == pytest.approx(s.mask.mean())
        areas = np.bincount(s.labels.ravel())[1:]
        assert r["median_object_area_px"] == pytest.approx(np.median(areas))
    real = summary["domains"]["real"]
    assert summary["dataset_size"] == 3 and real["n_images"] == 3
    assert sum(real["density_bins"]["counts"]) == 3
    assert real["mean_objects_per_image"] == pytest.approx(np.mean([s.labels.max() for s in truths.values()]))


def test_density_bins_cover_every_image_even_with_given_edges(tmp_path):
    from beadseg.core.config import AnalyzeConfig

    for i, n in enumerate([2, 30, 300, 700]):
        s = synth_image(256, n, seed=i)
        _write(tmp_path, f"img{i}", s.image, s.labels)
    summary = analyze_dataset(tmp_path, None, workers=1, cfg=AnalyzeConfig(density_bins=[0, 5, 15, 30, 100]))
    assert sum(summary["domains"]["real"]["density_bins"]["counts"]) == 4  # the old bins dropped > 100


def test_missing_label_check_fires_on_deleted_beads(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        s = synth_image(256, 120, seed=10 + i, cluster_fraction=0.0, min_gap_px=2)
        labels = s.labels.copy()
        if i == 0:  # delete 30 % of the beads from the mask
            gone = rng.choice(np.arange(1, labels.max() + 1), int(0.3 * labels.max()), replace=False)
            labels[np.isin(labels, gone)] = 0
        _write(tmp_path, f"img{i}", s.image, labels)
    summary = analyze_dataset(tmp_path, None, workers=1)
    assert summary["checks"]["missing_labels"]["flagged"] == ["img0"]
    rows = {r["name"]: r for r in summary["per_image"]}
    assert rows["img0"]["unlabelled_fraction"] > 0.2
    assert rows["img1"]["unlabelled_fraction"] < 0.05
    assert rows["img0"]["grade"] == "fixable" and "partly unlabelled" in rows["img0"]["grade_reasons"]


def test_leakage_groups_are_source_frames_and_duplicates(tmp_path):
    synth_tiled_frame(tmp_path, "160x_frameA", rows=2, cols=2, tile=96, overlap_px=20, seed=1)
    synth_tiled_frame(tmp_path, "320x_frameB", rows=1, cols=2, tile=96, overlap_px=20, seed=2)
    s = synth_image(96, 20, seed=5)
    _write(tmp_path, "loose_a", s.image, s.labels)
    summary = analyze_dataset(tmp_path, None, workers=1)
    leak = summary["checks"]["leakage"]
    assert leak["n_groups"] == 3 and leak["groups_equal_source_frames"]
    # a duplicate of a tile under another frame's name joins the two frames
    _write(
        tmp_path,
        "dup_of_b",
        iio.imread(tmp_path / "images" / "320x_frameB_grid_r0_c0.png"),
        iio.imread(tmp_path / "masks" / "320x_frameB_grid_r0_c0.png"),
    )
    leak = analyze_dataset(tmp_path, None, workers=1)["checks"]["leakage"]
    assert not leak["groups_equal_source_frames"]
    assert any("dup_of_b" in d["images"] for d in leak["duplicates"])


def test_overlap_agreement_exact_and_altered(tmp_path):
    synth_tiled_frame(tmp_path, "640x_f", rows=2, cols=3, tile=128, overlap_px=37, n_beads=150, seed=3)
    ag = analyze_dataset(tmp_path, None, workers=1)["checks"]["overlap_agreement"]
    horiz = [p for p in ag["pairs"] if p["direction"] == "horizontal"]
    assert len(horiz) == 4 and all(p["overlap_px"] == 37 for p in horiz)
    assert all(p["mask_iou"] == 1.0 for p in ag["pairs"] if p["overlap_px"])
    # alter one tile's mask in its left strip: exactly the pair sharing that strip drops
    m = iio.imread(tmp_path / "masks" / "640x_f_grid_r0_c1.png")
    m[: 128 - 37, :37] = 0  # left strip only, not the rows shared with the tile below
    iio.imwrite(tmp_path / "masks" / "640x_f_grid_r0_c1.png", m)
    ag = analyze_dataset(tmp_path, None, workers=1)["checks"]["overlap_agreement"]
    low = [(p["a"], p["b"]) for p in ag["pairs"] if p["overlap_px"] and p["mask_iou"] < 1]
    assert low == [("640x_f_grid_r0_c0", "640x_f_grid_r0_c1")]


def test_registration_finds_known_shifts(tmp_path):
    shifts = {"a": (0, 0), "b": (3, 0), "c": (-2, 2), "d": (0, 0)}
    for i, (name, (dy, dx)) in enumerate(shifts.items()):
        s = synth_image(192, 150, seed=20 + i)
        _write(tmp_path, name, s.image, shift_mask(s.labels, dy, dx))
    summary = analyze_dataset(tmp_path, None, workers=2)
    rows = {r["name"]: r for r in summary["per_image"]}
    for name, (dy, dx) in shifts.items():
        # the best shift undoes the planted one
        assert (rows[name]["registration_dy"], rows[name]["registration_dx"]) == (-dy, -dx)
        assert rows[name]["misregistered"] == ((dy, dx) != (0, 0))
        assert rows[name]["mask_fits_image"]
    frame = {r["source_frame"]: r for r in summary["per_source_frame"]}
    assert frame["b"]["n_misregistered"] == 1 and frame["a"]["n_misregistered"] == 0


def _six_tiles(root, size=128):
    tiles = {}
    for i in range(6):
        s = synth_image(size, 90, seed=40 + i, cluster_fraction=0.0, min_gap_px=2)
        tiles[f"{320 * 2 ** (i % 3)}x_frame{i}_grid_r0_c0"] = s
    return tiles


def test_swapped_masks_are_flagged_and_each_named(tmp_path):
    tiles = _six_tiles(tmp_path)
    names = sorted(tiles)
    a, b = names[1], names[4]
    for n, s in tiles.items():
        mask_of = {a: b, b: a}.get(n, n)
        _write(tmp_path, n, s.image, tiles[mask_of].labels)
    summary = analyze_dataset(tmp_path, None, workers=2)
    rows = {r["name"]: r for r in summary["per_image"]}
    assert rows[a]["mask_belongs_to"] == b and rows[b]["mask_belongs_to"] == a
    assert not rows[a]["mask_fits_image"] and not rows[b]["mask_fits_image"]
    for n in names:
        if n not in (a, b):
            assert rows[n]["mask_fits_image"] and rows[n]["mask_belongs_to"] == ""
    assert summary["checks"]["mask_fit"]["misfiled"] == {a: b, b: a}
    # a mask of another image is not reported as "shifted by N px"
    assert not rows[a]["misregistered"] and not rows[b]["misregistered"]
    assert not {a, b} & {f["name"] for f in summary["checks"]["registration"]["flagged"]}
    assert rows[a]["grade"] == "unusable" and f"belongs to {b}" in rows[a]["grade_reasons"]
    grades = {g.name: g for g in grade_labels(find_pairs(tmp_path), workers=1)}
    assert grades[a].belongs_to == b and not grades[a].usable
    assert sum(g.usable for g in grades.values()) == 4
    assert any(r["id"] == "misfiled_mask" for r in summary["recommendations"])


def test_shifted_mask_is_fixable_not_mismatched(tmp_path):
    tiles = _six_tiles(tmp_path)
    shifted = sorted(tiles)[2]
    for n, s in tiles.items():
        _write(tmp_path, n, s.image, shift_mask(s.labels, 3, 0) if n == shifted else s.labels)
    grades = grade_labels(find_pairs(tmp_path), workers=2)
    assert [g.name for g in grades] == sorted(tiles)
    g = {g.name: g for g in grades}[shifted]
    assert g.grade == "fixable" and g.usable and g.belongs_to == ""
    assert (g.dy, g.dx) == (-3, 0) and g.shifted
    assert any("shifted by 3.0 px" in r for r in g.reasons)
    assert not any("mismatched" in r or "poor fit" in r for r in g.reasons)
    assert all(x.grade == "good" for x in grades if x.name != shifted)


def test_headlines_per_domain_never_pooled(tmp_path):
    real_counts = []
    for i, n in enumerate([20, 40, 60]):
        s = synth_image(128, n, seed=i, cluster_fraction=0.0, min_gap_px=2)
        _write(tmp_path, f"640x_f{i}_grid_r0_c0", s.image, s.labels)
        real_counts.append(s.labels.max())
    synth_counts = [
        _synthetic_like(tmp_path, f"synthetic_80x_{i}", 150, seed=30 + i).labels.max() for i in range(3)
    ]
    s = analyze_dataset(tmp_path, None, workers=1)
    assert set(s["domains"]) == {"real", "synthetic"} and s["training_domain"] == "real"
    assert s["domains"]["real"]["mean_beads_per_image"] == pytest.approx(np.mean(real_counts))
    assert s["domains"]["synthetic"]["mean_objects_per_image"] == pytest.approx(np.mean(synth_counts))
    rows = s["per_image"]
    for d in ("real", "synthetic"):
        fg = [r["foreground_fraction"] for r in rows if r["domain"] == d]
        assert s["domains"][d]["mean_foreground_fraction"] == pytest.approx(np.mean(fg))
        assert sum(s["domains"][d]["density_bins"]["counts"]) == 3
    # no pooled headline anywhere at the top level
    assert "overall" not in s and not any(k.startswith("mean_") for k in s)
    assert s["checks"]["domains"]["checked"] and not s["checks"]["domains"]["mismatches"]
    assert all(r["looks_like"] == r["domain"] for r in rows)


def test_tile_named_synthetic_that_looks_real_is_reported(tmp_path):
    for i in range(3):
        s = synth_image(128, 40, seed=i, cluster_fraction=0.0, min_gap_px=2)
        _write(tmp_path, f"640x_f{i}_grid_r0_c0", s.image, s.labels)
        _synthetic_like(tmp_path, f"synthetic_80x_{i}", 150, seed=30 + i)
    s = synth_image(128, 40, seed=9, cluster_fraction=0.0, min_gap_px=2)
    _write(tmp_path, "synthetic_80x_odd", s.image, s.labels)
    summary = analyze_dataset(tmp_path, None, workers=1)
    mism = summary["checks"]["domains"]["mismatches"]
    assert [(m["name"], m["named"], m["looks_like"]) for m in mism] == [
        ("synthetic_80x_odd", "synthetic", "real")
    ]
    assert any(r["id"] == "domain_mismatch" for r in summary["recommendations"])


def test_checks_do_not_change_their_arguments(tmp_path):
    from beadseg.analysis.checks import run_checks
    from beadseg.analysis.doctor import measure_all
    from beadseg.core.config import AnalyzeConfig

    synth_tiled_frame(tmp_path, "640x_f", rows=1, cols=3, tile=96, overlap_px=20, seed=3)
    cfg = AnalyzeConfig()
    ms = measure_all(find_pairs(tmp_path), cfg, workers=1)
    before = [(m.row(), m.arrays.areas.copy(), m.arrays.peak_unlabelled.copy()) for m in ms]
    first = run_checks(ms, cfg, {"real": 35.0})
    second = run_checks(ms, cfg, {"real": 35.0})
    for m, (row, areas, unl) in zip(ms, before):
        assert m.row() == row
        assert np.array_equal(m.arrays.areas, areas) and np.array_equal(m.arrays.peak_unlabelled, unl)
    assert first.missing == second.missing
    assert repr(first.fits.per_image) == repr(second.fits.per_image)  # NaN-safe comparison


def test_outputs_written_and_report_numbers(tmp_path, synth_data):
    out = tmp_path / "out"
    summary = analyze_dataset(synth_data, out, workers=2, reference=synth_data)
    for f in (
        "summary.json",
        "per_image.csv",
        "report.md",
        "distribution_analysis.png",
        "sample_images.png",
        "registration.png",
        "provenance.json",
    ):
        assert (out / f).is_file(), f
    saved = json.loads((out / "summary.json").read_text())
    assert saved["schema_version"] == 2 and saved["dataset_size"] == 6
    assert saved["reference"]["comparisons"][0]["ratio"] == pytest.approx(1.0)
    with open(out / "per_image.csv") as f:
        header = next(csv.reader(f))
    for col in ("domain", "mask_fits_image", "mask_belongs_to", "grade", "grade_reasons"):
        assert col in header
    report = (out / "report.md").read_text()
    for section in (
        "Headlines per domain",
        "Density",
        "Label grades",
        "Partial masks",
        "Object sizes",
        "Annotation consistency",
        "Findings",
        "Recommendations",
    ):
        assert f"## {section}" in report
    # every recommendation carries its measurement
    assert all(r["measurement"] for r in summary["recommendations"])


def test_reference_of_an_old_schema_is_an_input_error(tmp_path, synth_data):
    from beadseg.core.errors import InputError

    old = tmp_path / "old.json"
    old.write_text(json.dumps({"dataset_size": 3, "overall": {}}))
    with pytest.raises(InputError, match="schema 1"):
        analyze_dataset(synth_data, None, workers=1, reference=old)


def test_dilution_fit_over_source_frames_in_summary(tmp_path):
    from beadseg.data.synth import synth_dilution_series

    synth_dilution_series(
        tmp_path, dilutions=(160, 640, 2560), frames_per_dilution=2, tiles_per_frame=2, size=512, seed=0
    )
    summary = analyze_dataset(tmp_path, None, workers=2)
    assert list(summary["domains"]) == [
        "synthetic"
    ]  # synth recorded its tiles: not real, whatever their names
    fit = summary["domains"]["synthetic"]["dilution_fit"]
    assert fit["n_frames"] == 6 and fit["n_points"] == 6 and fit["fitted_over"] == "source frame"
    assert fit["slope"] == pytest.approx(-1, abs=0.15)


def test_cli_analyze_prints_domains_and_where_outputs_went(tmp_path, synth_data, capsys):
    from beadseg.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(["analyze", str(synth_data), "--out", str(tmp_path / "an"), "--no-plots"])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert "synthetic: " in out and "beads/image" in out  # synth recorded its tiles as synthetic
    assert f"to {tmp_path / 'an'}" in out and "report.md" in out
    with pytest.raises(SystemExit):
        main(["analyze", str(synth_data), "--out", str(tmp_path / "an2"), "--quiet", "--no-plots"])
    assert capsys.readouterr().out == ""


def test_mask_drawn_at_another_scale_is_found(tmp_path):
    # a mask drawn on a copy of the image resized by 3 %: right at the centre, 8 px off at the
    # corners of a 384-px tile; no shift fixes it
    for i in range(4):
        s = synth_image(384, 300, seed=60 + i, cluster_fraction=0.0, min_gap_px=2)
        mask = s.mask
        if i == 1:
            c = np.array([191.5, 191.5])
            inv = np.eye(2) / 1.03
            mask = ndi.affine_transform(mask.astype(np.uint8), inv, c - inv @ c, order=0) > 0
        _write(tmp_path, f"640x_f{i}_grid_r0_c0", s.image, mask)
    summary = analyze_dataset(tmp_path, None, workers=2)
    found = {x["name"]: x for x in summary["checks"]["mask_scale"]}
    assert list(found) == ["640x_f1_grid_r0_c0"]
    # the mask is 3 % too large: it fits when magnified by 1 / 1.03
    assert found["640x_f1_grid_r0_c0"]["scale"] == pytest.approx(1 / 1.03, abs=0.011)
    row = {r["name"]: r for r in summary["per_image"]}["640x_f1_grid_r0_c0"]
    assert row["grade"] == "unusable" and "drawn at another scale" in row["grade_reasons"]
    assert row["mask_belongs_to"] == ""


def test_analyze_stays_in_this_process_and_workers_change_nothing(tmp_path, synth_data, monkeypatch):
    # a library call must not fork (a fork of a process that runs threads can deadlock) nor start
    # processes; measuring in threads gives what one worker gives
    import multiprocessing
    import os

    def no_process(*args, **kwargs):
        raise AssertionError("analyze started a process")

    monkeypatch.setattr(os, "fork", no_process)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", no_process)
    one = analyze_dataset(synth_data, tmp_path / "one", workers=1)
    three = analyze_dataset(synth_data, tmp_path / "three", workers=3)
    assert one["per_image"] == three["per_image"]
    assert one["checks"] == three["checks"]
    for fig in ("distribution_analysis.png", "sample_images.png", "registration.png"):
        assert (tmp_path / "three" / fig).stat().st_size > 0


REPORT_SECTIONS = (
    "## Headlines per domain",
    "## Density",
    "## Label grades",
    "## Partial masks",
    "## Object sizes",
    "## Annotation consistency",
    "## Leakage",
    "## Findings",
    "## Recommendations",
)


def _synth_named(root, names, seed=1):
    """synth_dataset's pairs renamed to ``names`` (source frame and dilution come from them)."""
    from beadseg.data.synth import synth_dataset

    made = synth_dataset(root / "raw", n=len(names), size=128, seed=seed, min_beads=20, max_beads=60)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for old, new in zip(made, names):
            src = next((root / "raw" / sub).glob(f"{old}.*"))
            src.rename(root / sub / f"{new}{src.suffix}")


def _assert_every_output(out):
    from beadseg.analysis.outputs import OUTPUT_FILES

    for f in OUTPUT_FILES:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    report = (out / "report.md").read_text()
    for section in REPORT_SECTIONS:
        assert section in report, section


@pytest.mark.parametrize(
    "names",
    [
        ["160x_frameA_grid_r0_c0", "160x_frameA_grid_r0_c1"],  # one source frame
        ["160x_frameA_grid_r0_c0", "320x_frameB_grid_r0_c0"],  # two: a slope, no interval
        ["160x_frameA_grid_r0_c0", "320x_frameB_grid_r0_c0", "640x_frameC_grid_r0_c0"],
        ["frameA_grid_r0_c0", "frameB_grid_r0_c0", "frameC_grid_r0_c0"],  # no dilution at all
    ],
    ids=["1-frame", "2-frames", "3-frames", "no-dilution"],
)
def test_every_figure_and_section_renders_for_few_frames(tmp_path, names):
    _synth_named(tmp_path / "d", names)
    summary = analyze_dataset(tmp_path / "d", tmp_path / "out", workers=1)
    _assert_every_output(tmp_path / "out")
    fit = summary["domains"]["real"]["dilution_fit"]
    assert (fit is not None) == (len({n.split("_")[0] for n in names}) >= 2 and names[0][0].isdigit())
    if fit and fit["n_frames"] == 2:  # a line through two points: a slope, no interval, no verdict
        rec = next(r for r in summary["recommendations"] if r["id"] == "dilution")
        assert "Too few source frames" in rec["text"]


@pytest.mark.parametrize("all_inverted", [False, True], ids=["one-inverted-one-white", "all-inverted"])
def test_inverted_and_all_white_masks_are_unusable_and_everything_renders(tmp_path, all_inverted):
    """A mask saved the wrong way round (beads 0, background 255) or all white is graded
    unusable with the reason and the fix; analyze never crashes on it (a set of inverted masks
    used to stop the report with a TypeError, and an all-white mask was graded usable)."""
    names = ["160x_fA_grid_r0_c0", "320x_fB_grid_r0_c0", "640x_fC_grid_r0_c0", "1280x_fD_grid_r0_c0"]
    _synth_named(tmp_path / "d", names)
    inverted = names if all_inverted else names[:1]
    for name in inverted:
        p = tmp_path / "d" / "masks" / f"{name}.png"
        iio.imwrite(p, np.where(iio.imread(p) > 0, 0, 255).astype(np.uint8))
    white = [] if all_inverted else names[1:2]
    for name in white:
        iio.imwrite(tmp_path / "d" / "masks" / f"{name}.png", np.full((128, 128), 255, np.uint8))
    summary = analyze_dataset(tmp_path / "d", tmp_path / "out", workers=1)
    _assert_every_output(tmp_path / "out")
    grades = {g["name"]: g for g in summary["label_grades"]}
    for name in inverted:
        assert grades[name]["grade"] == "unusable"
        assert grades[name]["reasons"] == ["inverted (beads 0, background 255): save beads as 255"]
    for name in white:
        assert grades[name]["grade"] == "unusable"
        assert grades[name]["reasons"] == ["mask covers the whole image"]
    for name in set(names) - set(inverted) - set(white):  # the right masks are not blamed
        assert grades.get(name, {"grade": "good"})["grade"] != "unusable"
    rows = {r["name"]: r for r in summary["per_image"]}
    assert not any(rows[n]["misregistered"] for n in inverted + white)
    quality = summary["checks"]["label_quality"]
    assert quality["inverted_masks"] == sorted(inverted) and quality["whole_image_masks"] == white
    # training and evaluate grade alike
    graded = {g.name: g for g in grade_labels(find_pairs(tmp_path / "d"), workers=1)}
    assert all(graded[n].reasons == tuple(grades[n]["reasons"]) for n in inverted + white)


_MASK_KINDS = ("as drawn", "inverted", "all white", "all black", "noise", "grey levels")


@settings(derandomize=True, max_examples=12, deadline=None)
@given(kinds=st.lists(st.sampled_from(_MASK_KINDS), min_size=3, max_size=3))
def test_analyze_works_on_any_masks_users_bring(tmp_path_factory, kinds):
    """Masks as users save them (right, inverted, blank, full, noise, grey levels): analyze
    grades every one and renders its report and console lines, or refuses the set with a
    one-line BeadsegError naming the mask; nothing else escapes."""
    from beadseg.analysis.outputs import console_lines
    from beadseg.analysis.report import render_report
    from beadseg.core.errors import BeadsegError

    root = tmp_path_factory.mktemp("d")
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    names = ["160x_fA_grid_r0_c0", "320x_fB_grid_r0_c0", "640x_fC_grid_r0_c0"]
    for i, (name, kind) in enumerate(zip(names, kinds)):
        s = synth_image(64, 12, seed=i, cluster_fraction=0.0, min_gap_px=2)
        drawn = np.where(s.mask, 255, 0).astype(np.uint8)
        mask = {
            "as drawn": drawn,
            "inverted": 255 - drawn,
            "all white": np.full_like(drawn, 255),
            "all black": np.zeros_like(drawn),
            "noise": (rng.random(drawn.shape) < 0.5).astype(np.uint8) * 255,
            "grey levels": rng.integers(0, 256, drawn.shape).astype(np.uint8),
        }[kind]
        write_image(root / "images" / f"{name}.png", s.image)
        iio.imwrite(root / "masks" / f"{name}.png", mask)
    try:
        summary = analyze_dataset(root, None, workers=1)
    except BeadsegError as err:
        assert "\n" not in str(err) and "masks" in str(err)
        return
    grades = {g["name"]: g for g in summary["label_grades"]}
    for name, kind in zip(names, kinds):
        if kind in ("inverted", "all white"):
            assert grades[name]["grade"] == "unusable", (kind, grades.get(name))
        for reason in grades.get(name, {"reasons": []})["reasons"]:
            assert "\n" not in reason
    assert "## Recommendations" in render_report(summary, figures=False)
    assert console_lines(summary, root / "out", plots=False)
