"""Critical periods: velocity percentile, coordination, loss correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.critical_periods import critical_periods, interval_loss_velocity
from traindyn.analysis.synthetic import trajectory
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

STEPS = np.arange(100, dtype=np.int64) * 10


def _burst(at: int, layer: str, metric: str = "pr", seed: int = 0) -> Series:
    """Slow noisy drift with a fast 3-sample fall starting at sample ``at``."""
    values = trajectory(100, slope=-0.001, noise=0.0005, seed=seed)
    values[at:] -= 1.0
    values[at + 1 :] -= 1.0
    values[at + 2 :] -= 1.0
    return Series(layer, metric, STEPS, values)


def _loss(falling_from: int, falling_to: int) -> pd.DataFrame:
    steps = np.arange(1000)
    loss = np.full(1000, 2.0)
    loss[falling_from:falling_to] = np.linspace(2.0, 1.0, falling_to - falling_from)
    loss[falling_to:] = 1.0
    return pd.DataFrame({"step": steps, "value": loss})


def test_planted_coordinated_burst() -> None:
    layers = [_burst(40, f"l{i}", seed=i) for i in range(4)] + [_burst(80, "late", seed=9)]
    cp = critical_periods(layers, percentile=97, loss=_loss(350, 500))  # 3 of 99 speeds
    periods = cp.periods.set_index("layer")
    assert periods.loc["l0", "start"] == 390 and periods.loc["l0", "end"] == 420
    assert periods.loc["l0", "n_samples"] == 3
    assert periods.loc["l0", "mean_velocity"] == pytest.approx(-0.1, rel=0.01)
    assert bool(periods.loc["l0", "loss_falling"]) and not bool(periods.loc["late", "loss_falling"])
    coord = cp.coordination.set_index("step")
    assert coord.loc[400, "coordination"] == pytest.approx(4 / 5)
    assert coord.loc[800, "coordination"] == pytest.approx(1 / 5)
    summary = cp.summary.iloc[0]
    assert summary["max_coordination"] == pytest.approx(0.8) and summary["coordinated"]
    assert summary["loss_correlation"] == pytest.approx(4 / 5)
    assert summary["n_periods"] == 5


def test_percentile_rule_marks_a_tenth_of_any_noisy_series() -> None:
    s = Series("a", "pr", np.arange(1001), trajectory(1001, noise=1.0, seed=0))
    cp = critical_periods([s])
    assert cp.coordination["n_critical"].sum() == 100  # 10% of 1000 speeds, by construction


def test_constant_series_has_no_critical_period_and_no_loss_gives_nan() -> None:
    cp = critical_periods([Series("a", "pr", STEPS, np.ones(100))])
    assert cp.periods.empty
    assert np.isnan(cp.summary["loss_correlation"].item())
    assert cp.summary["mean_coordination"].isna().all()


def test_interval_loss_velocity_uses_interval_means() -> None:
    steps = np.arange(0, 31)
    loss = np.where(steps % 2 == 0, 1.0, 3.0)  # noisy per batch, flat on average
    v = interval_loss_velocity(steps, loss, np.array([0, 10, 20, 30]))
    assert np.isnan(v[:2]).all() and v[2:] == pytest.approx([0.0, 0.0])


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="percentile must be in"):
        critical_periods([], percentile=100)
    with pytest.raises(ConfigError, match="coordination_threshold"):
        critical_periods([], coordination_threshold=0)
