"""Convergence: planted stabilisation steps, Spearman order classes, the seed's pitfall."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from traindyn.analysis.convergence import convergence, order_class, stabilization
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

STEPS = np.arange(200, dtype=np.int64) * 5


def _settling(at: int, layer: str, seed: int = 0) -> Series:
    """Oscillates by +-2 until sample ``at``, then sits at 10 with tiny noise."""
    rng = np.random.default_rng(seed)
    values = 10 + rng.normal(0, 0.01, len(STEPS))
    values[:at] += 2 * np.where(np.arange(at) % 2 == 0, 1.0, -1.0)
    return Series(layer, "pr", STEPS, values)


@pytest.mark.parametrize(
    ("settle_at", "expected"),
    [
        ([20, 50, 80, 110], "bottom-up"),
        ([110, 80, 50, 20], "top-down"),
        ([60, 60, 60, 60], "simultaneous"),
    ],
)
def test_planted_orders(settle_at: list[int], expected: str) -> None:
    series = [_settling(at, f"l{i}", seed=i) for i, at in enumerate(settle_at)]
    conv = convergence(
        series, {f"l{i}": i for i in range(4)}, total_steps=1000, window=5, criterion="range"
    )
    found = conv.layers["stabilization_step"].tolist()
    # the last oscillating sample is at - 1, so the first all-stable window starts at `at`
    assert found == [int(STEPS[at]) for at in settle_at]
    assert conv.order["order"].item() == expected
    if expected != "simultaneous":
        rho = spearmanr(range(4), settle_at).statistic
        assert conv.order["rho"].item() == pytest.approx(rho)
    assert not conv.layers["suspicious"].any()


def test_seed_pitfall_everything_stable_at_step_0_is_suspicious() -> None:
    # A dimensionality near 10 moving by 3: its variance is always < 10% of its mean.
    values = 10 - 3 * (1 - np.exp(-np.arange(200) / 20))
    series = [Series(f"l{i}", "pr", STEPS, values + i) for i in range(3)]
    conv = convergence(series, {"l0": 0, "l1": 1, "l2": 2}, total_steps=1000, criterion="mean")
    assert (conv.layers["stabilization_step"] == 0).all()
    assert conv.layers["suspicious"].all()
    assert "criterion='range'" in conv.layers["reason"].iloc[0]
    order = conv.order.iloc[0]
    assert order["suspicious"] and "not of training" in order["reason"]
    # The scale-free criterion sees the movement.
    ranged = convergence(series, {"l0": 0, "l1": 1, "l2": 2}, total_steps=1000, criterion="range")
    assert (ranged.layers["stabilization_step"] > 0).all()
    assert not ranged.layers["suspicious"].any()


def test_stabilization_matches_a_direct_rolling_variance() -> None:
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(5, 1, 50), rng.normal(5, 0.01, 50)]
    index, _ = stabilization(values, window=7, fraction=0.1, criterion="mean")
    var = np.array([values[i : i + 7].var() for i in range(len(values) - 6)])
    mean = np.array([values[i : i + 7].mean() for i in range(len(values) - 6)])
    failing = np.flatnonzero(var >= 0.1 * np.abs(mean))
    assert index == failing[-1] + 1


def test_never_stable_and_too_short() -> None:
    values = np.where(np.arange(100) % 2 == 0, 1.0, -1.0) * np.arange(100)
    assert stabilization(values, window=5, criterion="range")[0] == -1
    assert stabilization(values[:3], window=5)[0] == -1
    conv = convergence(
        [Series("a", "pr", STEPS[:100], values)], {"a": 0}, total_steps=500, window=5
    )
    row = conv.layers.iloc[0]
    assert not row["stabilized"] and "never stable" in row["reason"]
    assert conv.order["order"].item() == "unclear"


@pytest.mark.parametrize(
    ("rho", "label"),
    [
        (0.61, "bottom-up"),
        (0.6, "unclear"),
        (-0.61, "top-down"),
        (0.29, "simultaneous"),
        (-0.29, "simultaneous"),
        (0.3, "unclear"),
        (-0.45, "unclear"),
    ],
)
def test_order_class_thresholds(rho: float, label: str) -> None:
    assert order_class(rho) == label


def test_bad_window() -> None:
    with pytest.raises(ConfigError, match="window must be"):
        convergence([], {}, total_steps=10, window=1.5)
    with pytest.raises(ConfigError, match="criterion must be one of"):
        stabilization(np.ones(10), window=3, criterion="median")  # type: ignore[arg-type]
