"""reduce_activation: shapes, values and row order for every rule and layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from traindyn.exceptions import ConfigError, MetricError
from traindyn.metrics import reduce_activation

SPATIAL = [(5,), (4, 3), (2, 3, 2)]  # Conv1d, Conv2d, Conv3d outputs


@pytest.mark.parametrize("spatial", SPATIAL, ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "torch"])
def test_channels_first(spatial, as_tensor, rng):
    n, c = 6, 4
    A = rng.standard_normal((n, c, *spatial))
    P = int(np.prod(spatial))
    inp = torch.from_numpy(A) if as_tensor else A

    mean = reduce_activation(inp, rule="mean")
    flat = reduce_activation(inp, rule="flatten")
    pos = reduce_activation(inp, rule="per_position")
    for out in (mean, flat, pos):
        assert isinstance(out, torch.Tensor) == as_tensor
    np.testing.assert_allclose(np.asarray(mean), A.mean(axis=tuple(range(2, A.ndim))))
    np.testing.assert_array_equal(np.asarray(flat), A.reshape(n, c * P))
    pos = np.asarray(pos)
    assert pos.shape == (n * P, c)
    # Input-major: row i * P + p is position p of input i, a vector over channels.
    positions = list(np.ndindex(*spatial))
    for i, p in [(0, 0), (2, P - 1), (n - 1, P // 2)]:
        np.testing.assert_array_equal(pos[i * P + p], A[(i, slice(None), *positions[p])])


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "torch"])
def test_channels_last_tokens(as_tensor, rng):
    n, t, d = 5, 7, 3
    A = rng.standard_normal((n, t, d))
    inp = torch.from_numpy(A) if as_tensor else A
    kw = {"layout": "channels_last"}
    np.testing.assert_allclose(np.asarray(reduce_activation(inp, rule="mean", **kw)), A.mean(1))
    flat = np.asarray(reduce_activation(inp, rule="flatten", **kw))
    np.testing.assert_array_equal(flat, A.reshape(n, t * d))
    pos = np.asarray(reduce_activation(inp, rule="per_position", **kw))
    np.testing.assert_array_equal(pos, A.reshape(n * t, d))
    np.testing.assert_array_equal(pos[2 * t + 4], A[2, 4])


def test_layouts_agree_after_moving_the_channel_axis(rng):
    A = rng.standard_normal((3, 4, 5, 6))  # (n, c, h, w)
    B = np.moveaxis(A, 1, -1)  # (n, h, w, c)
    for rule in ("mean", "flatten", "per_position"):
        a = reduce_activation(A, rule=rule)
        b = reduce_activation(B, rule=rule, layout="channels_last")
        assert a.shape == b.shape
        if rule != "flatten":  # flatten orders features differently, by design
            np.testing.assert_allclose(a, b)


def test_two_d_is_returned_unchanged(rng):
    A = rng.standard_normal((4, 3))
    T = torch.from_numpy(A).float()
    for rule in ("mean", "flatten", "per_position"):
        assert reduce_activation(A, rule=rule) is A
        assert reduce_activation(T, rule=rule, layout="channels_last") is T


def test_integer_and_half_input():
    A = np.arange(24).reshape(2, 3, 4)
    out = reduce_activation(A)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, A.mean(-1))
    T = torch.ones(2, 3, 4, dtype=torch.int64)
    assert reduce_activation(T).dtype == torch.float64
    assert reduce_activation(torch.ones(2, 3, 4, dtype=torch.float16)).dtype == torch.float16


@pytest.mark.parametrize(
    ("A", "match"),
    [
        (np.ones(5), r"at least 2 dimensions .* A.reshape\(-1, 1\)"),
        (np.float64(3.0), "at least 2 dimensions"),
        (np.ones((3, 0, 2)), "no empty axis"),
    ],
)
def test_bad_shapes(A, match):
    with pytest.raises(MetricError, match=match):
        reduce_activation(A)


def test_bad_options():
    with pytest.raises(ConfigError, match="rule must be one of 'flatten', 'mean', 'per_position'"):
        reduce_activation(np.ones((2, 3, 4)), rule="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="layout must be one of"):
        reduce_activation(np.ones((2, 3, 4)), layout="NHWC")  # type: ignore[arg-type]
