"""Series extraction, layer depth and the temporal distribution of change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.synthetic import planted_metrics, trajectory
from traindyn.analysis.trajectories import (
    Series,
    layer_depths,
    pool_temporal,
    series_of,
    temporal_distribution,
)
from traindyn.exceptions import ConfigError


def test_series_of_round_trips_a_long_table() -> None:
    table = planted_metrics(n_samples=30, layers=["b", "a"], metrics=["pr", "er"], seed=1)
    table = table.sample(frac=1.0, random_state=0)  # order must not matter
    series = series_of(table)
    assert [(s.metric, s.layer) for s in series] == [
        ("er", "b"), ("er", "a"), ("pr", "b"), ("pr", "a")
    ]  # fmt: skip
    for s in series:
        expected = table[(table.layer == s.layer) & (table.metric == s.metric)].sort_values("step")
        np.testing.assert_array_equal(s.steps, expected["step"])
        np.testing.assert_array_equal(s.values, expected["value"])


def test_series_of_drops_non_finite_and_keeps_the_last_duplicate() -> None:
    table = pd.DataFrame(
        {
            "step": [0, 5, 5, 10, 15],
            "layer": "fc",
            "metric": "pr",
            "value": [1.0, 2.0, 3.0, np.nan, np.inf],
        }
    )
    (s,) = series_of(table)
    assert s.steps.tolist() == [0, 5] and s.values.tolist() == [1.0, 3.0]
    assert series_of(table, metric="other") == []
    with pytest.raises(ConfigError, match=r"\['value'\] missing"):
        series_of(table.drop(columns="value"))


def test_layer_depths_prefer_the_recorded_order() -> None:
    table = pd.DataFrame({"layer": ["head", "l0", "extra", "l1"]})
    assert layer_depths(table, order=["l0", "l1", "head", "gone"]) == {
        "l0": 0,
        "l1": 1,
        "head": 2,
        "extra": 3,
    }


def test_temporal_distribution_planted_shares() -> None:
    # 300 samples over 3000 steps: a jump of 6 at 5%, of 3 at 30%, of 1 at 90%.
    values = trajectory(300, jumps={15: 6.0, 90: 3.0, 270: 1.0})
    s = Series("fc", "pr", np.arange(300) * 10, values)
    table = temporal_distribution([s], total_steps=3000)
    assert table["share"].tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert table["start"].tolist() == [0.0, 300.0, 1500.0]
    custom = temporal_distribution([s], total_steps=3000, boundaries=[0.2], names=["first", "rest"])
    assert custom["share"].tolist() == pytest.approx([0.6, 0.4])


def test_pooled_shares_weight_by_change() -> None:
    steps = np.arange(100)
    a = Series("a", "pr", steps, trajectory(100, jumps={5: 3.0}))  # early
    b = Series("b", "pr", steps, trajectory(100, jumps={80: 1.0}))  # late
    rows = temporal_distribution([a, b], total_steps=100)
    pooled = pool_temporal(rows)
    assert pooled["window"].tolist() == ["early", "mid", "late"]
    assert pooled["share"].tolist() == pytest.approx([0.75, 0.0, 0.25])
    per_layer = pool_temporal(rows, by=("layer",))
    assert per_layer.loc[per_layer.layer == "b", "share"].tolist() == [0.0, 0.0, 1.0]


def test_constant_series_has_nan_share_and_bad_boundaries_are_named() -> None:
    s = Series("fc", "pr", np.arange(10), np.ones(10))
    assert temporal_distribution([s], total_steps=10)["share"].isna().all()
    with pytest.raises(ConfigError, match="boundaries must be increasing"):
        temporal_distribution([s], total_steps=10, boundaries=(0.5, 0.1))
    with pytest.raises(ConfigError, match="one more entry"):
        temporal_distribution([s], total_steps=10, names=("a", "b"))
