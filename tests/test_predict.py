import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DarkBeadNet, oracle_model

from beadseg.core.config import InstanceConfig, PredictConfig
from beadseg.core.errors import InputError
from beadseg.core.images import write_image
from beadseg.core.metrics import match_objects
from beadseg.data.synth import synth_image
from beadseg.inference import LoadedModel, predict_probabilities, segment_image
from beadseg.inference.counts import COUNT_FIELDS
from beadseg.inference.merge import merge_runs
from beadseg.inference.tiling import blend_profile, predict_tiled, tile_starts
from beadseg.models import create_model


def _random_unet(depth=3):
    torch.manual_seed(0)
    net = create_model("unet", base_channels=4, depth=depth).eval()
    return LoadedModel(net, 3, depth, 0.5, InstanceConfig(), "random")


@pytest.mark.parametrize("size", [(96, 96), (203, 331), (100, 1000), (37, 53), (3, 5)])
def test_tile_starts_cover_every_pixel_and_align(size):
    align, tile, overlap = 8, 64, 24
    for side in size:
        padded = side + (-side) % align
        t = min(tile, padded)
        starts = tile_starts(padded, t, overlap, align)
        assert starts[0] == 0 and starts[-1] + t == padded  # the last tile ends at the edge
        assert all(s % align == 0 for s in starts)
        assert all(b - a <= t - overlap + align for a, b in zip(starts, starts[1:]))


def test_blend_weights_cover_every_pixel_and_taper_only_inner_edges():
    w = blend_profile(128, 32, 8, taper_start=True, taper_end=False)
    assert w[0] == 0 and w[-1] == 1 and np.all(np.diff(w) >= 0)
    assert np.all(blend_profile(128, 32, 8, False, False) == 1)
    assert np.all(blend_profile(128, 32, 8, True, True, "constant") == 1)
    with pytest.raises(ValueError, match="blend"):
        blend_profile(128, 32, 8, True, True, "gaussian")


def test_tiled_equals_full_frame_on_every_pixel_of_odd_sized_frame():
    """Regression (issue 14.1): the band past the last tile on the right/bottom of frames whose
    sides are not multiples of 2**depth came out ~0. The oracle's reach is 7 px, so with an
    overlap of 32 px tiled and whole-frame inference agree on every pixel."""
    s = synth_image((700, 1001), 1500, seed=0)
    img = s.image.astype(np.float32) / 255
    model = oracle_model()
    full = predict_probabilities(model, img, PredictConfig(mode="full"))
    tiled = predict_probabilities(model, img, PredictConfig(mode="tiled", tile_size=256, overlap=32))
    assert full.shape == tiled.shape == (700, 1001)
    np.testing.assert_allclose(tiled, full, atol=1e-5)
    edge = full[:, -40:] > 0.5
    assert edge.mean() > 0.03  # beads in the band the bug lost, found the same way tiled
    np.testing.assert_array_equal(tiled[:, -40:] > 0.5, edge)


@pytest.mark.parametrize("shape", [(203, 331), (100, 1000), (37, 53), (3, 5)])
@pytest.mark.parametrize("tile,overlap", [(96, 48), (64, 32)])
def test_random_unet_tiled_equals_full_frame_sizes_not_multiple_of_depth(shape, tile, overlap):
    m = _random_unet()
    img = np.random.default_rng(0).random(shape + (3,)).astype(np.float32)
    full = predict_probabilities(m, img, PredictConfig(mode="full"))
    tiled = predict_probabilities(
        m, img, PredictConfig(mode="tiled", tile_size=tile, overlap=overlap, batch_size=3)
    )
    assert full.shape == tiled.shape == shape
    assert np.abs(full - tiled).max() < 1e-3  # the whole frame, borders included


def test_predict_tiled_takes_any_numpy_predictor():
    """No torch: a predictor is any callable from N x C x H x W to N x H x W."""
    img = np.random.default_rng(1).random((2, 75, 130)).astype(np.float32)
    calls = []

    def predictor(batch):
        calls.append(batch.shape)
        return batch.mean(1)

    out = predict_tiled(predictor, img, tile=32, overlap=8, align=8, batch=4)
    np.testing.assert_allclose(out, img.mean(0), rtol=1e-6)
    assert calls and all(s[0] <= 4 and s[2:] == (32, 32) for s in calls)
    code = "import sys, beadseg.inference.tiling; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_oracle_finds_synthetic_beads_and_splits_touching_pairs():
    s = synth_image(256, 150, seed=4, cluster_fraction=0.5)
    prob, labels, _ = segment_image(oracle_model(), s.image / 255.0, PredictConfig(mode="full"))
    m = match_objects(s.labels, labels, 0.5)
    assert m.f1 > 0.9
    # touching beads are split: more objects than connected components of the truth
    from beadseg.core.labels import label_components

    assert labels.max() > label_components(s.mask)[1]


def test_bead_on_tile_border_found_once():
    img = np.full((128, 256, 3), 0.45, np.float32)
    yy, xx = np.mgrid[:128, :256]
    for cx in (100, 127.5, 131):  # beads near and across the seam of 128-px tiles
        img[(yy - 64) ** 2 + (xx - cx) ** 2 <= 9] = 0.3
    cfg = PredictConfig(mode="tiled", tile_size=128, overlap=32)
    _, tiled, _ = segment_image(oracle_model(), img, cfg)
    _, full, _ = segment_image(oracle_model(), img, PredictConfig(mode="full"))
    assert tiled.max() == full.max()
    np.testing.assert_array_equal(tiled > 0, full > 0)


def test_threshold_comes_from_the_model_unless_overridden():
    img = np.full((64, 64, 3), 0.45, np.float32)
    img[29:35, 29:35] = 0.43  # a faint bead: probability well below 0.99 at its centre
    prob = predict_probabilities(oracle_model(), img, PredictConfig(mode="full"))
    assert prob.max() < 0.95
    t = float(np.sort(prob.ravel())[-10])  # 9 pixels above it: one bead of >= min_area_px
    assert segment_image(oracle_model(threshold=t), img, PredictConfig(mode="full"))[1].max() == 1
    assert segment_image(oracle_model(threshold=0.99), img, PredictConfig(mode="full"))[1].max() == 0
    assert (
        segment_image(oracle_model(threshold=0.99), img, PredictConfig(mode="full"), threshold=t)[1].max()
        == 1
    )


def test_old_blend_name_and_instance_threshold_still_read():
    assert PredictConfig(blend="gaussian").blend == "cosine"
    inst = InstanceConfig(threshold=0.3, min_area_px=5)  # the key old checkpoints carry
    assert inst.min_area_px == 5 and "threshold" not in inst.model_dump()
    with pytest.raises(ValueError):
        PredictConfig(blend="box")


def test_a_one_frame_run_reads_its_frame_once_while_the_model_loads(tmp_path, monkeypatch):
    """The frame of a one-frame run is decoded while the model loads; that read is its only
    read. A frame already predicted (its record exists), or a run of several frames, reads
    nothing ahead."""
    import beadseg.inference.frames as F
    import beadseg.inference.runner as P

    reads = []
    real_read = F.read_raw_image
    monkeypatch.setattr(F, "read_raw_image", lambda path: reads.append(Path(path).name) or real_read(path))

    for i in range(2):
        write_image(tmp_path / "in" / f"f{i}.png", synth_image(64, 5, seed=i).image)
    frame = tmp_path / "in" / "f0.png"
    monkeypatch.setattr(P, "load_model", lambda *a, **kw: oracle_model())
    first = F.FirstRead.of([frame], tmp_path / "out")
    assert first.path == frame and first.image().shape[:2] == (64, 64)
    reads.clear()
    P.predict_images("any", [frame], tmp_path / "out", PredictConfig(mode="full"), progress=False)
    assert reads == ["f0.png"]  # read once: the read ahead was used
    assert F.FirstRead.of([frame], tmp_path / "out") is None  # recorded: nothing to read ahead
    assert F.FirstRead.of(sorted((tmp_path / "in").iterdir()), tmp_path / "other") is None


def test_predict_images_counts_csv_and_errors(tmp_path, monkeypatch):
    import beadseg.inference.runner as P

    # every piece of a bead cut by the border counted, as synth_image counts them (the rule of
    # ownership by centre: tests/test_packed_counting.py)
    monkeypatch.setattr(P, "load_model", lambda model, *args, **kw: oracle_model(border="keep"))
    truth = {}
    for i, n in enumerate([5, 40, 90]):
        s = synth_image(160, n, seed=i, cluster_fraction=0.0, min_gap_px=2)
        write_image(tmp_path / "in" / f"{160 * 2**i}x_f{i}_grid_r0_c0.png", s.image)
        truth[f"{160 * 2**i}x_f{i}_grid_r0_c0"] = n
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "in" / "0_broken.png").write_bytes(b"not a png either")  # the first frame: read ahead
    summary = P.predict_images(
        "any", [tmp_path / "in"], tmp_path / "out", PredictConfig(mode="full"), progress=False
    )
    assert summary.n_images == 3 and summary.n_errors == 2
    assert summary.total_count == sum(truth.values())
    rows = list(csv.DictReader(open(tmp_path / "out" / "counts.csv")))
    assert list(rows[0]) == COUNT_FIELDS
    for r in rows:
        assert int(r["count"]) == truth[r["image"]]
        assert int(r["dilution"]) == int(r["image"].split("x_")[0])
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk == summary.to_dict() and on_disk["counts"][0]["image"] == rows[0]["image"]
    errors = list(csv.DictReader(open(tmp_path / "out" / "errors.csv")))
    assert [e["image"].rsplit("/", 1)[-1] for e in errors] == ["0_broken.png", "broken.png"]
    for sub, ext in (("masks", "png"), ("labels", "tif"), ("overlays", "png"), ("beads", "csv")):
        assert len(list((tmp_path / "out" / sub).glob(f"*.{ext}"))) == 3
    beads = list(csv.DictReader(open(tmp_path / "out" / "beads" / f"{rows[1]['image']}.csv")))
    assert {
        "id",
        "centroid_x",
        "centroid_y",
        "area_px",
        "equivalent_diameter_px",
        "mean_intensity",
        "mean_probability",
    } <= set(beads[0])
    assert "mode: full" in (tmp_path / "out" / "config.yaml").read_text()


def test_merge_reads_settings_of_older_runs(tmp_path, monkeypatch):
    import beadseg.inference.runner as P

    monkeypatch.setattr(P, "load_model", lambda model, *args, **kw: oracle_model())
    for i in range(2):
        write_image(tmp_path / "in" / f"320x_f{i}.png", synth_image(64, 5, seed=i).image)
    for i in range(2):
        P.predict_images(
            "m",
            [tmp_path / "in"],
            tmp_path / f"s{i}",
            PredictConfig(mode="full"),
            progress=False,
            shard=(i, 2),
        )
    old = json.loads((tmp_path / "s1" / "settings.json").read_text())
    old["predict"]["blend"] = "gaussian"  # as written before the rename
    old["instances"]["threshold"] = 0.5  # a key older versions wrote
    (tmp_path / "s1" / "settings.json").write_text(json.dumps(old))
    assert merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m").n_images == 2


def test_bad_model_and_inputs(tmp_path):
    from beadseg.inference import collect_inputs, load_model

    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a beadseg checkpoint"):
        load_model(bogus)
    with pytest.raises(InputError, match="no input"):
        collect_inputs([])
    with pytest.raises(InputError, match="does not exist"):
        collect_inputs([tmp_path / "nope"])


def test_channel_mismatch():
    m = LoadedModel(
        create_model("unet", in_channels=4, base_channels=2, depth=1).eval(), 4, 1, 0.5, InstanceConfig(), "x"
    )
    with pytest.raises(InputError, match="expects 4"):
        predict_probabilities(m, np.zeros((32, 32, 3), np.float32))


def test_cli_predict_bad_checkpoint_exit_2(tmp_path):
    bogus = tmp_path / "m.pt"
    bogus.write_text("x")
    write_image(tmp_path / "a.png", np.zeros((16, 16, 3), np.uint8))
    r = subprocess.run(
        [sys.executable, "-m", "beadseg", "predict", bogus, tmp_path / "a.png", "--out", tmp_path / "o"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "not a beadseg checkpoint" in r.stderr
    assert "Traceback" not in r.stderr


def _main(*args):
    """Run the CLI in this process; its exit code."""
    from beadseg.cli.app import main

    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    return exit_.value.code


def test_cli_predict_config_file_set_and_options(tmp_path, capsys):
    """Options given on the command line win over --set, which wins over --config (one schema
    for every command: predict reads its ``predict:`` section); the rest keep the defaults. The
    resolved config is saved beside the outputs, ready to be given back with --config."""
    write_image(tmp_path / "a.png", synth_image(40, 3, seed=0).image)
    (tmp_path / "p.yaml").write_text("predict:\n  tile_size: 256\n  overlap: 64\n  mode: tiled\n")
    args = ["predict", "default", tmp_path / "a.png", "--config", tmp_path / "p.yaml"]
    sets = ["--set", "predict.overlap=32", "--set", "predict.blend=gaussian"]
    assert _main(*args, "--out", tmp_path / "o", *sets, "--tile-size", 128, "--quiet") == 0
    from beadseg.core.config import load_config

    cfg = load_config(tmp_path / "o" / "config.yaml").predict
    assert (cfg.mode, cfg.tile_size, cfg.overlap, cfg.blend) == ("tiled", 128, 32, "cosine")
    assert cfg.batch_size == PredictConfig().batch_size
    assert _main(*args, "--out", tmp_path / "o2", "--set", "predict.tile_sise=3") == 2
    assert "did you mean 'predict.tile_size'" in capsys.readouterr().err
    assert _main(*args, "--out", tmp_path / "o3", "--set", "overlap=3") == 2
    assert "did you mean 'predict.overlap'" in capsys.readouterr().err


def test_shipped_model_tiled_equals_full_frame_on_every_pixel():
    from beadseg.inference import load_model

    m = load_model("default")
    assert m.threshold == 0.5 and m.instances.split_area_ratio > 0  # it carries its split by size
    assert m.instances.model_copy(update={"split_area_ratio": 0.0}) == InstanceConfig()  # the rest: defaults
    img = (synth_image((401, 603), 300, seed=1).image / 255.0).astype(np.float32)
    full = predict_probabilities(m, img, PredictConfig(mode="full"))
    tiled = predict_probabilities(m, img, PredictConfig(mode="tiled", tile_size=256))  # default overlap
    assert np.abs(full - tiled).max() < 1e-4


def test_inner_boundaries_equal_skimage():
    from skimage.segmentation import find_boundaries

    from beadseg.inference import inner_boundaries

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


def test_dark_bead_net_reach_is_what_the_helper_says():
    net = DarkBeadNet().eval()
    x = torch.zeros(1, 3, 64, 64)
    x[..., 32, 32] = 1.0
    with torch.no_grad():
        changed = (net(x) != net(torch.zeros_like(x)))[0, 0]
    rows, cols = np.nonzero(changed.numpy())
    assert max(abs(rows - 32).max(), abs(cols - 32).max()) == DarkBeadNet.reach_px
