import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import oracle_model

from beadseg.config import InstanceConfig, PredictConfig
from beadseg.errors import InputError
from beadseg.io import write_image
from beadseg.metrics import match_objects
from beadseg.models import create_model
from beadseg.predict import LoadedModel, predict_probabilities, segment_image
from beadseg.synth import synth_image


def test_tiled_equals_full_frame_away_from_borders():
    torch.manual_seed(0)
    net = create_model("unet", base_channels=4, depth=3).eval()
    m = LoadedModel(net, 3, 3, 0.5, InstanceConfig(), "random")
    img = np.random.default_rng(0).random((200, 330, 3)).astype(np.float32)
    full = predict_probabilities(m, img, PredictConfig(mode="full"))
    tiled = predict_probabilities(m, img, PredictConfig(mode="tiled", tile_size=96, overlap=48,
                                                        batch_size=3))
    assert full.shape == tiled.shape == (200, 330)
    assert np.abs(full - tiled)[24:-24, 24:-24].max() < 1e-3


def test_oracle_finds_synthetic_beads_and_splits_touching_pairs():
    s = synth_image(256, 150, seed=4, cluster_fraction=0.5)
    prob, labels, _ = segment_image(oracle_model(), s.image / 255.0, PredictConfig(mode="full"))
    m = match_objects(s.labels, labels, 0.5)
    assert m.f1 > 0.9
    # touching beads are split: more objects than connected components of the truth
    from beadseg.instances import label_components
    assert labels.max() > label_components(s.mask)[1]


def test_bead_on_tile_border_found_once():
    img = np.full((128, 256, 3), 0.45, np.float32)
    yy, xx = np.mgrid[:128, :256]
    for cx in (100, 127.5, 131):  # beads near and across the seam of 128-px tiles
        img[(yy - 64) ** 2 + (xx - cx) ** 2 <= 9] = 0.3
    img[(yy - 64) ** 2 + (xx - 100) ** 2 <= 9] = 0.3
    cfg = PredictConfig(mode="tiled", tile_size=128, overlap=32)
    _, tiled, _ = segment_image(oracle_model(), img, cfg)
    _, full, _ = segment_image(oracle_model(), img, PredictConfig(mode="full"))
    assert tiled.max() == full.max()
    np.testing.assert_array_equal(tiled > 0, full > 0)


def test_predict_images_counts_csv_and_errors(tmp_path, monkeypatch):
    import beadseg.predict as P

    monkeypatch.setattr(P, "load_model", lambda model, device=None: oracle_model())
    truth = {}
    for i, n in enumerate([5, 40, 90]):
        s = synth_image(160, n, seed=i, cluster_fraction=0.0, min_gap_px=2)
        write_image(tmp_path / "in" / f"{160 * 2 ** i}x_f{i}_grid_r0_c0.png", s.image)
        truth[f"{160 * 2 ** i}x_f{i}_grid_r0_c0"] = n
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    summary = P.predict_images("any", [tmp_path / "in"], tmp_path / "out",
                               PredictConfig(mode="full"), progress=False)
    assert summary["n_images"] == 3 and summary["n_errors"] == 1
    rows = list(csv.DictReader(open(tmp_path / "out" / "counts.csv")))
    for r in rows:
        assert int(r["count"]) == truth[r["image"]]
        assert int(r["dilution"]) == int(r["image"].split("x_")[0])
    errors = list(csv.DictReader(open(tmp_path / "out" / "errors.csv")))
    assert len(errors) == 1 and "broken.png" in errors[0]["image"]
    for sub, ext in (("masks", "png"), ("labels", "tif"), ("overlays", "png"), ("beads", "csv")):
        assert len(list((tmp_path / "out" / sub).glob(f"*.{ext}"))) == 3
    beads = list(csv.DictReader(open(tmp_path / "out" / "beads" / f"{rows[1]['image']}.csv")))
    assert {"id", "centroid_x", "centroid_y", "area_px", "equivalent_diameter_px",
            "mean_intensity", "mean_probability"} <= set(beads[0])


def test_bad_model_and_inputs(tmp_path):
    from beadseg.predict import collect_inputs, load_model

    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a beadseg checkpoint"):
        load_model(bogus)
    with pytest.raises(InputError, match="no input"):
        collect_inputs([])
    with pytest.raises(InputError, match="does not exist"):
        collect_inputs([tmp_path / "nope"])


def test_channel_mismatch():
    m = LoadedModel(create_model("unet", in_channels=4, base_channels=2, depth=1).eval(), 4, 1,
                    0.5, InstanceConfig(), "x")
    with pytest.raises(InputError, match="expects 4"):
        predict_probabilities(m, np.zeros((32, 32, 3), np.float32))


def test_cli_predict_bad_checkpoint_exit_2(tmp_path):
    bogus = tmp_path / "m.pt"
    bogus.write_text("x")
    write_image(tmp_path / "a.png", np.zeros((16, 16, 3), np.uint8))
    r = subprocess.run([sys.executable, "-m", "beadseg", "predict", bogus, tmp_path / "a.png",
                        "--out", tmp_path / "o"], capture_output=True, text=True)
    assert r.returncode == 2 and "not a beadseg checkpoint" in r.stderr
    assert "Traceback" not in r.stderr


def test_shipped_model_tiled_equals_full_frame():
    from beadseg.predict import load_model

    m = load_model("default")
    img = synth_image((400, 600), 300, seed=1).image / 255.0
    full = predict_probabilities(m, img.astype(np.float32), PredictConfig(mode="full"))
    tiled = predict_probabilities(m, img.astype(np.float32),
                                  PredictConfig(mode="tiled", tile_size=256, overlap=96))
    assert np.abs(full - tiled)[48:-48, 48:-48].max() < 1e-3


def test_inner_boundaries_equal_skimage():
    from skimage.segmentation import find_boundaries

    from beadseg.predict import inner_boundaries

    lab = synth_image(80, 40, seed=2, cluster_fraction=0.6).labels
    np.testing.assert_array_equal(inner_boundaries(lab), find_boundaries(lab, mode="inner"))


def test_fused_model_gives_same_output():
    from beadseg.models import fuse_for_inference

    torch.manual_seed(0)
    for name in ("unet", "attention_unet", "attention_resunet"):
        net = create_model(name, base_channels=4, depth=2)
        net.train()
        net(torch.rand(4, 3, 32, 32))  # give BatchNorm non-trivial running statistics
        net.eval()
        x = torch.rand(1, 3, 40, 48)
        with torch.no_grad():
            ref = net(x)
            fused = fuse_for_inference(net)(x)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
        torch.testing.assert_close(fused, ref, rtol=1e-4, atol=1e-4)
