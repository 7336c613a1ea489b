import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def synth_data(tmp_path):
    """A small synthetic dataset on disk (images/, masks/, labels/)."""
    from beadseg.synth import synth_dataset

    out = tmp_path / "synth"
    synth_dataset(out, n=6, size=128, seed=1, min_beads=5, max_beads=400)
    return out
