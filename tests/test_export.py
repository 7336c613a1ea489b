"""export_checkpoint: a slim inference copy that predicts what its source predicts."""

import hashlib

import pytest
import torch

from beadseg.core.config import ModelConfig
from beadseg.core.errors import InputError
from beadseg.models import build_model
from beadseg.models.checkpoint import (
    CHECKPOINT_FORMAT,
    export_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)


@pytest.fixture
def run_checkpoint(tmp_path):
    """A last.pt-like checkpoint with optimizer state and EMA weights unlike the raw ones."""
    torch.manual_seed(0)
    cfg = ModelConfig(base_channels=4, depth=2)
    model, ema = build_model(cfg, 3), build_model(cfg, 3)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.rand(2, 3, 32, 32)).mean().backward()
    opt.step()
    path = tmp_path / "run" / "last.pt"
    save_checkpoint(
        path,
        {
            "format": CHECKPOINT_FORMAT,
            "model_state": model.state_dict(),
            "ema_state": ema.state_dict(),
            "optimizer_state": opt.state_dict(),
            "epoch": 4,
            "history": [{"epoch": 5, "val_iou": 0.5}],
            "best": {"epoch": 5},
            "config": {},
            "meta": {"model": cfg.model_dump(), "in_channels": 3, "threshold": 0.5},
        },
    )
    return path


def test_slim_copy_loads_and_predicts_the_same(run_checkpoint, tmp_path):
    before = hashlib.sha256(run_checkpoint.read_bytes()).hexdigest()
    out = export_checkpoint(run_checkpoint, tmp_path / "slim.pt", threshold=0.35)
    assert hashlib.sha256(run_checkpoint.read_bytes()).hexdigest() == before  # source untouched
    slim, full = load_checkpoint(out), load_checkpoint(run_checkpoint)
    assert "optimizer_state" not in slim and slim["ema_state"] is None
    assert slim["meta"]["threshold"] == 0.35 and slim["meta"]["threshold_calibrated"]
    assert full["meta"]["threshold"] == 0.5
    assert out.stat().st_size < run_checkpoint.stat().st_size
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        a = model_from_checkpoint(slim)(x)
        b = model_from_checkpoint(full)(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    raw = build_model(ModelConfig(base_channels=4, depth=2), 3).eval()
    raw.load_state_dict(full["model_state"])
    with torch.no_grad():
        assert not torch.allclose(raw(x), a)  # the copy holds the EMA weights, not the raw ones


def test_export_refuses_to_overwrite_its_source(run_checkpoint):
    with pytest.raises(InputError, match="is the model being exported"):
        export_checkpoint(run_checkpoint, run_checkpoint)
    with pytest.raises(InputError, match="does not exist"):
        export_checkpoint(run_checkpoint.parent / "nothing.pt", run_checkpoint.parent / "x.pt")
