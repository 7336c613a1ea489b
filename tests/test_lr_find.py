"""lr-find suggests a learning rate only where its loss curve has a clear minimum; otherwise it
says why (tests/test_end_to_end.py runs the command)."""

import numpy as np
import pytest

from beadseg.training.lr_find import assess_curve

LRS = np.geomspace(1e-6, 1, 100)
X = np.log10(LRS)


def test_a_curve_with_a_clear_minimum_gets_the_steepest_descent_before_it():
    losses = (
        1 / (1 + np.exp(2 * (X + 3))) + 0.1 + 0.5 * np.clip(X + 1, 0, None) ** 2
    )  # falls at 1e-3, rises after 1e-1
    lr, warning = assess_curve(LRS, losses)
    assert warning == "" and lr == pytest.approx(1e-3, rel=0.3)


@pytest.mark.parametrize(
    "losses, why",
    [
        (np.full(100, 0.7) + 0.001 * np.sin(np.arange(100)), "never falls 10%"),  # flat
        (1 / (1 + np.exp(2 * (X + 1))), "still falls at the end"),  # falling to the last step
    ],
    ids=["flat", "still-falling"],
)
def test_a_curve_without_a_clear_minimum_gets_a_warning_not_a_number(losses, why):
    lr, warning = assess_curve(LRS, losses)
    assert lr is None and "no clear minimum" in warning and why in warning


def test_a_short_sweep_asks_for_more_steps():
    assert assess_curve(LRS[:4], np.ones(4)) == (None, assess_curve(LRS[:4], np.ones(4))[1])
    assert "--steps" in assess_curve(LRS[:4], np.ones(4))[1]
