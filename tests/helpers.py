"""Test helpers: a hand-made 'oracle' bead detector and a tiny trained checkpoint."""

from torch import nn

from beadseg.config import InstanceConfig
from beadseg.predict import LoadedModel


class DarkBeadNet(nn.Module):
    """Logit = gain * (local background - pixel - offset): finds dark beads on synthetic images.

    Its receptive field is small (box of 15 px + blur), so tiled and full-frame inference agree
    away from borders, and its answer is known without training.
    """

    def __init__(self, gain: float = 60.0, offset: float = 0.04):
        super().__init__()
        self.gain, self.offset = gain, offset
        self.bg = nn.AvgPool2d(15, stride=1, padding=7, count_include_pad=False)
        self.blur = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        grey = x.mean(1, keepdim=True)
        return self.gain * (self.bg(grey) - self.blur(grey) - self.offset)


def oracle_model(threshold=0.5, **inst) -> LoadedModel:
    return LoadedModel(DarkBeadNet().eval(), 3, 3, threshold,
                       InstanceConfig(**{"min_area_px": 6, **inst}), "oracle")


def tiny_train_config(data, **over):
    from beadseg.config import load_config

    sets = {
        "data.path": str(data), "data.crop_size": 64, "data.crops_per_epoch": 16,
        "model.base_channels": 4, "model.depth": 2, "train.epochs": 2, "train.batch_size": 4,
        "train.num_threads": 1, "split.val_fraction": 0.34,
    }
    sets.update(over)
    return load_config(None, [f"{k}={v}" for k, v in sets.items()])
