"""Noise floors: robust trajectory noise, precision, quantum, probe half-sampling."""

from __future__ import annotations

import numpy as np
import pytest

from traindyn.analysis.noise import half_sample_noise, precision_floor, quantum, trajectory_noise
from traindyn.analysis.synthetic import trajectory
from traindyn.exceptions import ConfigError, MetricError
from traindyn.metrics import participation_ratio


@pytest.mark.parametrize("sd", [1e-6, 0.01, 3.0])
def test_trajectory_noise_recovers_white_noise_under_steps_and_drift(sd: float) -> None:
    values = trajectory(4000, slope=0.5, jumps={1000: 100 * sd, 3000: -50 * sd}, noise=sd, seed=2)
    assert trajectory_noise(values) == pytest.approx(sd, rel=0.06)


def test_trajectory_noise_edge_cases() -> None:
    assert trajectory_noise(np.array([1.0, 2.0, 0.5, 3.0])) == 0.0  # too short
    assert trajectory_noise(np.full(10, 3.0)) == 0.0
    assert trajectory_noise(np.r_[np.zeros(50), np.ones(50)]) == 0.0  # a step is no noise


def test_precision_and_quantum() -> None:
    assert precision_floor(1.0) == np.finfo(np.float32).eps
    assert quantum(np.array([1.0, 2.0])) == 1.0 and quantum(np.array([1.0, 2.5])) == 0.0


def test_half_sample_noise_matches_the_sampling_spread_of_a_mean() -> None:
    # For the mean of n iid N(0, 1) values the sampling sd is 1/sqrt(n).
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (400, 1))
    spread = half_sample_noise(X, lambda x: float(x.mean()), n_resamples=400, seed=1)
    assert spread == pytest.approx(1 / np.sqrt(400), rel=0.15)


def test_half_sample_noise_of_participation_ratio_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    cov = np.diag(np.linspace(1, 0.1, 10))
    small = rng.multivariate_normal(np.zeros(10), cov, 100)
    large = rng.multivariate_normal(np.zeros(10), cov, 1600)
    a = half_sample_noise(small, participation_ratio, n_resamples=30)
    b = half_sample_noise(large, participation_ratio, n_resamples=30)
    assert b < a / 2  # ~ 1/sqrt(n): 4x fewer sd for 16x more rows


def test_half_sample_noise_validates() -> None:
    with pytest.raises(MetricError, match="at least 4 samples"):
        half_sample_noise(np.ones((3, 2)), participation_ratio)
    with pytest.raises(ConfigError, match="n_resamples must be >= 2"):
        half_sample_noise(np.ones((8, 2)), participation_ratio, n_resamples=1)


def test_half_sample_spread_equals_half_sample_noise_per_metric() -> None:
    # Same halves (same seed), one decomposition per half: each metric's spread is the one
    # half_sample_noise finds with that metric alone.
    from traindyn.analysis.noise import half_sample_spread
    from traindyn.metrics import DEFAULT_METRICS, get_metric

    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (60, 12)) * np.linspace(2, 0.2, 12)
    spread = half_sample_spread(X, n_resamples=12, seed=5)
    assert list(spread) == list(DEFAULT_METRICS)
    for name in DEFAULT_METRICS:
        alone = half_sample_noise(X, get_metric(name).function, n_resamples=12, seed=5)
        assert spread[name] == pytest.approx(alone, rel=1e-9, abs=1e-12), name
    assert spread["participation_ratio"] > 0.05  # a real spread, not a degenerate 0
    assert np.isfinite(spread["energy_rank"])  # integer-valued, still a spread


def test_half_sample_spread_measures_each_half_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import traindyn.analysis.noise as noise

    calls: list[int] = []
    real = noise.measure

    def counting(X, names):  # type: ignore[no-untyped-def]
        calls.append(len(X))
        return real(X, names)

    monkeypatch.setattr(noise, "measure", counting)
    noise.half_sample_spread(np.random.default_rng(0).normal(size=(21, 5)), n_resamples=7)
    assert calls == [10] * 7


def test_half_sample_spread_is_nan_for_a_metric_that_fails_on_halves() -> None:
    from traindyn.analysis.noise import half_sample_spread

    X = np.random.default_rng(1).normal(size=(30, 6))
    # Halves of 15 rows: mle_dimension (k = 20) needs 21 samples; the others are unaffected.
    spread = half_sample_spread(X, ["mle_dimension", "stable_rank"], n_resamples=5)
    assert np.isnan(spread["mle_dimension"])
    assert 0 < spread["stable_rank"] < 1


def test_half_sample_spread_validates() -> None:
    from traindyn.analysis.noise import half_sample_spread

    with pytest.raises(MetricError, match="at least 4 samples"):
        half_sample_spread(np.ones((3, 2)))
    with pytest.raises(ConfigError, match="integer >= 2 to estimate a spread; got 1"):
        half_sample_spread(np.ones((8, 2)), n_resamples=1)
    with pytest.raises(ConfigError, match="participation_ratio"):
        half_sample_spread(np.ones((8, 2)), ["participation_rate"])
    with pytest.raises(ConfigError, match="at least one"):
        half_sample_spread(np.ones((8, 2)), [])
    with pytest.raises(MetricError, match="finite"):
        half_sample_spread(np.full((8, 2), np.nan))
