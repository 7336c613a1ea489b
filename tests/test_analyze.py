import json

import imageio.v3 as iio
import numpy as np
import pytest

from beadseg.analysis import analyze_dataset
from beadseg.io import write_image, write_mask
from beadseg.registration import shift_mask
from beadseg.synth import synth_image, synth_tiled_frame


def _write(root, name, image, labels):
    write_image(root / "images" / f"{name}.png", image)
    write_mask(root / "masks" / f"{name}.png", labels > 0)


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
    assert sum(summary["density_bins"]["counts"]) == 3
    assert summary["dataset_size"] == 3
    assert summary["mean_objects_per_image"] == pytest.approx(np.mean([s.labels.max() for s in truths.values()]))


def test_density_bins_cover_every_image_even_with_given_edges(tmp_path):
    from beadseg.config import AnalyzeConfig

    for i, n in enumerate([2, 30, 300, 700]):
        s = synth_image(256, n, seed=i)
        _write(tmp_path, f"img{i}", s.image, s.labels)
    summary = analyze_dataset(tmp_path, None, workers=1,
                              cfg=AnalyzeConfig(density_bins=[0, 5, 15, 30, 100]))
    assert sum(summary["density_bins"]["counts"]) == 4  # the old bins dropped > 100


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
    ml = summary["checks"]["missing_labels"]
    assert ml["flagged"] == ["img0"]
    assert summary["partial_mask_suspects"] == ["img0"]
    rows = {r["name"]: r for r in summary["per_image"]}
    assert rows["img0"]["unlabelled_fraction"] > 0.2
    assert rows["img1"]["unlabelled_fraction"] < 0.05


def test_leakage_groups_are_source_frames_and_duplicates(tmp_path):
    synth_tiled_frame(tmp_path, "160x_frameA", rows=2, cols=2, tile=96, overlap_px=20, seed=1)
    synth_tiled_frame(tmp_path, "320x_frameB", rows=1, cols=2, tile=96, overlap_px=20, seed=2)
    s = synth_image(96, 20, seed=5)
    _write(tmp_path, "loose_a", s.image, s.labels)
    summary = analyze_dataset(tmp_path, None, workers=1)
    leak = summary["checks"]["leakage"]
    assert leak["n_groups"] == 3 and leak["groups_equal_source_frames"]
    # a duplicate of a tile under another frame's name joins the two frames
    _write(tmp_path, "dup_of_b", iio.imread(tmp_path / "images" / "320x_frameB_grid_r0_c0.png"),
           iio.imread(tmp_path / "masks" / "320x_frameB_grid_r0_c0.png"))
    leak = analyze_dataset(tmp_path, None, workers=1)["checks"]["leakage"]
    assert not leak["groups_equal_source_frames"]
    assert any("dup_of_b" in d["images"] for d in leak["duplicates"])


def test_overlap_agreement_exact_and_altered(tmp_path):
    synth_tiled_frame(tmp_path, "640x_f", rows=2, cols=3, tile=128, overlap_px=37, n_beads=150,
                      seed=3)
    ag = analyze_dataset(tmp_path, None, workers=1)["checks"]["overlap_agreement"]
    horiz = [p for p in ag["pairs"] if p["direction"] == "horizontal"]
    assert len(horiz) == 4 and all(p["overlap_px"] == 37 for p in horiz)
    assert all(p["mask_iou"] == 1.0 for p in ag["pairs"] if p["overlap_px"])
    # alter one tile's mask in its left strip: exactly the pair sharing that strip drops
    m = iio.imread(tmp_path / "masks" / "640x_f_grid_r0_c1.png")
    m[:128 - 37, :37] = 0  # left strip only, not the rows shared with the tile below
    iio.imwrite(tmp_path / "masks" / "640x_f_grid_r0_c1.png", m)
    ag = analyze_dataset(tmp_path, None, workers=1)["checks"]["overlap_agreement"]
    low = [(p["a"], p["b"]) for p in ag["pairs"] if p["overlap_px"] and p["mask_iou"] < 1]
    assert low == [("640x_f_grid_r0_c0", "640x_f_grid_r0_c1")]


def test_registration_finds_known_shifts(tmp_path):
    shifts = {"a": (0, 0), "b": (3, 0), "c": (-2, 2), "d": (0, 0)}
    for i, (name, (dy, dx)) in enumerate(shifts.items()):
        s = synth_image(192, 150, seed=20 + i)
        _write(tmp_path, name, s.image, shift_mask(s.labels, dy, dx))
    summary = analyze_dataset(tmp_path, None, workers=1)
    rows = {r["name"]: r for r in summary["per_image"]}
    for name, (dy, dx) in shifts.items():
        # the best shift undoes the planted one
        assert (rows[name]["registration_dy"], rows[name]["registration_dx"]) == (-dy, -dx)
        assert rows[name]["misregistered"] == ((dy, dx) != (0, 0))


def test_outputs_written_and_report_numbers(tmp_path, synth_data):
    out = tmp_path / "out"
    summary = analyze_dataset(synth_data, out, workers=2, reference=synth_data)
    for f in ("summary.json", "per_image.csv", "report.md", "distribution_analysis.png",
              "sample_images.png", "registration.png", "provenance.json"):
        assert (out / f).is_file(), f
    saved = json.loads((out / "summary.json").read_text())
    for key in ("dataset_size", "mean_positive_ratio", "mean_objects_per_image",
                "mean_object_size", "partial_mask_suspects"):
        assert key in saved
    assert saved["reference"]["comparisons"][0]["ratio"] == pytest.approx(1.0)
    report = (out / "report.md").read_text()
    for section in ("Density", "Class balance", "Partial masks", "Object sizes",
                    "Image quality", "Findings", "Recommendations"):
        assert f"## {section}" in report
    # every recommendation carries its measurement
    assert all(r["measurement"] for r in summary["recommendations"])


def test_dilution_slope_in_summary(tmp_path):
    from beadseg.synth import synth_dilution_series

    synth_dilution_series(tmp_path, dilutions=(160, 640, 2560), frames_per_dilution=2,
                          tiles_per_frame=2, size=512, seed=0)
    s = analyze_dataset(tmp_path, None, workers=1)
    assert s["dilution_slope"] == pytest.approx(-1, abs=0.15)
