"""Models in use: input normalisation at inference, the centre head through predict and
evaluate, the domain check in counts.csv."""

import csv
import warnings

import numpy as np
import pytest
from helpers import DarkBeadNet, oracle_model, tiny_train_config

from beadseg.core.config import InstanceConfig, PredictConfig
from beadseg.core.domain import image_features, summarise_features
from beadseg.core.errors import BeadsegWarning
from beadseg.core.files import write_csv
from beadseg.core.images import read_image, write_image
from beadseg.core.masks import write_labels
from beadseg.core.normalization import normalization_record
from beadseg.data.synth import synth_image
from beadseg.inference import LoadedModel, segment, segment_image


def _background_oracle(**meta) -> LoadedModel:
    """The dark-bead oracle behind background normalisation (background at 0.5)."""
    return LoadedModel(
        DarkBeadNet(depth=3).eval(), 3, 3, 0.5, InstanceConfig(min_area_px=6), "oracle", meta,
        normalization_record("background"),
    )  # fmt: skip


@pytest.fixture
def tile():
    return synth_image(128, 40, seed=3, cluster_fraction=0.0, min_gap_px=2, background=0.4).image


def test_bit_depths_and_dtypes_give_the_same_mask(tile):
    model = _background_oracle()
    ref = segment_image(model, tile, PredictConfig(mode="full"))[1]
    assert 30 <= ref.max() <= 45
    for name, arr in {
        "12-bit in 16-bit": tile.astype(np.uint16) * 16,
        "16-bit": tile.astype(np.uint16) * 257,
        "float": tile.astype(np.float32) / 255,
        "float 0-255": tile.astype(np.float64),
    }.items():
        labels = segment_image(model, arr, PredictConfig(mode="full"))[1]
        np.testing.assert_array_equal(labels > 0, ref > 0, err_msg=name)


def test_raw_arrays_and_grey_2d_arrays_work(tmp_path, tile):
    legacy = oracle_model()  # a checkpoint without a normalisation record: dtype-max scaling
    write_image(tmp_path / "t.png", tile)
    from_file = segment_image(legacy, read_image(tmp_path / "t.png"))[1]
    raw = segment_image(legacy, tile)[1]  # the uint8 array as it is
    np.testing.assert_array_equal(raw, from_file)
    grey = tile.mean(-1).astype(np.uint8)  # 2-D
    for model in (legacy, _background_oracle()):
        labels = segment_image(model, grey)[1]
        assert labels.shape == grey.shape
        assert abs(int(labels.max()) - int(from_file.max())) <= 2


def test_domain_check_flags_unlike_images_in_counts_csv(tmp_path, monkeypatch):
    import beadseg.inference.runner as P

    plain = _background_oracle()
    rows = []
    for i in range(4):
        s = synth_image(128, 30, seed=10 + i, cluster_fraction=0.0, background=0.4)
        seg = segment(plain, s.image, PredictConfig(mode="full"))
        rows.append(image_features(seg.image, seg.labels))
    model = _background_oracle(fingerprint=summarise_features(rows))
    monkeypatch.setattr(P, "load_model", lambda *a, **k: model)
    write_image(tmp_path / "in" / "like.png", synth_image(128, 30, seed=20, background=0.4).image)
    pink = synth_image(128, 30, seed=21, background=0.4)  # the same beads, stained red
    img = pink.image.astype(np.int16)
    img[..., 0][pink.labels > 0] += 40
    write_image(tmp_path / "in" / "unlike.png", np.clip(img, 0, 255).astype(np.uint8))
    with pytest.warns(BeadsegWarning, match=r"1 of 2 images look unlike .*\(unlike\)"):
        P.predict_images("m", [tmp_path / "in"], tmp_path / "out", PredictConfig(mode="full"), progress=False)
    out = {r["image"]: r for r in csv.DictReader(open(tmp_path / "out" / "counts.csv"))}
    assert out["like"]["out_of_domain"] == "False" and out["like"]["domain_reason"] == ""
    assert out["unlike"]["out_of_domain"] == "True"
    assert out["unlike"]["domain_reason"].startswith("bead_colour")


def _exact_truth_set(root, n=3):
    """Synthetic tiles with labels/ and centres/ (exact truth, as `synth --from` writes)."""
    from scipy import ndimage as ndi

    for i in range(n):
        s = synth_image(128, 60, seed=30 + i, cluster_fraction=0.5, background=0.4)
        name = f"truth_dense_{i:03d}"
        write_image(root / "images" / f"{name}.png", s.image)
        write_image(root / "masks" / f"{name}.png", (s.labels > 0).astype(np.float32))
        write_labels(root / "labels" / f"{name}.tif", s.labels)
        ids = np.arange(1, s.labels.max() + 1)
        pts = ndi.center_of_mass(s.labels > 0, s.labels, ids)
        write_csv(
            root / "centres" / f"{name}.csv",
            [{"id": int(k), "x": x, "y": y} for k, (y, x) in zip(ids, pts)],
            ["id", "x", "y"],
        )
    return root


def test_evaluate_counts_against_exact_centres(tmp_path):
    from beadseg.core.masks import read_centres, read_labels
    from beadseg.evaluation.evaluate import evaluate

    data = _exact_truth_set(tmp_path / "d")
    # predictions that find every bead (a folder as `beadseg predict` writes: labels/NAME.tif)
    for i in range(3):
        name = f"truth_dense_{i:03d}"
        write_labels(
            tmp_path / "pred" / "labels" / f"{name}.tif", read_labels(data / "labels" / f"{name}.tif")
        )
    # merge two beads in the labels: the centres still say how many beads there are
    lab = read_labels(data / "labels" / "truth_dense_000.tif")
    lab[lab == 2] = 1
    write_labels(data / "labels" / "truth_dense_000.tif", lab)
    res = evaluate(tmp_path / "pred", data)
    first = res.images[0]
    n_centres = len(read_centres(data / "centres" / "truth_dense_000.csv"))
    assert first.true_count == n_centres == first.objects.n_true + 1
    assert res.overall.counts.true_total == sum(
        len(read_centres(data / "centres" / f"truth_dense_{i:03d}.csv")) for i in range(3)
    )
    assert res.overall.centroids.f1 == 1.0  # every predicted bead sits on its exact centre


def test_centre_head_model_trains_for_two_epochs_and_predicts(tmp_path):
    from beadseg.inference import load_model, predict_images
    from beadseg.training import train

    data = _exact_truth_set(tmp_path / "d", n=4)
    for i in range(2):  # annotated tiles of two frames, for the split
        s = synth_image(128, 40, seed=40 + i, background=0.4)
        write_image(data / "images" / f"320x_f{i}_grid_r0_c0.png", s.image)
        write_image(data / "masks" / f"320x_f{i}_grid_r0_c0.png", (s.labels > 0).astype(np.float32))
    cfg = tiny_train_config(data, **{"model.centre_head": True, "data.crop_size": 96})
    res = train(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    assert res["epochs_run"] == 2
    model = load_model(tmp_path / "run")
    assert model.centre_head and model.normalization["method"] == "background"
    seg = segment(model, read_image(data / "images" / "truth_dense_000.png"))
    assert seg.centres is not None and seg.centres.shape == seg.probabilities.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BeadsegWarning)  # an untrained model may look odd
        summary = predict_images(tmp_path / "run", [data / "images"], tmp_path / "pred", progress=False)
    assert summary.n_images == 6
    rows = list(csv.DictReader(open(tmp_path / "pred" / "counts.csv")))
    assert {"out_of_domain", "domain_reason"} <= set(rows[0])
    assert (tmp_path / "pred" / "beads" / "truth_dense_000.csv").is_file()
