import pytest
import torch

from beadseg.core.errors import ConfigError
from beadseg.models import MODELS, create_model, model_table

NAMES = list(MODELS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(256, 256), (300, 257)])
def test_any_input_size(name, shape):
    m = create_model(name, in_channels=3, base_channels=4, depth=3).eval()
    with torch.no_grad():
        out = m(torch.rand(1, 3, *shape))
    assert out.shape == (1, 1, *shape)


@pytest.mark.parametrize("name", NAMES)
def test_4k_frame_in_one_call(name):
    m = create_model(name, in_channels=3, base_channels=2, depth=2).eval()
    with torch.no_grad():
        out = m(torch.rand(1, 3, 2160, 3840))
    assert out.shape == (1, 1, 2160, 3840)


def test_no_norm_on_final_logit():
    m = create_model("unet")
    assert isinstance(m.head, torch.nn.Conv2d)
    last = [mod for mod in m.modules() if not list(mod.children())][-1]
    assert last is m.head


@pytest.mark.parametrize("norm", ["batch", "group", "instance", "none"])
@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_options(norm, up):
    m = create_model(
        "attention_resunet", base_channels=4, depth=2, norm=norm, upsample=up, dropout=0.1, in_channels=1
    ).eval()
    assert m(torch.rand(2, 1, 32, 40)).shape == (2, 1, 32, 40)


def test_unknown_name_lists_valid_and_closest():
    with pytest.raises(ConfigError, match="did you mean 'attention_unet'") as e:
        create_model("atention_unet")
    assert "unet, attention_unet, attention_resunet" in str(e.value)


def test_model_table():
    rows = model_table(base_channels=8, depth=3)
    assert [r["model"] for r in rows] == NAMES
    assert all(r["parameters"] > 1e5 and r["gflops_per_mp"] > 1 for r in rows)


def test_tiny_model_overfits_one_synthetic_image():
    from beadseg.core.metrics import pixel_scores
    from beadseg.data.synth import synth_image
    from beadseg.models.losses import bce_loss, dice_loss

    torch.manual_seed(0)
    s = synth_image(64, 12, seed=3)
    x = torch.from_numpy(s.image / 255.0).float().permute(2, 0, 1)[None]
    y = torch.from_numpy(s.mask).float()[None, None]
    m = create_model("unet", base_channels=8, depth=2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        logits = m(x)
        loss = bce_loss(logits, y) + dice_loss(logits, y)
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        pred = (m(x) > 0).numpy()[0, 0]
    assert pixel_scores(pred, s.mask).iou > 0.9
