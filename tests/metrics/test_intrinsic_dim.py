"""TwoNN and MLE against scikit-dimension, the true dimension, and closed forms.

Comparison conventions (checked in the skdim 0.5 source):
- ``skdim.id.TwoNN(discard_fraction=f)`` (default ``method='linear'``) fits the same
  line through the origin with F_emp = i/N over the kept ratios: identical estimator.
- ``skdim.id.MLE().fit(X, n_neighbors=k, comb='mle')`` computes (k-1)/Σ log(T_k/T_j)
  per point and combines with 1/mean(1/m_i) (MacKay-Ghahramani): identical estimator.
  Beware: ``MLE().fit_transform`` defaults to ``comb='mean'`` (plain average of the
  local estimates, biased upwards), which is NOT what mle_dimension computes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skdim
import torch

import traindyn.metrics.intrinsic_dim as intrinsic_dim
from traindyn.exceptions import ConfigError, MetricError
from traindyn.metrics import DuplicatePointsWarning, mle_dimension, twonn_dimension


def skdim_twonn(X: np.ndarray, discard_fraction: float = 0.1) -> float:
    return float(skdim.id.TwoNN(discard_fraction=discard_fraction).fit(X).dimension_)


def skdim_mle(X: np.ndarray, k: int = 20) -> float:
    return float(skdim.id.MLE().fit(X, n_neighbors=k, comb="mle").dimension_)


@pytest.fixture(scope="module")
def clouds() -> dict[str, tuple[np.ndarray, int]]:
    """Named point clouds with their true dimension."""
    rng = np.random.default_rng(7)

    def sphere(n: int, m: int, ambient: int) -> np.ndarray:
        Y = rng.standard_normal((n, m + 1))
        Y /= np.linalg.norm(Y, axis=1, keepdims=True)
        Q, _ = np.linalg.qr(rng.standard_normal((ambient, m + 1)))
        return Y @ Q.T

    def subspace(n: int, k: int, ambient: int) -> np.ndarray:
        Q, _ = np.linalg.qr(rng.standard_normal((ambient, k)))
        return rng.uniform(-1, 1, (n, k)) @ Q.T + rng.standard_normal(ambient)

    def gaussian(n: int, k: int, ambient: int) -> np.ndarray:
        # No boundary: a uniform 8-cube at n = 2000 reads as ~6.8 (edge effects).
        Q, _ = np.linalg.qr(rng.standard_normal((ambient, k)))
        return rng.standard_normal((n, k)) @ Q.T

    return {
        "S1_in_R3": (sphere(1000, 1, 3), 1),
        "S2_in_R10": (sphere(1500, 2, 10), 2),
        "S5_in_R12": (sphere(2000, 5, 12), 5),
        "plane3_in_R20": (subspace(1500, 3, 20), 3),
        "gauss6_in_R24": (gaussian(2000, 6, 24), 6),
    }


CLOUDS = ["S1_in_R3", "S2_in_R10", "S5_in_R12", "plane3_in_R20", "gauss6_in_R24"]


@pytest.mark.parametrize("name", CLOUDS)
def test_twonn_equals_skdim_and_is_close_to_truth(name, clouds):
    X, true = clouds[name]
    ours = twonn_dimension(X)
    assert ours == pytest.approx(skdim_twonn(X), rel=1e-9)
    assert ours == pytest.approx(true, rel=0.12)


@pytest.mark.parametrize("name", CLOUDS)
def test_mle_equals_skdim_and_is_close_to_truth(name, clouds):
    X, true = clouds[name]
    ours = mle_dimension(X)
    assert ours == pytest.approx(skdim_mle(X), rel=1e-9)
    # Levina-Bickel at k=20 underestimates curved or bounded sets by up to ~15%.
    assert ours == pytest.approx(true, rel=0.15)


def test_skdim_fit_transform_default_is_the_biased_mean(clouds):
    X, _ = clouds["S5_in_R12"]
    biased = float(skdim.id.MLE().fit_transform(X, n_neighbors=20))
    assert biased > mle_dimension(X) * 1.01  # documents why the comparison uses comb='mle'


@pytest.mark.parametrize("discard_fraction", [0.0, 0.05, 0.3])
def test_twonn_discard_fraction(discard_fraction, clouds):
    X = clouds["S2_in_R10"][0][:400]
    ours = twonn_dimension(X, discard_fraction=discard_fraction)
    if discard_fraction > 0:
        assert ours == pytest.approx(skdim_twonn(X, discard_fraction), rel=1e-9)
    # By hand: the largest ratio (F = 1) is always dropped.
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(D, np.inf)
    r = np.sort(D, axis=1)[:, :2]
    mu = np.sort(r[:, 1] / r[:, 0])
    N = len(mu)
    keep = min(int(N * (1 - discard_fraction)), N - 1)
    x, y = np.log(mu[:keep]), -np.log(1 - np.arange(1, keep + 1) / N)
    assert ours == pytest.approx((x @ y) / (x @ x), rel=1e-10)


def test_mle_by_hand_on_small_cloud(rng):
    X = rng.standard_normal((40, 3))
    k = 5
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(D, np.inf)
    T = np.sort(D, axis=1)[:, :k]
    inv_local = np.log(T[:, -1:] / T[:, :-1]).sum(axis=1) / (k - 1)
    assert mle_dimension(X, k=k) == pytest.approx(1 / inv_local.mean(), rel=1e-12)


def test_duplicates_are_dropped_with_one_warning(clouds):
    X, _ = clouds["S2_in_R10"]
    X = X[:300]
    dup = np.vstack([X, X[:15], X[:3]])
    for func in (twonn_dimension, mle_dimension):
        with pytest.warns(DuplicatePointsWarning, match="Dropped 18 duplicate row") as rec:
            value = func(dup)
        assert len(rec) == 1
        assert value == pytest.approx(func(X), rel=1e-10)
    assert issubclass(DuplicatePointsWarning, UserWarning)


def test_skdim_mle_silently_returns_zero_with_duplicates(clouds):
    # The failure mode mle_dimension guards against (documented in the brief).
    X, _ = clouds["S2_in_R10"]
    dup = np.vstack([X[:300], X[:15]])
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        assert skdim_mle(dup) == 0.0


@pytest.mark.parametrize(
    ("func", "X", "match"),
    [
        (twonn_dimension, np.ones((50, 3)), "at least 3 unique samples .* got 1 unique out of 50"),
        (twonn_dimension, np.repeat([[0.0], [1.0]], 10, axis=0), "got 2 unique out of 20"),
        (mle_dimension, np.repeat(np.eye(3), 10, axis=0), "at least 21 unique samples"),
        (twonn_dimension, np.ones((2, 3)), "at least 3 samples"),
        (mle_dimension, np.ones((20, 3)), "at least 21 samples for mle_dimension with k=20"),
        (twonn_dimension, np.array([[0.0], [np.nan], [1.0]]), "finite"),
        (mle_dimension, np.arange(30.0), "2-D"),
    ],
)
def test_too_few_unique_points_raise_without_warning(func, X, match):
    with pytest.raises(MetricError, match=match):  # a warning would fail: filterwarnings=error
        func(X)


def test_degenerate_neighbourhoods_raise():
    line = np.arange(50.0)[:, None]  # interior points: r1 == r2
    with pytest.raises(MetricError, match="r2 == r1"):
        twonn_dimension(line)
    simplex = np.eye(22)  # every point has 21 equidistant neighbours
    with pytest.raises(MetricError, match="equidistant"):
        mle_dimension(simplex)


def test_k_equal_two_is_the_inverse_mean_log_ratio():
    X = np.array([[0.0], [1.0], [3.0]])
    assert mle_dimension(X, k=2) == pytest.approx(3 / np.log(9), rel=1e-14)


@pytest.mark.parametrize("k", [1, 0, 2.5, True, "20"])
def test_bad_k(k):
    with pytest.raises(ConfigError, match="k must be an integer >= 2"):
        mle_dimension(np.ones((30, 2)), k=k)


@pytest.mark.parametrize("f", [-0.1, 1.0, 2, float("nan"), None])
def test_bad_discard_fraction(f):
    with pytest.raises(ConfigError, match=r"discard_fraction must be a number in \[0, 1\)"):
        twonn_dimension(np.ones((30, 2)), discard_fraction=f)


def test_torch_input_matches_numpy(clouds):
    X = clouds["S2_in_R10"][0][:500]
    T = torch.from_numpy(X)
    assert twonn_dimension(T) == pytest.approx(twonn_dimension(X), rel=1e-12)
    assert mle_dimension(T) == pytest.approx(mle_dimension(X), rel=1e-12)
    assert mle_dimension(T.float()) == pytest.approx(mle_dimension(X), rel=1e-4)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_scale_offset_and_permutation_invariance(scale, clouds, rng):
    X, _ = clouds["S2_in_R10"]
    X = X[:500]
    perm = rng.permutation(len(X))
    for func in (twonn_dimension, mle_dimension):
        ref = func(X)
        assert func(X * scale) == pytest.approx(ref, rel=1e-9)
        assert func(X[perm]) == pytest.approx(ref, rel=1e-10)
        # A large common offset must not cancel the small distances away.
        assert func(X + 1e6) == pytest.approx(ref, rel=1e-6)


def test_blocked_search_equals_single_block(clouds, monkeypatch):
    X, _ = clouds["S2_in_R10"]
    X = X[:700]
    ref = (twonn_dimension(X), mle_dimension(X))
    monkeypatch.setattr(intrinsic_dim, "_BLOCK_ENTRIES", 1000)  # 32-row blocks
    assert (twonn_dimension(X), mle_dimension(X)) == pytest.approx(ref, rel=1e-12)


def test_near_duplicates_are_exact_neighbours(rng):
    X = rng.standard_normal((200, 5)) * 100
    X[1] = X[0] + 1e-9  # far below the cancellation error of |a|² + |b|² - 2a·b
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(D, np.inf)
    r = np.sort(D, axis=1)[:, :20]
    inv_local = np.log(r[:, -1:] / r[:, :-1]).sum(axis=1) / 19
    assert mle_dimension(X) == pytest.approx(1 / inv_local.mean(), rel=1e-9)
