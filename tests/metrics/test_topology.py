"""Persistence diagrams against ripser itself; Betti numbers on shapes with known holes."""

from __future__ import annotations

import numpy as np
import pytest
import ripser
import torch

from traindyn.exceptions import ConfigError, MetricError
from traindyn.metrics import (
    BettiByClass,
    betti_by_class,
    betti_numbers,
    persistence_diagrams,
    relative_betti_numbers,
)


def assert_same_diagrams(a: list[np.ndarray], b: list[np.ndarray], rtol: float = 1e-6) -> None:
    assert len(a) == len(b)
    for da, db in zip(a, b, strict=True):
        assert da.shape == db.shape
        order_a = np.lexsort((da[:, 1], da[:, 0]))
        order_b = np.lexsort((db[:, 1], db[:, 0]))
        np.testing.assert_allclose(da[order_a], db[order_b], rtol=rtol)


@pytest.mark.parametrize(("n", "d", "maxdim"), [(60, 2, 1), (80, 5, 1), (40, 3, 2)])
def test_diagrams_equal_ripser(n, d, maxdim, rng):
    X = rng.standard_normal((n, d))
    ours = persistence_diagrams(X, maxdim=maxdim)
    theirs = ripser.ripser(X, maxdim=maxdim)["dgms"]
    assert_same_diagrams(ours, theirs)  # ripser stores distances in float32
    assert all(dg.dtype == np.float64 and dg.ndim == 2 for dg in ours)


def test_more_features_than_samples_needs_no_transpose(rng):
    X = rng.standard_normal((6, 50))  # ripser.ripser(X) would warn "did you mean to transpose?"
    dgms = persistence_diagrams(X)
    assert dgms[0].shape == (6, 2)
    assert np.isinf(dgms[0][:, 1]).sum() == 1


def test_noisy_circle_has_one_loop(circle, rng):
    X = circle(120, rng)
    assert betti_numbers(X, 0.5).tolist() == [1, 1]
    assert relative_betti_numbers(X).tolist() == [1, 1]
    h1 = persistence_diagrams(X)[1]
    life = np.sort(h1[:, 1] - h1[:, 0])[::-1]
    assert life[0] > 1.0 > 0.2 > life[1]  # one long bar (death ~ √3), the rest noise


def test_two_circles_have_two_loops(circle, rng):
    X = np.vstack([circle(100, rng, centre=(-3, 0)), circle(80, rng, centre=(3, 0), radius=0.8)])
    assert betti_numbers(X, 0.5).tolist() == [2, 2]
    assert relative_betti_numbers(X).tolist() == [2, 2]


def test_torus_has_two_loops(rng):
    u, v = rng.uniform(0, 2 * np.pi, (2, 400))
    X = np.c_[(2 + np.cos(v)) * np.cos(u), (2 + np.cos(v)) * np.sin(u), np.sin(v)]
    assert relative_betti_numbers(X).tolist() == [1, 2]


def test_relative_betti_on_gaussians_has_no_loops(rng):
    for d in (10, 50):
        assert relative_betti_numbers(rng.standard_normal((300, d))).tolist() == [1, 0]
    b0, b1 = relative_betti_numbers(rng.standard_normal((300, 3)))
    assert b1 == 0
    assert 1 <= b0 <= 3  # an isolated tail point or two (documented)


def test_relative_betti_is_scale_free_on_blobs(rng):
    centres = rng.standard_normal((4, 32)) * 5
    X = np.vstack([c + 0.3 * rng.standard_normal((60, 32)) for c in centres])
    assert relative_betti_numbers(X).tolist() == [4, 0]
    assert relative_betti_numbers(X * 1e-30).tolist() == [4, 0]
    assert relative_betti_numbers(X * 1e30).tolist() == [4, 0]


def test_betti_by_class_on_labelled_circles(circle, rng):
    blob = 0.1 * rng.standard_normal((50, 2)) + 10
    two = np.vstack([circle(60, rng, centre=(20, 0)), circle(60, rng, centre=(30, 0))])
    X = np.vstack([circle(80, rng), two, blob])
    y = np.array(["one"] * 80 + ["two"] * 120 + ["blob"] * 50)
    perm = rng.permutation(len(y))
    res = betti_by_class(X[perm], y[perm], 0.5)
    assert isinstance(res, BettiByClass)
    assert res.labels.tolist() == ["blob", "one", "two"]
    assert res.n_samples.tolist() == [50, 80, 120]
    assert res.betti.tolist() == [[1, 0], [1, 1], [2, 2]]
    np.testing.assert_allclose(res.mean(), [4 / 3, 1.0])
    assert res.min_persistence == 0.5
    with pytest.raises(AttributeError):
        res.min_persistence = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        res.betti[0, 0] = 7


def test_betti_by_class_accepts_torch_labels(circle, rng):
    X = circle(40, rng)
    y = torch.tensor([0] * 20 + [1] * 20)
    res = betti_by_class(torch.from_numpy(X), y, 0.1, maxdim=0)
    assert res.labels.tolist() == [0, 1]
    assert res.betti.shape == (2, 1)


def test_infinite_bars_count_and_threshold_is_strict():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert betti_numbers(square, 0.0).tolist() == [4, 1]
    assert betti_numbers(square, 0.5).tolist() == [4, 0]  # the hole lives √2 - 1
    assert betti_numbers(square, 1.0).tolist() == [1, 0]  # bars of length exactly 1 do not
    assert betti_numbers(square, 1e9).tolist() == [1, 0]  # the infinite bar always counts


def test_greedy_subsample_keeps_the_loop_and_ignores_row_order(circle, rng):
    X = circle(600, rng, even=False)
    a = persistence_diagrams(X, max_points=80)
    b = persistence_diagrams(X[rng.permutation(600)], max_points=80)
    assert_same_diagrams(a, b, rtol=0)
    assert betti_numbers(X, 0.5, max_points=80).tolist() == [1, 1]
    assert a[0].shape[0] == 80


def test_random_subsample_is_seeded(circle, rng):
    X = circle(300, rng, even=False)
    a = persistence_diagrams(X, max_points=50, subsample="random", seed=1)
    b = persistence_diagrams(X, max_points=50, subsample="random", seed=1)
    c = persistence_diagrams(X, max_points=50, subsample="random", seed=2)
    assert_same_diagrams(a, b, rtol=0)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("scale", [1e-160, 1e-30, 1e30, 1e160, 2.0**-100])
def test_diagrams_are_in_units_of_x(scale, rng):
    X = rng.standard_normal((50, 3))
    ref = persistence_diagrams(X)
    scaled = [d / scale for d in persistence_diagrams(X * scale)]
    assert_same_diagrams(scaled, ref, rtol=1e-6)


def test_identical_points():
    X = np.ones((10, 3))
    h0, h1 = persistence_diagrams(X)
    assert h0.tolist() == [[0.0, np.inf]]
    assert h1.shape == (0, 2)
    assert relative_betti_numbers(X).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"maxdim": -1}, "maxdim must be an integer >= 0"),
        ({"maxdim": 1.0}, "maxdim must be"),
        ({"max_points": 1}, "max_points must be None or an integer >= 2"),
        ({"subsample": "farthest"}, "subsample must be one of 'greedy', 'random'"),
    ],
)
def test_bad_options(kwargs, match, rng):
    with pytest.raises(ConfigError, match=match):
        persistence_diagrams(rng.standard_normal((5, 2)), **kwargs)


@pytest.mark.parametrize("value", [-0.1, float("inf"), float("nan")])
def test_bad_min_persistence(value, rng):
    with pytest.raises(ConfigError, match="min_persistence must be a finite number >= 0"):
        betti_numbers(rng.standard_normal((5, 2)), value)


def test_bad_data(rng):
    with pytest.raises(MetricError, match="at least 2 samples"):
        persistence_diagrams(np.ones((1, 3)))
    with pytest.raises(MetricError, match="finite"):
        betti_numbers(np.array([[0.0, 1.0], [np.inf, 0.0]]), 0.1)
    X = rng.standard_normal((10, 2))
    with pytest.raises(MetricError, match=r"y must be 1-D with one label per row of X \(10\)"):
        betti_by_class(X, np.zeros(9), 0.1)
    with pytest.raises(MetricError, match=r"at least 2 samples .* \[\(7, 1\)\]"):
        betti_by_class(X, np.array([0] * 9 + [7]), 0.1)
