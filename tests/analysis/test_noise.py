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
