"""Spectral metrics against closed forms, a direct SVD, and their invariances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from traindyn.exceptions import ConfigError, MetricError
from traindyn.metrics import (
    SPECTRAL_METRICS,
    effective_rank,
    energy_rank,
    nuclear_norm_ratio,
    participation_ratio,
    spectral_metrics,
    spectrum,
    stable_rank,
)

SINGLE: dict[str, Callable[[Any], float]] = {
    "participation_ratio": participation_ratio,
    "effective_rank": effective_rank,
    "stable_rank": stable_rank,
    "energy_rank": energy_rank,
    "nuclear_norm_ratio": nuclear_norm_ratio,
}


def closed_form(s: np.ndarray, q: float = 0.9) -> dict[str, float]:
    """The five metrics from singular values s of the centred matrix, by definition."""
    lam = s**2
    p = s / s.sum()
    cum = np.cumsum(np.sort(lam)[::-1])
    return {
        "participation_ratio": lam.sum() ** 2 / (lam**2).sum(),
        "effective_rank": float(np.exp(-(p * np.log(p)).sum())),
        "stable_rank": lam.sum() / lam.max(),
        "energy_rank": float(np.argmax(cum >= q * lam.sum() * (1 - 1e-12)) + 1),
        "nuclear_norm_ratio": s.sum() / s.max(),
    }


SPECTRA = {
    "flat": np.ones(6),
    "power_law": np.arange(1, 11, dtype=float) ** -1.0,
    "one_dominant": np.array([10.0, 0.1, 0.1, 0.05]),
    "steep": np.logspace(0, -3, 8),
}


@pytest.mark.parametrize("shape", [(200, 50), (50, 200), (40, 40)], ids=["cov", "gram", "square"])
@pytest.mark.parametrize("name", list(SPECTRA))
def test_prescribed_spectrum_is_exact(name, shape, with_singular_values, rng):
    n, d = shape
    s = SPECTRA[name]
    X = with_singular_values(n, d, s, rng) + rng.standard_normal(d)  # offset: centring
    lam = spectrum(X)
    assert lam.shape == (min(n, d),)
    np.testing.assert_allclose(lam[: len(s)], np.sort(s)[::-1] ** 2 / (n - 1), rtol=1e-10)
    np.testing.assert_array_equal(lam[len(s) :], 0.0)  # rounding noise clipped
    expected = closed_form(s)
    got = spectral_metrics(X)
    assert list(got) == list(SPECTRAL_METRICS)
    for key in SPECTRAL_METRICS:
        assert got[key] == pytest.approx(expected[key], rel=1e-10), key
        assert SINGLE[key](X) == pytest.approx(got[key], rel=1e-12), key


def test_isotropic_gaussian_in_k_of_D_dims(rng):
    n, k, D = 20_000, 5, 40
    Q, _ = np.linalg.qr(rng.standard_normal((D, k)))
    X = rng.standard_normal((n, k)) @ Q.T
    m = spectral_metrics(X)
    # Sample-covariance eigenvalues of N(0, I_k) spread by O(sqrt(k/n)) = 1.6%.
    assert m["participation_ratio"] == pytest.approx(k, rel=0.01)
    assert m["effective_rank"] == pytest.approx(k, rel=0.01)
    assert m["nuclear_norm_ratio"] == pytest.approx(k, rel=0.02)
    # λ_max sits near the Marchenko-Pastur edge (1 + sqrt(k/n))², so SR = k / 1.03.
    assert m["stable_rank"] == pytest.approx(k / (1 + np.sqrt(k / n)) ** 2, rel=0.02)
    assert m["energy_rank"] == k  # 4 of 5 equal directions hold only 80%
    assert np.count_nonzero(spectrum(X)) == k


@pytest.mark.parametrize(
    ("q", "k"), [(0.5, 1.0), (0.8, 2.0), (0.85, 3.0), (0.9, 3.0), (0.95, 4.0), (1.0, 4.0)]
)
def test_energy_rank_known_spectrum_and_exact_ties(q, k, with_singular_values, rng):
    # λ ∝ (5, 3, 1, 1): partial sums 50%, 80%, 90%, 100%; ties resolve to the smaller k.
    X = with_singular_values(30, 8, np.sqrt([5.0, 3.0, 1.0, 1.0]), rng)
    assert energy_rank(X, q=q) == k


@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (25, 25), (100, 10), (10, 100)])
def test_spectrum_matches_numpy_svd(shape, rng):
    X = rng.standard_normal(shape) * rng.uniform(0.1, 10, shape[1]) + 5.0
    n, d = shape
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    expected = np.zeros(min(n, d))
    expected[: len(s)] = s**2 / (n - 1)
    got = spectrum(X)
    big = expected > 1e-12 * expected[0]
    np.testing.assert_allclose(got[big], expected[big], rtol=1e-10)
    np.testing.assert_allclose(got[~big], 0.0, atol=1e-12 * expected[0])
    sv = s[s > 1e-7 * s[0]]
    expected_metrics = closed_form(sv)
    for key, value in spectral_metrics(X).items():
        assert value == pytest.approx(expected_metrics[key], rel=1e-9), key


def test_gram_and_covariance_paths_agree(rng):
    X = rng.standard_normal((40, 30)) @ rng.standard_normal((30, 30))
    wide = np.hstack([X, np.zeros((40, 25))])  # 40 × 55: Gram path, same spectrum
    a, b = spectral_metrics(X), spectral_metrics(wide)
    for key in SPECTRAL_METRICS:
        assert a[key] == pytest.approx(b[key], rel=1e-10), key
    np.testing.assert_allclose(spectrum(wide)[:30], spectrum(X), rtol=1e-10)


def test_torch_matches_numpy(rng):
    X = rng.standard_normal((64, 20))
    a = spectral_metrics(X)
    b = spectral_metrics(torch.from_numpy(X))
    c = spectral_metrics(torch.from_numpy(X).float().requires_grad_())
    d = spectral_metrics(torch.from_numpy(X).to(torch.bfloat16))
    for key in SPECTRAL_METRICS:
        assert a[key] == pytest.approx(b[key], rel=1e-12)
        assert a[key] == pytest.approx(c[key], rel=1e-5)
        assert a[key] == pytest.approx(d[key], rel=0.05)  # bfloat16 keeps 8 bits
    np.testing.assert_allclose(spectrum(torch.from_numpy(X)), spectrum(X), rtol=1e-12)
    assert isinstance(spectrum(torch.from_numpy(X)), np.ndarray)


@pytest.mark.parametrize("scale", [1e-30, 1e-8, 1e8, 1e30])
def test_scale_invariance(scale, rng):
    X = rng.standard_normal((50, 12)) @ rng.standard_normal((12, 12))
    a, b = spectral_metrics(X), spectral_metrics(X * scale)
    for key in SPECTRAL_METRICS:
        assert b[key] == pytest.approx(a[key], rel=1e-12), key
    np.testing.assert_allclose(spectrum(X * scale), spectrum(X) * scale**2, rtol=1e-10)
    assert spectral_metrics(X * 2.0**90) == spectral_metrics(X)  # exact for powers of two


def test_float32_agrees_with_float64(with_singular_values, rng):
    X = with_singular_values(500, 80, np.logspace(0, -2, 12), rng) + 3.0
    a, b = spectral_metrics(X), spectral_metrics(X.astype(np.float32))
    for key in SPECTRAL_METRICS:
        assert b[key] == pytest.approx(a[key], rel=1e-5), key


def test_float32_floor_keeps_weak_features_beside_a_huge_one(rng):
    # A 1e4-magnitude feature's float32 rounding (~1e-3 per entry) must not clear
    # features of std 0.01 that live in other directions.
    X = np.hstack(
        [0.01 * rng.standard_normal((500, 20)), 1e4 + 1e3 * rng.standard_normal((500, 1))]
    )
    X32 = X.astype(np.float32)
    s = np.linalg.svd(X32 - X32.astype(np.float64).mean(axis=0), compute_uv=False)
    assert np.count_nonzero(spectrum(X32)) == 21
    assert effective_rank(X32) == pytest.approx(closed_form(s)["effective_rank"], rel=1e-9)


@pytest.mark.parametrize(
    "X",
    [
        np.zeros((10, 4)),
        np.full((10, 4), 7.3),
        np.tile(np.array([1e-3, -4.0, 1e6, 0.0]), (25, 1)),
        np.full((3, 100), -2.5e30),
    ],
    ids=["zeros", "constant", "constant_rows", "huge_constant"],
)
def test_zero_variance_is_exactly_zero(X):
    assert spectral_metrics(X) == dict.fromkeys(SPECTRAL_METRICS, 0.0)
    np.testing.assert_array_equal(spectrum(X), 0.0)


def test_float32_rounding_jitter_counts_as_collapse(rng):
    # A collapsed float32 layer whose rows differ by a few ulps is collapsed, not
    # isotropic noise with a high participation ratio.
    row = rng.standard_normal(16).astype(np.float32) * 100
    ulps = rng.integers(-3, 4, size=(200, 16)).astype(np.float32)
    X = row + ulps * np.spacing(row)
    assert np.ptp(X, axis=0).max() > 0
    assert spectral_metrics(X) == dict.fromkeys(SPECTRAL_METRICS, 0.0)


def test_large_offset_and_dead_features_do_not_hide_signal(rng):
    signal = rng.standard_normal((100, 3))
    dead = np.full((100, 2), [1e6, -3.0])
    X = np.hstack([signal + 1e4, dead])
    a, b = spectral_metrics(signal), spectral_metrics(X)
    for key in SPECTRAL_METRICS:
        assert b[key] == pytest.approx(a[key], rel=1e-8), key


def test_duplicating_every_row_changes_nothing(rng):
    X = rng.standard_normal((30, 6))
    a, b = spectral_metrics(X), spectral_metrics(np.vstack([X, X]))
    for key in SPECTRAL_METRICS:
        assert b[key] == pytest.approx(a[key], rel=1e-10), key


def test_row_permutation_invariance(rng):
    X = rng.standard_normal((60, 9)) + 2.0
    perm = rng.permutation(60)
    a, b = spectral_metrics(X), spectral_metrics(X[perm])
    for key in SPECTRAL_METRICS:
        assert b[key] == pytest.approx(a[key], rel=1e-10), key


def test_metric_bounds(rng):
    X = rng.standard_normal((20, 7)) ** 3
    for key, value in spectral_metrics(X).items():
        assert 1.0 - 1e-12 <= value <= 7 + 1e-12, key


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.ones((1, 5)), "at least 2 samples"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "finite"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "finite"),
        (np.arange(5.0), r"2-D .*reshape\(-1, 1\)"),
        (np.ones((4, 3, 2)), "reduce_activation"),
        (np.ones((0, 3)), "non-empty"),
    ],
)
def test_bad_input_raises_metric_error(X, match):
    for func in (spectrum, spectral_metrics, *SINGLE.values()):
        with pytest.raises(MetricError, match=match):
            func(X)
    with pytest.raises(ValueError, match=match):  # MetricError is a ValueError
        spectrum(X)


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5, float("nan"), True, "0.9"])
def test_bad_q_raises_config_error(q, rng):
    X = rng.standard_normal((5, 2))
    with pytest.raises(ConfigError, match=r"q must be a number in \(0, 1\]"):
        energy_rank(X, q=q)
    with pytest.raises(ConfigError, match="q must be"):
        spectral_metrics(X, q=q)
