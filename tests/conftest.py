import os

# The thread count is left as the environment sets it: .ci/run runs the suite once with torch
# and BLAS at 1 thread and once at the default (every core), so a test whose outcome depends on
# the number of threads fails in CI (see helpers.FROZEN for training outcomes).
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run and machine (a test's outcome is certain)
# and keep no example database (no .hypothesis/ folder left in the checkout).
settings.register_profile("beadseg", derandomize=True, database=None, deadline=None)
settings.load_profile("beadseg")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def synth_data(tmp_path):
    """A small synthetic dataset on disk (images/, masks/, labels/)."""
    from beadseg.data.synth import synth_dataset

    out = tmp_path / "synth"
    synth_dataset(out, n=6, size=128, seed=1, min_beads=5, max_beads=400)
    return out
