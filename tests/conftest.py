import os

# One thread per process: the suite runs many small models and subprocesses; with torch's
# default thread pool on a loaded 2-core machine one test took 81 s instead of 8.5 s.
# Subprocesses (CLI tests, torchrun workers) inherit these.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


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
