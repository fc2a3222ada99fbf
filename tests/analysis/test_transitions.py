"""accuracy_jump / first_step_reaching on synthetic accuracy curves with known midpoints."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.transitions import (
    AccuracyJump,
    accuracy_jump,
    accuracy_jump_step,
    first_step_reaching,
)
from traindyn.exceptions import ConfigError


def _sigmoid_table(
    midpoint: float,
    *,
    every: int = 25,
    steps: int = 3000,
    low: float = 0.02,
    high: float = 1.0,
    width: float = 60.0,
    noise: float = 0.0,
    seed: int = 0,
    name: str = "probe_accuracy",
) -> pd.DataFrame:
    grid = np.arange(0, steps + 1, every)
    value = low + (high - low) / (1 + np.exp(-(grid - midpoint) / width))
    value = value + np.random.default_rng(seed).normal(0, noise, len(grid))
    return pd.DataFrame({"step": grid, "name": name, "value": np.clip(value, 0, 1)})


@pytest.mark.parametrize("midpoint", [613.0, 1000.0 + 1 / 3, 1733.0, 2291.0])
@pytest.mark.parametrize("every", [10, 25, 50])
def test_jump_is_the_first_sample_past_a_sigmoid_midpoint(midpoint: float, every: int) -> None:
    jump = accuracy_jump(_sigmoid_table(midpoint, every=every))
    assert isinstance(jump, AccuracyJump)
    # the first sample at or after the midpoint, give or take the asymmetric tails
    assert midpoint <= jump.step + 1 and jump.step < midpoint + every
    assert jump.interpolated_step == pytest.approx(midpoint, abs=0.05 * every + 1)
    assert abs(jump.steepest_step - midpoint) <= every
    assert jump.early_level == pytest.approx(0.02, abs=2e-3)
    assert jump.final_level == pytest.approx(1.0, abs=2e-3)
    assert jump.threshold == pytest.approx(0.51, abs=2e-3)
    assert jump.rise == pytest.approx(0.98, abs=4e-3)
    assert "halfway" in jump.definition
    assert accuracy_jump_step(_sigmoid_table(midpoint, every=every)) == jump.step


def test_noisy_sigmoid_jump_stays_near_the_midpoint() -> None:
    for seed in range(5):
        jump = accuracy_jump(_sigmoid_table(1500.0, every=20, noise=0.03, width=40, seed=seed))
        assert abs(jump.step - 1500) <= 60
        assert abs(jump.steepest_step - 1500) <= 100


def test_partial_rise_uses_its_own_levels() -> None:
    # from 0.1 to 0.6: the threshold is 0.35, not 0.5
    jump = accuracy_jump(_sigmoid_table(807.0, low=0.1, high=0.6, every=20))
    assert jump.threshold == pytest.approx(0.35, abs=1e-3)
    assert jump.step == 820 and jump.interpolated_step == pytest.approx(807, abs=1)


def test_unsorted_and_other_scalars_are_handled() -> None:
    table = pd.concat(
        [
            _sigmoid_table(910.0).sample(frac=1.0, random_state=0),
            _sigmoid_table(310.0, name="batch_accuracy"),
        ]
    )
    assert accuracy_jump_step(table) == 925
    assert accuracy_jump_step(table, name="batch_accuracy") == 325


def test_nan_samples_are_dropped() -> None:
    table = _sigmoid_table(1210.0)
    table.loc[table.step.isin([1225, 1250]), "value"] = np.nan
    jump = accuracy_jump(table)
    assert jump.step == 1275 and jump.n_samples == len(table) - 2


def test_flat_accuracy_never_jumps_and_says_what_to_do() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(0, 3001, 25)
    flat = pd.DataFrame(
        {"step": steps, "name": "probe_accuracy", "value": 0.02 + rng.uniform(0, 0.03, len(steps))}
    )
    with pytest.raises(ConfigError, match=r"never jumps.*train longer"):
        accuracy_jump(flat)
    # a falling curve does not jump either
    with pytest.raises(ConfigError, match="never jumps"):
        accuracy_jump(_sigmoid_table(1000.0, low=1.0, high=0.0))
    # a small rise counts only when asked
    small = _sigmoid_table(1010.0, low=0.1, high=0.25)
    with pytest.raises(ConfigError, match="min_rise"):
        accuracy_jump(small)
    assert accuracy_jump(small, min_rise=0.1).step == 1025


def test_missing_scalar_lists_the_recorded_ones() -> None:
    table = _sigmoid_table(1000.0, name="loss")
    with pytest.raises(ConfigError, match=r"'probe_accuracy' is not in this run.*\['loss'\]"):
        accuracy_jump(table)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"early_fraction": 0.0}, "early_fraction"),
        ({"late_fraction": 0.7}, "late_fraction"),
        ({"min_rise": 0.0}, "min_rise"),
    ],
)
def test_invalid_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        accuracy_jump(_sigmoid_table(1000.0), **kwargs)


def test_invalid_tables() -> None:
    with pytest.raises(ConfigError, match="columns"):
        accuracy_jump(pd.DataFrame({"step": [0], "value": [1.0]}))
    with pytest.raises(ConfigError, match="at least 3"):
        accuracy_jump(_sigmoid_table(1000.0).head(2))
    two_runs = pd.concat(
        [_sigmoid_table(510.0).assign(run="a"), _sigmoid_table(910.0).assign(run="b")]
    )
    with pytest.raises(ConfigError, match="2 runs"):
        accuracy_jump(two_runs)
    assert accuracy_jump(two_runs[two_runs.run == "a"]).step == 525


def test_first_step_reaching() -> None:
    table = _sigmoid_table(300.0, name="batch_accuracy", every=10)
    step = first_step_reaching(table, "batch_accuracy", 0.99)
    values = table.set_index("step")["value"]
    assert values[step] >= 0.99 and values[step - 10] < 0.99
    with pytest.raises(ConfigError, match=r"never reaches 1\.5; its maximum is 1"):
        first_step_reaching(table, "batch_accuracy", 1.5)
    with pytest.raises(ConfigError, match="not in this run"):
        first_step_reaching(table, "probe_accuracy", 0.5)


def test_after_skips_a_first_rise_at_memorisation() -> None:
    # chance, a first rise to 0.6 at step 200 (the commutative half of the test set),
    # then the late jump at 1510
    table = _sigmoid_table(1510.0, low=0.6, high=1.0, width=50)
    table.loc[table.step < 200, "value"] = 0.02
    assert accuracy_jump_step(table) == 200  # halfway from chance to 1 is crossed early
    jump = accuracy_jump(table, after=200)
    assert jump.step == 1525 and jump.early_level == pytest.approx(0.6, abs=1e-3)
    assert "steps >= 200" in jump.definition
    with pytest.raises(ConfigError, match="at steps >= 2990"):
        accuracy_jump(table, after=2990)
