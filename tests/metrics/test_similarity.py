"""Linear CKA against direct transcriptions of the papers' formulas, and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from traindyn.exceptions import MetricError
from traindyn.metrics import linear_cka


def hsic_biased(K: np.ndarray, L: np.ndarray) -> float:
    """Kornblith et al. 2019, eq. 3: tr(KHLH) / (n - 1)²."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H) / (n - 1) ** 2)


def hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. 2012, eq. 5, with K~ and L~ the kernels with zeroed diagonals."""
    n = K.shape[0]
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return float(
        (
            np.trace(Kt @ Lt)
            + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ Kt @ Lt @ one)
        )
        / (n * (n - 3))
    )


def cka_reference(X: np.ndarray, Y: np.ndarray, hsic) -> float:
    K, L = X @ X.T, Y @ Y.T  # linear kernels on the raw (uncentred) features
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


SHAPES = [(50, 6, 9), (12, 40, 30), (30, 30, 2)]  # feature path, sample path, mixed


@pytest.mark.parametrize(("n", "dx", "dy"), SHAPES)
def test_biased_matches_transcription(n, dx, dy, rng):
    X = rng.standard_normal((n, dx)) + 2.0
    Y = np.tanh(X @ rng.standard_normal((dx, dy))) + 0.5 * rng.standard_normal((n, dy))
    assert linear_cka(X, Y) == pytest.approx(cka_reference(X, Y, hsic_biased), rel=1e-10)


@pytest.mark.parametrize(("n", "dx", "dy"), SHAPES)
def test_debiased_matches_transcription(n, dx, dy, rng):
    X = rng.standard_normal((n, dx)) - 1.0
    Y = X @ rng.standard_normal((dx, dy)) + rng.standard_normal((n, dy))
    expected = cka_reference(X, Y, hsic_unbiased)
    assert linear_cka(X, Y, debiased=True) == pytest.approx(expected, rel=1e-9)


def test_debiasing_removes_the_high_dimension_bias(rng):
    X, Y = rng.standard_normal((50, 500)), rng.standard_normal((50, 500))  # independent
    assert linear_cka(X, Y) > 0.85  # biased CKA of unrelated wide features is near 1
    assert abs(linear_cka(X, Y, debiased=True)) < 0.1  # sd over seeds is 0.02 at n = 50


def test_invariances(rng):
    X = rng.standard_normal((40, 8))
    Y = X @ rng.standard_normal((8, 5)) + 0.3 * rng.standard_normal((40, 5))
    ref = linear_cka(X, Y)
    Q = ortho_group.rvs(8, random_state=1)
    assert linear_cka(X @ Q, Y) == pytest.approx(ref, rel=1e-12)
    assert linear_cka(X * 1e-30, Y * 1e30) == pytest.approx(ref, rel=1e-12)
    assert linear_cka(X + 100.0, Y) == pytest.approx(ref, rel=1e-10)
    assert linear_cka(Y, X) == pytest.approx(ref, rel=1e-12)
    perm = rng.permutation(40)
    assert linear_cka(X[perm], Y[perm]) == pytest.approx(ref, rel=1e-12)
    assert linear_cka(X, X) == pytest.approx(1.0, rel=1e-14)
    assert linear_cka(X, X, debiased=True) == pytest.approx(1.0, rel=1e-14)
    # ... but not invariant to anisotropic scaling.
    assert linear_cka(X, X * np.arange(1, 9)) < 0.9


def test_orthogonal_signals_give_zero():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    assert linear_cka(X[:, :1], X[:, 1:]) == 0.0


def test_torch_and_mixed_inputs(rng):
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 7))
    ref = linear_cka(X, Y)
    assert linear_cka(torch.from_numpy(X), torch.from_numpy(Y)) == pytest.approx(ref, rel=1e-12)
    assert linear_cka(torch.from_numpy(X).float(), Y) == pytest.approx(ref, rel=1e-5)


def test_errors(rng):
    X = rng.standard_normal((10, 3))
    with pytest.raises(MetricError, match=r"Y must have the same number of samples as X \(10\)"):
        linear_cka(X, X[:9])
    with pytest.raises(MetricError, match="X must have non-zero variance"):
        linear_cka(np.ones((10, 3)), X)
    with pytest.raises(MetricError, match="Y must have non-zero variance"):
        linear_cka(X, np.full((10, 2), 3.0))
    with pytest.raises(MetricError, match="at least 4 samples for debiased linear_cka"):
        linear_cka(X[:3], X[:3], debiased=True)
    with pytest.raises(MetricError, match="at least 2 samples"):
        linear_cka(X[:1], X[:1])
    with pytest.raises(MetricError, match="Y must be finite"):
        linear_cka(X, np.where(X > 1, np.nan, X))
