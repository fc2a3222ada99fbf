"""Baselines: coordination and loss correlation against a circular-shift null."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis import Series, critical_periods
from traindyn.analysis.baselines import (
    BASELINE_COLUMNS,
    chance_coordination,
    coordination_null,
)
from traindyn.exceptions import ConfigError, TraindynWarning


def _walks(n_layers: int, n_samples: int, seed: int, metric: str = "pr") -> list[Series]:
    """Independent Gaussian random walks: iid speeds, so marks fall independently."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n_samples, dtype=np.int64)
    return [
        Series(f"l{i}", metric, steps, np.cumsum(rng.normal(size=n_samples)))
        for i in range(n_layers)
    ]


def _from_increments(name: str, increments: np.ndarray) -> Series:
    """A series whose speed at sample i+1 is ``increments[i]`` (unit step spacing)."""
    steps = np.arange(len(increments) + 1, dtype=np.int64)
    return Series(name, "pr", steps, np.cumsum(np.r_[0.0, increments]))


def _spikes(n: int, k: int, seed: int) -> np.ndarray:
    """``n`` increments, ``k`` of them 1 and the rest 0: exactly those k are critical
    at the 90th percentile when k = n / 10."""
    out = np.zeros(n)
    out[np.random.default_rng(seed).choice(n, k, replace=False)] = 1.0
    return out


def test_observed_columns_are_critical_periods_summary() -> None:
    layers = _walks(5, 120, seed=3)
    loss = pd.DataFrame({"step": np.arange(120), "value": np.linspace(2.0, 1.0, 120)})
    table = coordination_null(layers, loss=loss, n_shuffles=50, percentile=80)
    summary = critical_periods(layers, loss=loss, percentile=80).summary
    assert list(table.columns) == BASELINE_COLUMNS
    for column in ("n_layers", "mean_coordination", "max_coordination", "loss_correlation"):
        assert table[column].tolist() == summary[column].tolist()
    assert table["coordinated"].tolist() == summary["coordinated"].tolist()
    row = table.iloc[0]
    assert row["n_steps"] == 119 and row["shared_steps"] and row["n_shuffles"] == 50
    assert row["mean_coordination_excess"] == pytest.approx(
        row["mean_coordination"] - row["mean_coordination_null"]
    )


def test_independent_layers_sit_inside_the_null_and_p_is_roughly_uniform() -> None:
    p_coord, p_loss, inside = [], [], 0
    for seed in range(50):
        layers = _walks(4, 201, seed)
        noise = np.random.default_rng(1000 + seed).normal(size=201)
        loss = pd.DataFrame({"step": np.arange(201), "value": noise})
        row = coordination_null(layers, loss=loss, n_shuffles=200, seed=seed).iloc[0]
        p_coord.append(row["mean_coordination_p"])
        p_loss.append(row["loss_correlation_p"])
        inside += row["mean_coordination"] <= row["mean_coordination_p95"]
    p_coord_a, p_loss_a = np.array(p_coord), np.array(p_loss)
    assert np.mean(p_coord_a < 0.05) < 0.15 and np.mean(p_loss_a < 0.05) < 0.15
    assert 0.3 < np.median(p_coord_a) < 0.7 and 0.3 < np.median(p_loss_a) < 0.7
    assert inside >= 40  # ~47 expected: 95% of 50, minus ties at the p95


def test_layers_that_jump_together_beat_every_shuffle() -> None:
    spikes = _spikes(400, 40, seed=0)
    rng = np.random.default_rng(1)
    # Each layer adds its own tiny noise: same critical samples, different values.
    layers = [_from_increments(f"l{i}", spikes + rng.uniform(0, 1e-3, 400)) for i in range(6)]
    row = coordination_null(layers, n_shuffles=500).iloc[0]
    assert row["mean_coordination"] == 1.0 and row["max_coordination"] == 1.0
    assert row["mean_coordination_null"] == pytest.approx(chance_coordination(0.1, 6), rel=0.05)
    assert row["mean_coordination_excess"] > 0.7
    assert row["mean_coordination_p"] == 1 / 501
    assert row["max_coordination_p"] == 1 / 501
    assert row["max_coordination_p95"] < 1.0


@pytest.mark.parametrize(("n_layers", "percentile"), [(3, 90.0), (8, 90.0), (4, 75.0)])
def test_null_mean_matches_the_binomial_closed_form(n_layers: int, percentile: float) -> None:
    layers = _walks(n_layers, 401, seed=n_layers)
    marked = critical_periods(layers, percentile=percentile).coordination["n_critical"].sum()
    f = marked / (n_layers * 400)
    row = coordination_null(layers, percentile=percentile, n_shuffles=2000).iloc[0]
    # f / (1 - (1 - f)^L): 0.369 for (3, 0.1), 0.176 for (8, 0.1), 0.366 for (4, 0.25).
    assert row["mean_coordination_null"] == pytest.approx(f / (1 - (1 - f) ** n_layers), rel=0.01)


def test_null_equals_enumeration_of_every_relative_shift() -> None:
    # Both statistics are invariant to a common rotation, so with two layers the null is
    # the uniform average over the relative shift; enumerate it through critical_periods.
    a, b = _spikes(30, 3, seed=4), _spikes(30, 3, seed=5)
    layers = [_from_increments("a", a), _from_increments("b", b)]
    exact_mean, exact_max = [], []
    for k in range(30):
        cp = critical_periods([layers[0], _from_increments("b", np.roll(b, k))])
        exact_mean.append(cp.summary["mean_coordination"].item())
        exact_max.append(cp.summary["max_coordination"].item())
    row = coordination_null(layers, n_shuffles=20000).iloc[0]
    assert row["mean_coordination_null"] == pytest.approx(np.mean(exact_mean), abs=0.005)
    assert row["max_coordination_null"] == pytest.approx(np.mean(exact_max), abs=0.01)
    observed = exact_mean[0]
    share_at_least = np.mean(np.array(exact_mean) >= observed - 1e-12)
    assert row["mean_coordination_p"] == pytest.approx(share_at_least, abs=0.02)


def test_loss_null_equals_enumeration_including_wrapping_periods() -> None:
    # A 9-sample circular run split across the ends, and shorter ones: rolls split and
    # join periods. The loss falls until step 20 and rises after, so the sign of the
    # wrapped piece of a period matters.
    m = np.zeros(40)
    m[[0, 1, 2, 3, 12, 13, 25, 35, 36, 37, 38, 39]] = 1.0  # 30%: the 70th percentile
    layer = _from_increments("a", m)
    loss_steps = np.arange(41)
    loss = pd.DataFrame({"step": loss_steps, "value": (loss_steps - 20.0) ** 2})
    exact = [
        critical_periods([_from_increments("a", np.roll(m, k))], percentile=70, loss=loss)
        .summary["loss_correlation"]
        .item()
        for k in range(40)
    ]
    row = coordination_null([layer], percentile=70, loss=loss, n_shuffles=20000).iloc[0]
    assert row["loss_correlation"] == exact[0]
    assert row["loss_correlation_null"] == pytest.approx(np.mean(exact), abs=0.003)
    assert row["loss_correlation_p95"] <= max(exact)


def test_loss_null_is_one_for_a_falling_loss_and_a_half_for_a_random_one() -> None:
    layers = _walks(4, 301, seed=7)
    steps = np.arange(301)
    falling = pd.DataFrame({"step": steps, "value": 10.0 - 0.01 * steps})
    rising = pd.DataFrame({"step": steps, "value": 0.01 * steps})
    noise = np.random.default_rng(0).normal(size=301)
    random = pd.DataFrame({"step": steps, "value": noise})
    assert coordination_null(layers, loss=falling, n_shuffles=300)[
        "loss_correlation_null"
    ].item() == pytest.approx(1.0, abs=0.03)
    assert coordination_null(layers, loss=rising, n_shuffles=300)[
        "loss_correlation_null"
    ].item() == pytest.approx(0.0, abs=1e-12)
    assert coordination_null(layers, loss=random, n_shuffles=300)[
        "loss_correlation_null"
    ].item() == pytest.approx(0.5, abs=0.06)


def test_unequal_steps_use_the_union_grid() -> None:
    spikes = _spikes(100, 10, seed=2)
    full = [_from_increments(f"l{i}", spikes + i * 1e-6) for i in range(3)]
    holed = full[2]
    keep = np.ones(101, dtype=bool)
    keep[[30, 31]] = False  # two failed measurements
    layers = [*full[:2], Series("l2", "pr", holed.steps[keep], holed.values[keep])]
    row = coordination_null(layers, n_shuffles=300).iloc[0]
    summary = critical_periods(layers).summary
    assert row["n_steps"] == 100 and not row["shared_steps"]
    assert row["mean_coordination"] == summary["mean_coordination"].item()
    assert row["mean_coordination_p"] == 1 / 301


def test_constant_and_missing_inputs_give_nan_not_errors() -> None:
    steps = np.arange(50, dtype=np.int64)
    flat = [Series(f"l{i}", "pr", steps, np.ones(50)) for i in range(3)]
    row = coordination_null(flat, n_shuffles=20).iloc[0]
    assert np.isnan(row["mean_coordination"]) and np.isnan(row["mean_coordination_p"])
    assert row["max_coordination"] == 0.0 and row["max_coordination_p"] == 1.0
    assert np.isnan(row["loss_correlation_null"])  # no loss
    empty = coordination_null([], n_shuffles=20)
    assert empty.empty and list(empty.columns) == BASELINE_COLUMNS


def test_deterministic_per_seed_and_per_metric() -> None:
    layers = _walks(4, 150, seed=1) + _walks(4, 150, seed=2, metric="rank")
    first = coordination_null(layers, n_shuffles=100, seed=5)
    pd.testing.assert_frame_equal(first, coordination_null(layers, n_shuffles=100, seed=5))
    other = coordination_null(layers, n_shuffles=100, seed=6)
    assert not np.array_equal(first["mean_coordination_null"], other["mean_coordination_null"])
    alone = coordination_null(layers[:4], n_shuffles=100, seed=5)
    pd.testing.assert_frame_equal(alone, first[first["metric"] == "pr"].reset_index(drop=True))


def test_bad_options_raise_clear_errors() -> None:
    layers = _walks(2, 20, seed=0)
    with pytest.raises(ConfigError, match=r"n_shuffles must be >= 1; got 0"):
        coordination_null(layers, n_shuffles=0)
    with pytest.raises(ConfigError, match=r"n_shuffles must be an int >= 1; got 2.5"):
        coordination_null(layers, n_shuffles=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"percentile must be in \[0, 100\); got 100"):
        coordination_null(layers, percentile=100)
    with pytest.raises(ConfigError, match=r"percentile must be in \[0, 100\); got -1"):
        coordination_null(layers, percentile=-1)
    with pytest.raises(ConfigError, match="coordination_threshold"):
        coordination_null(layers, coordination_threshold=1.5)
    with pytest.raises(ConfigError, match="loss must have columns step, value"):
        coordination_null(layers, loss=pd.DataFrame({"step": [0], "loss": [1.0]}))
    with pytest.raises(ConfigError, match="fraction must be in"):
        chance_coordination(0.0, 3)
    with pytest.warns(TraindynWarning, match="smallest possible p-value"):
        coordination_null(layers, n_shuffles=10)
