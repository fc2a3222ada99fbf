"""Chance bands and the "different from chance" column, against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.chance import (
    BAND_COLUMNS,
    CHANCE_COLUMNS,
    chance_bands,
    different_from_chance,
    gaussian_surrogate,
    shuffled_bands,
    shuffled_controls,
)
from traindyn.analysis.noise import trajectory_noise
from traindyn.exceptions import ConfigError, MetricError
from traindyn.store import Run


def band(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "control": "gaussian",
        "step": 0,
        "layer": "fc",
        "metric": "m",
        "mean": 10.0,
        "sd": 1.0,
        "lo": 9.0,
        "hi": 11.0,
        "n": 5,
    }
    return {**row, **overrides}


def observed(values: list[float], steps: list[int] | None = None) -> pd.DataFrame:
    steps = steps or [0] * len(values)
    return pd.DataFrame({"step": steps, "layer": "fc", "metric": "m", "value": values})


# --------------------------------------------------------------------- surrogate


@pytest.mark.parametrize(("n", "d"), [(60, 5), (10, 30)])
def test_exact_surrogate_has_the_mean_and_covariance_of_x(n: int, d: int) -> None:
    X = np.random.default_rng(0).normal(size=(n, d)) * np.linspace(2, 0.1, d) + 5.0
    for Y in gaussian_surrogate(X, n_draws=3, seed=4):
        assert Y.shape == (n, d)
        np.testing.assert_allclose(Y.mean(axis=0), X.mean(axis=0), atol=1e-10)
        np.testing.assert_allclose(np.cov(Y, rowvar=False), np.cov(X, rowvar=False), atol=1e-10)
        assert not np.allclose(Y, X)  # a different cloud


def test_expected_surrogate_has_the_covariance_on_average_also_when_d_exceeds_n() -> None:
    X = np.random.default_rng(1).normal(size=(10, 30))
    draws = gaussian_surrogate(X, n_draws=2000, seed=0, covariance="expected")
    mean_cov = np.mean([np.cov(Y, rowvar=False) for Y in draws], axis=0)
    target = np.cov(X, rowvar=False)
    assert np.abs(mean_cov - target).max() < 0.1 * np.abs(target).max()
    assert np.linalg.matrix_rank(draws[0]) <= 10  # the cloud lies in X's span


def test_draws_are_reproducible_and_independent_of_n_draws() -> None:
    X = np.random.default_rng(2).normal(size=(20, 4))
    one = gaussian_surrogate(X, n_draws=1, seed=9)
    three = gaussian_surrogate(X, n_draws=3, seed=9)
    np.testing.assert_array_equal(one[0], three[0])
    assert not np.array_equal(three[0], three[1])


def test_surrogate_rejects_bad_input() -> None:
    with pytest.raises(MetricError, match="at least 2 samples"):
        gaussian_surrogate(np.ones((1, 3)))
    with pytest.raises(MetricError, match="finite"):
        gaussian_surrogate(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ConfigError, match="n_draws must be an integer >= 1"):
        gaussian_surrogate(np.eye(3), n_draws=0)
    with pytest.raises(ConfigError, match="covariance must be one of"):
        gaussian_surrogate(np.eye(3), covariance="full")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- bands


def test_chance_bands_summarise_the_finite_draws() -> None:
    controls = pd.DataFrame(
        {
            "step": [-1, -1, -1, -1, 3, 3],
            "layer": "fc",
            "control": ["random_init"] * 4 + ["gaussian"] * 2,
            "draw": [0, 1, 2, 3, 0, 1],
            "metric": "m",
            "value": [1.0, 2.0, 6.0, math.nan, math.nan, math.nan],
            "reason": [None, None, None, "MetricError: x", "e", "e"],
        }
    )
    bands = chance_bands(controls)
    assert tuple(bands.columns) == BAND_COLUMNS
    init = bands[bands["control"] == "random_init"].iloc[0]
    assert (init["step"], init["mean"], init["lo"], init["hi"], init["n"]) == (-1, 3.0, 1.0, 6.0, 3)
    assert init["sd"] == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))
    gauss = bands[bands["control"] == "gaussian"].iloc[0]
    assert gauss["n"] == 0 and math.isnan(gauss["mean"]) and math.isnan(gauss["sd"])


def test_shuffled_bands_across_seeds_and_from_one_trajectory() -> None:
    steps = list(range(0, 100, 10))
    rng = np.random.default_rng(0)
    runs = [
        pd.DataFrame({"step": steps, "layer": "fc", "metric": "m", "value": rng.normal(size=10)})
        for _ in range(3)
    ]
    bands = shuffled_bands(runs)
    assert set(bands["control"]) == {"shuffled_labels"} and (bands["n"] == 3).all()
    at_20 = bands[bands["step"] == 20].iloc[0]
    values = [r.loc[r["step"] == 20, "value"].item() for r in runs]
    assert at_20["mean"] == pytest.approx(np.mean(values))
    assert at_20["sd"] == pytest.approx(np.std(values, ddof=1))
    assert (at_20["lo"], at_20["hi"]) == (min(values), max(values))

    single = shuffled_bands(runs[0])
    assert (single["n"] == 1).all()
    assert (single["mean"] == runs[0]["value"].to_numpy()).all()
    assert single["sd"].unique().tolist() == [trajectory_noise(runs[0]["value"].to_numpy())]


def test_shuffled_bands_reject_per_class_tables_and_nothing() -> None:
    table = pd.concat([observed([1.0]), observed([2.0])])
    with pytest.raises(ConfigError, match=r"one row per \(step, layer, metric\)"):
        shuffled_bands(table)
    with pytest.raises(ConfigError, match="at least one control run"):
        shuffled_bands([])


# -------------------------------------------------------------------- decisions


def test_the_rule_needs_both_outside_the_envelope_and_a_large_z() -> None:
    bands = pd.DataFrame(
        [
            band(),  # tight envelope
            band(metric="wide", lo=0.0, hi=20.0),  # a draw reached 20
        ]
    )
    m = pd.concat(
        [
            observed([14.0]),
            observed([14.0]).assign(metric="wide"),
        ]
    )
    t = different_from_chance(m, bands)
    assert tuple(t.columns) == CHANCE_COLUMNS
    by = t.set_index("metric")
    assert by.loc["m", "z"] == 4.0 and by.loc["m", "different"]
    assert by.loc["wide", "z"] == 4.0 and not by.loc["wide", "different"]  # inside [lo, hi]
    outside_but_close = different_from_chance(observed([11.5]), pd.DataFrame([band()]))
    assert outside_but_close["z"].item() == 1.5 and not outside_but_close["different"].item()
    assert t["reason"].isna().all()


def test_zero_sd_and_single_value_bands() -> None:
    bands = pd.DataFrame([band(step=-1, sd=0.0, lo=10.0, hi=10.0)])
    t = different_from_chance(observed([10.0, 11.0, 10.00001], steps=[0, 1, 2]), bands)
    assert t["z"].tolist()[0] == 0.0 and not t["different"].iloc[0]
    assert t["different"].iloc[1] and t["z"].iloc[1] > 1e3  # every draw was 10
    assert not t["different"].iloc[2]  # within rtol of the band
    one = pd.DataFrame([band(sd=math.nan, lo=10.0, hi=10.0, n=1)])
    t1 = different_from_chance(observed([50.0]), one)
    assert not t1["different"].item() and math.isnan(t1["z"].item())
    assert "1 control value" in t1["reason"].item()
    with_noise = pd.DataFrame([band(sd=2.0, lo=10.0, hi=10.0, n=1)])
    assert different_from_chance(observed([17.0]), with_noise)["different"].item()


def test_all_step_bands_broadcast_and_missing_bands_are_explained() -> None:
    bands = pd.DataFrame([band(control="random_init", step=-1), band(control="gaussian", step=10)])
    t = different_from_chance(observed([20.0, math.nan], steps=[10, 20]), bands)
    assert len(t) == 4
    init = t[t["control"] == "random_init"]
    assert init["mean"].tolist() == [10.0, 10.0] and init["different"].tolist() == [True, False]
    assert init["reason"].tolist()[1] == "observed value is NaN"
    gauss = t[t["control"] == "gaussian"].set_index("step")
    assert gauss.loc[10, "different"] and gauss.loc[20, "reason"] == "no band at this step"
    assert gauss.loc[20, "n"] == 0
    # a (layer, metric) no control measured gets no row
    other = observed([1.0]).assign(metric="other")
    assert different_from_chance(other, bands).empty


def test_different_from_chance_rejects_bad_tables() -> None:
    bands = pd.DataFrame([band()])
    with pytest.raises(ConfigError, match=r"metrics must have columns .* missing \['value'\]"):
        different_from_chance(observed([1.0]).drop(columns="value"), bands)
    with pytest.raises(ConfigError, match="one band per"):
        different_from_chance(observed([1.0]), pd.concat([bands, bands]))
    with pytest.raises(ConfigError, match="z_threshold must be a positive number"):
        different_from_chance(observed([1.0]), bands, z_threshold=0)


# ---------------------------------------------------------------------- pairing


def make_run(root: Path, name: str, **experiment: object) -> Run:
    spec = {"arch": "mlp_medium", "dataset": "digits", "seed": 0, "shuffle_labels": False}
    run = Run.create(
        root / name,
        config={"experiment": {**spec, **experiment, "name": name}},
        handle_signals=False,
    )
    run.finish()
    return run


def test_shuffled_controls_pair_runs_by_their_recorded_experiment(tmp_path: Path) -> None:
    real = make_run(tmp_path, "real", seed=0)
    make_run(tmp_path, "twin_s1", seed=1, shuffle_labels=True)
    make_run(tmp_path, "twin_s0", seed=0, shuffle_labels=True)
    make_run(tmp_path, "other_lr", shuffle_labels=True, train={"lr": 0.1})
    make_run(tmp_path, "real_s1", seed=1)
    twins = shuffled_controls(real, tmp_path)
    assert [t.path.name for t in twins] == ["twin_s0", "twin_s1"]
    assert shuffled_controls(tmp_path / "twin_s0", tmp_path) == []  # a control has none
    grok = make_run(tmp_path, "grok", dataset="grokking_addition")
    make_run(tmp_path, "grok_control", dataset="grokking_addition_shuffled")
    assert [t.path.name for t in shuffled_controls(grok, tmp_path)] == ["grok_control"]
    plain = Run.create(tmp_path / "plain", handle_signals=False)
    plain.finish()
    with pytest.raises(ConfigError, match="was not trained by a suite"):
        shuffled_controls(plain, tmp_path)
