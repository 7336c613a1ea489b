import csv
import json

import numpy as np
import pytest

from beadseg.core.errors import InputError
from beadseg.core.images import write_image
from beadseg.core.masks import write_labels, write_mask
from beadseg.core.registration import fix_masks, shift_mask
from beadseg.data.synth import synth_image
from beadseg.evaluation.evaluate import evaluate


def test_evaluate_prediction_folder_matches_stardist(tmp_path):
    from stardist.matching import matching, matching_dataset

    data, pred = tmp_path / "data", tmp_path / "pred"
    rng = np.random.default_rng(0)
    pairs = {}
    for i in range(3):
        s = synth_image(128, 40 + 20 * i, seed=i)
        p = shift_mask(s.labels, int(rng.integers(-2, 3)), 1)
        write_image(data / "images" / f"{320 * (i + 1)}x_f{i}.png", s.image)
        write_mask(data / "masks" / f"{320 * (i + 1)}x_f{i}.png", s.mask)
        write_labels(data / "labels" / f"{320 * (i + 1)}x_f{i}.tif", s.labels)
        write_labels(pred / "labels" / f"{320 * (i + 1)}x_f{i}.tif", p)
        pairs[f"{320 * (i + 1)}x_f{i}"] = (s.labels, p)
    r = evaluate(pred, data, tmp_path / "ev")
    for e in r.images:
        t, p = pairs[e.image]
        ref = matching(t, p, thresh=0.5)
        assert e.objects.f1 == pytest.approx(ref.f1)
        assert e.objects.n_pred == ref.n_pred and e.objects.n_true == ref.n_true
        assert e.iou_best_shift >= e.pixels.iou
    ref = matching_dataset(
        [t for t, _ in pairs.values()], [p for _, p in pairs.values()], thresh=0.5, show_progress=False
    )
    assert (r.overall.objects.tp, r.overall.objects.fp, r.overall.objects.fn) == (ref.tp, ref.fp, ref.fn)
    assert set(r.per_dilution) == {"320", "640", "960"}
    for f in ("metrics.json", "metrics.csv", "worst_cases.png", "config.yaml"):
        assert (tmp_path / "ev" / f).is_file()
    on_disk = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert on_disk["overall"]["object"]["f1"] == pytest.approx(ref.f1)
    assert on_disk["per_image"][0] == json.loads(json.dumps(r.images[0].row()))
    rows = list(csv.DictReader(open(tmp_path / "ev" / "metrics.csv")))
    assert [row["image"] for row in rows] == [e.image for e in r.images]


def test_a_mask_of_packed_beads_is_counted_bead_by_bead(tmp_path):
    # a 5 x 5 grid of touching discs drawn bead by bead, no labels/: the gaps between the beads
    # are holes of the mask, and filling them made the pack one true bead
    yy, xx = np.mgrid[:64, :64]
    discs = [np.hypot(yy - 12 - 7.5 * i, xx - 12 - 7.5 * j) <= 4 for i in range(5) for j in range(5)]
    labels = np.zeros((64, 64), np.int32)
    for k, d in enumerate(discs, 1):
        labels[d & (labels == 0)] = k
    write_image(tmp_path / "data" / "images" / "320x_f.png", (np.where(labels > 0, 60, 140)).astype(np.uint8))
    write_mask(tmp_path / "data" / "masks" / "320x_f.png", labels > 0)
    write_labels(tmp_path / "pred" / "labels" / "320x_f.tif", labels)
    (e,) = evaluate(tmp_path / "pred", tmp_path / "data", use_all_labels=True).images
    assert e.truth_source == "mask"
    assert (e.true_count, e.count_error, e.centroids.f1) == (25, 0.0, 1.0)


def test_real_and_synthetic_images_are_scored_apart(tmp_path):
    """A synthetic image the model gets wrong must not drag the real images' headline down (nor
    hide behind it): with both domains present, scores and headlines are per domain."""
    data, pred = tmp_path / "data", tmp_path / "pred"
    real, synthetic = synth_image(96, 12, seed=0), synth_image(96, 30, seed=1)
    for name, s, p in (
        ("320x_f0", real, real.labels),  # perfect
        ("synthetic_80x_0", synthetic, np.zeros_like(synthetic.labels)),  # nothing found
    ):
        write_image(data / "images" / f"{name}.png", s.image)
        write_mask(data / "masks" / f"{name}.png", s.mask)
        write_labels(data / "labels" / f"{name}.tif", s.labels)
        write_labels(pred / "labels" / f"{name}.tif", p)
    r = evaluate(pred, data, tmp_path / "ev", use_all_labels=True, gallery=False)
    assert set(r.per_domain) == {"real", "synthetic"}
    assert r.per_domain["real"].centroids.f1 == 1.0 and r.per_domain["synthetic"].centroids.f1 == 0.0
    assert 0 < r.overall.centroids.f1 < 1  # the pooled mix describes neither
    lines = r.headlines()
    assert [line.split(":")[0] for line in lines] == ["real (1 image)", "synthetic (1 image)"]
    assert "centroid F1 1.000" in lines[0] and "centroid F1 0.000" in lines[1]
    on_disk = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert on_disk["per_domain"]["real"]["centroid"]["f1"] == 1.0
    assert [row["domain"] for row in on_disk["per_image"]] == ["real", "synthetic"]
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "## Real images (1)" in report and "## Synthetic images (1)" in report
    assert "## Overall" not in report
    # one domain: one overall headline, as before
    one = evaluate(pred, data, use_all_labels=True, only={"320x_f0"})
    assert list(one.per_domain) == ["real"] and one.headlines()[0].startswith("pixel IoU")


def test_truth_split_from_soft_masks_is_flagged(tmp_path):
    """Beads split from a soft mask (no instance labels) are mask areas, not beads: the headline
    and the report say so, and each image records where its truth came from."""
    from scipy.ndimage import gaussian_filter

    data, pred = tmp_path / "data", tmp_path / "pred"
    s = synth_image(96, 20, seed=3)
    # a soft mask as drawn with an antialiased brush: intermediate values at the object edges
    soft = np.clip(gaussian_filter(s.mask * 255.0, 0.7), 0, 255).astype(np.uint8)
    for name, mask, labels in (("320x_hard", s.mask * np.uint8(255), True), ("320x_soft", soft, False)):
        write_image(data / "images" / f"{name}.png", s.image)
        write_image(data / "masks" / f"{name}.png", mask)
        if labels:
            write_labels(data / "labels" / f"{name}.tif", s.labels)
        write_labels(pred / "labels" / f"{name}.tif", s.labels)
    r = evaluate(pred, data, tmp_path / "ev", use_all_labels=True, gallery=False)
    assert {e.image: e.truth_source for e in r.images} == {"320x_hard": "labels", "320x_soft": "soft mask"}
    assert "1 of 2 truths are soft masks" in r.headlines()[0]
    assert "**Read with care:** 1 of 2 truths are soft masks" in (tmp_path / "ev" / "report.md").read_text()
    hard = evaluate(pred, data, use_all_labels=True, only={"320x_hard"})
    assert "soft" not in hard.headlines()[0]


def test_calibrate_writes_a_copy_and_leaves_the_model_alone(tmp_path, synth_data):
    import hashlib

    from beadseg.inference import load_model
    from beadseg.models.checkpoint import DEFAULT_MODEL

    before = hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    r = evaluate("default", synth_data, tmp_path / "ev", calibrate=True, gallery=False)
    cal = r.calibration
    assert cal.checkpoint == str(tmp_path / "ev" / "calibrated.pt")
    assert cal.best_threshold in cal.thresholds
    assert max(cal.centroid_f1) == cal.centroid_f1[cal.thresholds.index(cal.best_threshold)]
    copy = load_model(cal.checkpoint)
    assert copy.threshold == cal.best_threshold and copy.meta["threshold_calibrated"]
    assert hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest() == before
    (tmp_path / "pred" / "labels").mkdir(parents=True)  # a folder of predictions
    with pytest.raises(InputError, match="needs a model"):
        evaluate(tmp_path / "pred", synth_data, calibrate=True)


def test_evaluate_only_and_empty_images(tmp_path):
    """Images with no beads in truth and prediction score F1 1 and add nothing to the pooled
    counts."""
    data, pred = tmp_path / "data", tmp_path / "pred"
    s = synth_image(64, 10, seed=0)
    empty = np.zeros((64, 64), np.int32)
    for name, truth in (("a", s.labels), ("b", empty)):
        write_image(data / "images" / f"{name}.png", s.image)
        write_mask(data / "masks" / f"{name}.png", truth > 0)
        write_labels(data / "labels" / f"{name}.tif", truth)
        write_labels(pred / "labels" / f"{name}.tif", truth)
    # b's image shows beads and its label is empty: graded unusable, so scored only with all labels
    assert [e.image for e in evaluate(pred, data).images] == ["a"]
    r = evaluate(pred, data, use_all_labels=True)
    assert [e.objects.f1 for e in r.images] == [1.0, 1.0]
    assert r.overall.objects.tp == int(s.labels.max()) and r.overall.objects.fp == 0
    assert evaluate(pred, data, only={"b"}, use_all_labels=True).overall.objects.f1 == 1.0
    with pytest.raises(InputError, match="none of the requested"):
        evaluate(pred, data, only={"zzz"})


def test_fix_masks_restores_known_shifts(tmp_path):
    truth = {}
    for i, (dy, dx) in enumerate([(0, 0), (3, -2), (0, 4)]):
        s = synth_image(160, 120, seed=30 + i)
        write_image(tmp_path / "d" / "images" / f"t{i}.png", s.image)
        write_mask(tmp_path / "d" / "masks" / f"t{i}.png", shift_mask(s.mask, dy, dx))
        truth[f"t{i}"] = (s.mask, (dy, dx))
    before = {p.name: p.read_bytes() for p in (tmp_path / "d" / "masks").iterdir()}
    rows = fix_masks(tmp_path / "d", tmp_path / "fixed")
    from beadseg.core.masks import read_mask

    for r in rows:
        mask, (dy, dx) = truth[r["name"]]
        assert r["fixed"] == ((dy, dx) != (0, 0))
        fixed = read_mask(tmp_path / "fixed" / "masks" / f"{r['name']}.png").mask
        # restored exactly, except the strip that was shifted out of the image
        inner = (slice(5, -5), slice(5, -5))
        np.testing.assert_array_equal(fixed[inner], mask[inner])
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "d" / "masks").iterdir()}
    assert (tmp_path / "fixed" / "shifts.csv").is_file()


def test_classical_calibration_picks_the_pooled_f1_best_threshold():
    from beadseg.core.metrics import match_centroids
    from beadseg.evaluation.classical import calibrate_threshold, classical_segment

    shots = [synth_image(96, n, seed=i) for i, n in enumerate((15, 30))]
    images, labels = [s.image / 255.0 for s in shots], [s.labels for s in shots]
    assert classical_segment(images[0], 1e6).max() == 0  # finds nothing: F1 0
    assert match_centroids(labels[0], classical_segment(images[0], 4.0)).f1 > 0.5
    assert calibrate_threshold(images, labels, candidates=(1e6, 4.0)) == 4.0


def test_one_registration_radius_for_analyze_train_and_fix_masks():
    """What `beadseg analyze` reports as shifted, training aligns and fix-masks fixes: every
    caller searches the same default radius."""
    import inspect

    from beadseg.core import registration
    from beadseg.core.config import AnalyzeConfig, DataConfig

    radius = registration.REGISTRATION_RADIUS_PX
    a = AnalyzeConfig()
    assert DataConfig().align_radius_px == a.registration_radius_px == a.owner_search_radius_px == radius
    for fn in (registration.register_mask, registration.align_mask, registration.fix_masks):
        assert inspect.signature(fn).parameters["radius_px"].default == radius


def test_cli_fix_masks_searches_as_far_as_training_aligns(tmp_path):
    """The default radius is DataConfig.align_radius_px, the one `train` aligns with: a mask
    that far off is found (the old CLI default, 5, missed a mask 6 px off)."""
    from beadseg.cli.app import main
    from beadseg.core.config import DataConfig
    from beadseg.core.masks import read_mask

    s = synth_image(160, 120, seed=30)
    write_image(tmp_path / "d" / "images" / "t.png", s.image)
    write_mask(tmp_path / "d" / "masks" / "t.png", shift_mask(s.mask, DataConfig().align_radius_px, 0))
    with pytest.raises(SystemExit) as exit_:
        main(["fix-masks", str(tmp_path / "d"), "--out", str(tmp_path / "fixed")])
    assert exit_.value.code == 0
    fixed = read_mask(tmp_path / "fixed" / "masks" / "t.png").mask
    np.testing.assert_array_equal(fixed[8:-8, 8:-8], s.mask[8:-8, 8:-8])
