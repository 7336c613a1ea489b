"""Counting touching beads: centre-head targets, peak-seeded instances, centre-head training."""

import numpy as np
import pytest
import torch

from beadseg.core.beads import segment_instances, single_bead_area
from beadseg.core.config import InstanceConfig
from beadseg.core.errors import ConfigError, InputError
from beadseg.data.targets import centre_targets, distance_map, gaussian_heatmap
from beadseg.models import MODELS, build_model


def _discs(shape, centres, radius):
    """Label image of discs (a pixel in two discs goes to the nearer centre)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.stack([np.hypot(yy - cy, xx - cx) for cy, cx in centres])
    labels = np.where(d.min(0) <= radius, d.argmin(0) + 1, 0)
    return labels.astype(np.int32), d


def _maps(shape, centres, radius=3.5, sigma=1.5):
    labels, d = _discs(shape, centres, radius)
    prob = (labels > 0).astype(np.float32)
    centre = np.exp(-(d.min(0) ** 2) / (2 * sigma**2)).astype(np.float32)
    return labels, prob, centre


# ----------------------------------------------------------------------------- targets


def test_heatmap_of_exact_centres():
    t = gaussian_heatmap((12, 12), np.array([[5.0, 4.0], [5.0, 8.5]]), sigma_px=1.5)
    assert t[5, 4] == pytest.approx(1.0)
    assert t[5, 6] == pytest.approx(np.exp(-4 / 4.5), rel=1e-5)  # 2 px from the first centre
    assert t[5, 8] == pytest.approx(np.exp(-0.25 / 4.5), rel=1e-5)  # sub-pixel second centre
    assert t[0, 11] < 1e-3


def test_exact_truth_target_is_valid_everywhere():
    labels, _ = _discs((20, 20), [(10, 7), (10, 13)], 3.5)
    t, v = centre_targets(labels > 0, 38, centres=np.array([[10, 7], [10, 13]]), labels=labels)
    assert v.all()
    assert t[10, 7] == pytest.approx(1.0) and t[10, 13] == pytest.approx(1.0)
    assert t[10, 10] < 0.2  # the valley between the two touching beads


def test_annotated_clumps_are_left_out_of_the_centre_loss():
    # one single bead (a 3x3 square, area 9) and a clump of about 3 beads (3x9, area 27)
    mask = np.zeros((16, 20), bool)
    mask[2:5, 2:5] = True
    mask[9:12, 6:15] = True
    assert single_bead_area([mask, mask[:8]]) == 9
    t, v = centre_targets(mask, single_area_px=9, clump_area_ratio=1.5)
    assert t[3, 3] == pytest.approx(1.0)  # the single bead's centroid
    assert not v[8:13, 5:16].any()  # the clump and a 1-px rim: unknown centres
    assert v[:7].all() and v[14:].all()
    assert t[9:12, 6:15].max() < 1e-3  # no centre invented in the clump
    # a clump is a clump only above the ratio
    _, v2 = centre_targets(mask, single_area_px=9, clump_area_ratio=3.5)
    assert v2.all()


def test_distance_target_peaks_at_each_bead_centre():
    labels, _ = _discs((20, 24), [(10, 8), (10, 14.5)], 3.5)
    d = distance_map(labels)
    assert d[10, 8] == pytest.approx(1.0) and d.max() == pytest.approx(1.0)
    assert d[labels == 0].max() == 0
    assert d[10, 11] < 0.5  # the edge between the touching beads is low
    t, v = centre_targets(labels > 0, 38, centres=np.zeros((2, 2)), labels=labels, kind="distance")
    np.testing.assert_allclose(t, d)


# ----------------------------------------------------------------------------- instances


@pytest.mark.parametrize("method", ["centre_peaks", "probability_peaks"])
def test_two_touching_discs_become_two_beads(method):
    labels, prob, centre = _maps((24, 30), [(12, 11), (12, 18)])
    assert (labels > 0).sum() == len(np.flatnonzero(prob))
    from scipy import ndimage as ndi

    assert ndi.label(prob > 0.5)[1] == 1  # one connected blob
    # a blurred probability has a saddle between the beads, as a network's output does
    soft = ndi.gaussian_filter(prob, 1.0)
    out = segment_instances(soft, centre, InstanceConfig(method=method, min_area_px=4))
    assert out.max() == 2
    # each bead's centroid lies on its own centre
    for cy, cx in [(12, 11), (12, 18)]:
        assert out[cy, cx] > 0
    assert out[12, 11] != out[12, 18]


def test_clump_of_five_gives_five():
    centres = [(20, 14), (20, 21), (20, 28), (14, 17.5), (14, 24.5)]
    labels, prob, centre = _maps((36, 44), centres)
    from scipy import ndimage as ndi

    assert ndi.label(prob > 0.5)[1] == 1
    out = segment_instances(prob, centre, InstanceConfig(method="centre_peaks", min_area_px=4))
    assert out.max() == 5
    assert len({int(out[int(cy), int(cx)]) for cy, cx in centres}) == 5
    # the distance watershed of today sees fewer beads in this clump
    today = segment_instances(prob, None, InstanceConfig(method="distance", min_area_px=4))
    assert today.max() < 5


def test_weak_centre_peaks_do_not_split_and_unseeded_beads_are_kept():
    labels, prob, centre = _maps((24, 40), [(12, 8), (12, 15), (12, 30)])
    weak = centre.copy()
    weak[:, 12:] *= 0.1  # the second and third bead's centres are below the floor
    out = segment_instances(prob, weak, InstanceConfig(method="centre_peaks", min_area_px=4))
    # the pair keeps one seed (not split); the isolated third bead has none but is kept whole
    assert out.max() == 2


def test_auto_method_follows_the_model_and_centre_needs_a_head():
    _, prob, centre = _maps((24, 30), [(12, 11), (12, 18)])
    auto = InstanceConfig()
    np.testing.assert_array_equal(
        segment_instances(prob, centre, auto),
        segment_instances(prob, centre, InstanceConfig(method="centre_peaks")),
    )
    np.testing.assert_array_equal(
        segment_instances(prob, None, auto), segment_instances(prob, None, InstanceConfig(method="distance"))
    )
    with pytest.raises(InputError, match="centre_head"):
        segment_instances(prob, None, InstanceConfig(method="centre_peaks"))


# ----------------------------------------------------------------------------- models and training


@pytest.mark.parametrize("name", list(MODELS))
def test_every_architecture_gets_a_centre_head(name):
    cfg = {"name": name, "base_channels": 4, "depth": 2}
    x = torch.zeros(1, 3, 32, 32)
    assert build_model(cfg, 3)(x).shape == (1, 1, 32, 32)  # old checkpoints: no key, 1 channel
    assert build_model({**cfg, "centre_head": True}, 3)(x).shape == (1, 2, 32, 32)


def _exact_truth_folder(src, out):
    """A copy of a synthetic set with centres/NAME.csv from its labels (as `synth --from`)."""
    import shutil

    from scipy import ndimage as ndi

    from beadseg.core.files import write_csv
    from beadseg.core.masks import read_labels

    shutil.copytree(src, out)
    for f in sorted((out / "labels").iterdir()):
        lab = read_labels(f)
        ids = np.unique(lab[lab > 0])
        pts = ndi.center_of_mass(lab > 0, lab, ids)
        rows = [{"id": int(i), "x": float(x), "y": float(y)} for i, (y, x) in zip(ids, pts)]
        write_csv(out / "centres" / f"{f.stem}.csv", rows, ["id", "x", "y"])
        (out / "labels" / f.name).rename(out / "labels" / f"exact_{f.name}")
    for sub in ("images", "masks", "labels", "centres"):
        for f in sorted((out / sub).iterdir()):
            if not f.name.startswith("exact_"):
                f.rename(f.with_name(f"exact_{f.name}"))
    return out


def test_centre_head_model_trains_on_several_folders(tmp_path):
    from helpers import tiny_train_config

    from beadseg.data.synth import synth_dataset
    from beadseg.models.checkpoint import load_checkpoint, model_from_checkpoint
    from beadseg.training import train

    synth_dataset(tmp_path / "a", n=4, size=80, seed=3, min_beads=20, max_beads=80)
    synth_dataset(tmp_path / "b0", n=3, size=80, seed=5, min_beads=20, max_beads=80)
    exact = _exact_truth_folder(tmp_path / "b0", tmp_path / "b")
    cfg = tiny_train_config(tmp_path / "a", **{"model.centre_head": True, "data.crop_size": 64})
    cfg.data.path = [str(tmp_path / "a"), str(exact)]
    res = train(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    assert res["epochs_run"] == 2
    state = load_checkpoint(tmp_path / "run" / "best.pt")
    meta = state["meta"]
    assert meta["model"]["centre_head"] is True
    assert meta["centres"]["single_bead_area_px"] > 0
    assert meta["normalization"]["method"] == "background"
    assert set(meta["fingerprint"]["features"]) >= {"intensity_p50", "foreground_fraction"}
    net = model_from_checkpoint(state)
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)

    # the same names in two folders are refused
    cfg.data.path = [str(tmp_path / "a"), str(tmp_path / "a")]
    with pytest.raises(ConfigError, match="in both"):
        train(cfg, tmp_path / "run2", progress=False, log=lambda s: None)


def test_beads_per_tile_of_a_labelled_set():
    from beadseg.core.beads import count_beads_in_mask, single_bead_area

    # 6 single discs (area ~37) and one clump outlined as a smooth blob of ~3 bead areas
    labels, _ = _discs((60, 60), [(8, 8), (8, 30), (8, 50), (30, 8), (50, 8), (50, 50)], 3.5)
    mask = labels > 0
    yy, xx = np.mgrid[:60, :60]
    mask |= ((yy - 32) / 5.0) ** 2 + ((xx - 35) / 7.5) ** 2 <= 1  # area ~118: 3 beads
    masks = [mask, labels > 0]
    assert [count_beads_in_mask(m, single_bead_area(masks)) for m in masks] == [9, 6]
    assert count_beads_in_mask(np.zeros((5, 5), bool), 37) == 0


def test_training_leaves_out_labels_graded_unusable(tmp_path):
    # one tile's mask was drawn for another picture: training leaves it out and says why
    import json

    from helpers import tiny_train_config

    from beadseg.core.masks import write_mask
    from beadseg.data.synth import synth_image, synth_tiled_frame
    from beadseg.training import train
    from beadseg.training.data import prepare_data

    data = tmp_path / "d"
    for frame in ("320x_a", "640x_b"):
        synth_tiled_frame(data, frame, rows=1, cols=3, tile=96, overlap_px=16)
    bad = sorted(p.stem for p in (data / "images").iterdir())[0]
    write_mask(data / "masks" / f"{bad}.png", synth_image(96, 60, seed=999).labels > 0)
    cfg = tiny_train_config(data)
    d = prepare_data(cfg)
    assert bad not in {s.name for s in d.train + d.val} and list(d.labels.left_out) == [bad]
    assert d.labels.left_out[bad][0].startswith("poor fit")
    cfg.data.use_all_labels = True
    assert bad in {s.name for s in (lambda t: t.train + t.val)(prepare_data(cfg))}
    cfg.data.use_all_labels = False
    train(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    left_out = json.loads((tmp_path / "run" / "split.json").read_text())["labels"]["left_out"]
    assert [x["name"] for x in left_out] == [bad] and left_out[0]["reasons"][0].startswith("poor fit")


def test_fine_tuning_takes_the_network_and_scaling_of_its_start(tmp_path):
    from helpers import tiny_train_config

    from beadseg.data.synth import synth_dataset
    from beadseg.models.checkpoint import load_checkpoint
    from beadseg.training import train

    synth_dataset(tmp_path / "d", n=6, size=64, seed=2, min_beads=10, max_beads=60)
    start = tiny_train_config(
        tmp_path / "d", **{"model.centre_head": True, "data.normalization": "percentile"}
    )
    train(start, tmp_path / "a", progress=False, log=lambda s: None)
    lines = []
    tuned = tiny_train_config(
        tmp_path / "d", **{"train.init_weights": str(tmp_path / "a"), "train.epochs": 1}
    )
    train(tuned, tmp_path / "b", progress=False, log=lines.append)
    meta = load_checkpoint(tmp_path / "b" / "best.pt")["meta"]
    assert meta["model"]["centre_head"] and meta["normalization"]["method"] == "percentile"
    assert any("replace model.* and data.*" in line for line in lines)


def test_fine_tuning_lowers_the_default_learning_rate_but_keeps_a_chosen_one():
    from beadseg.core.config import load_config
    from beadseg.training.trainer import FINE_TUNE_LR_FACTOR, fine_tuning_config

    default_lr = load_config(None, []).optim.lr
    quiet = lambda s: None  # noqa: E731
    tuned = fine_tuning_config(load_config(None, ["train.init_weights=default"]), quiet)
    assert tuned.optim.lr == default_lr * FINE_TUNE_LR_FACTOR < default_lr
    chosen = fine_tuning_config(load_config(None, ["train.init_weights=default", "optim.lr=0.002"]), quiet)
    assert chosen.optim.lr == 0.002
