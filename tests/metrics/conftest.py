"""Synthetic data with known answers for the metrics tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

Float = NDArray[np.float64]


def _with_singular_values(n: int, d: int, s: Float, rng: np.random.Generator) -> Float:
    """X (n, d) whose column-centred singular values are exactly ``s`` (then zeros).

    X = U diag(s) Vᵀ with U orthonormal and orthogonal to the ones vector (so centring
    leaves X unchanged) and V orthonormal.
    """
    r = len(s)
    assert r <= min(n - 1, d)
    A = rng.standard_normal((n, r))
    A -= A.mean(axis=0)
    U, _ = np.linalg.qr(A)
    V, _ = np.linalg.qr(rng.standard_normal((d, r)))
    X: Float = (U * s) @ V.T
    return X


def _sphere(n: int, m: int, ambient: int, rng: np.random.Generator) -> Float:
    """n points uniform on the unit sphere S^m, rotated into R^ambient."""
    Y = rng.standard_normal((n, m + 1))
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    Q, _ = np.linalg.qr(rng.standard_normal((ambient, m + 1)))
    out: Float = Y @ Q.T
    return out


def _circle(
    n: int,
    rng: np.random.Generator,
    *,
    centre: tuple[float, float] = (0.0, 0.0),
    radius: float = 1.0,
    noise: float = 0.03,
    even: bool = True,
) -> Float:
    """n points on a circle (evenly spaced or uniform angles) plus Gaussian noise."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) if even else rng.uniform(0, 2 * np.pi, n)
    X = np.c_[radius * np.cos(t) + centre[0], radius * np.sin(t) + centre[1]]
    out: Float = X + noise * rng.standard_normal(X.shape)
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def with_singular_values() -> Callable[..., Float]:
    return _with_singular_values


@pytest.fixture(scope="module")
def sphere() -> Callable[..., Float]:
    return _sphere


@pytest.fixture(scope="module")
def circle() -> Callable[..., Float]:
    return _circle
