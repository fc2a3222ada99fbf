from __future__ import annotations

import numpy as np
import pytest
import torch

from traindyn._validation import as_2d_float, check_in, check_min_samples, check_positive
from traindyn.exceptions import ConfigError, MetricError


@pytest.mark.parametrize(
    ("X", "match"),
    [
        ([["a", "b"], ["c", "d"]], "numeric array"),
        ([[1.0, 2.0], [3.0]], "numeric array"),
        (np.zeros(3), r"must be 2-D .* X.reshape\(-1, 1\)"),
        (np.zeros((2, 3, 4)), "reduce_activation"),
        (np.zeros((0, 3)), "non-empty"),
        (np.array([[1.0, np.nan]]), "1 NaN/Inf"),
        (torch.tensor([[1.0, float("inf")], [0.0, 0.0]]), "1 NaN/Inf"),
    ],
)
def test_bad_matrices_are_named(X: object, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        as_2d_float(X)


def test_dtypes_are_normalised() -> None:
    assert as_2d_float([[1, 2], [3, 4]]).dtype == np.float64
    assert as_2d_float(np.ones((2, 2), np.float32)).dtype == np.float32
    assert as_2d_float(torch.ones(2, 2, dtype=torch.bfloat16)).dtype == torch.float32
    assert as_2d_float(torch.ones(2, 2, dtype=torch.int64)).dtype == torch.float64
    t = torch.ones(2, 2, requires_grad=True)
    assert not as_2d_float(t).requires_grad


def test_small_checks() -> None:
    with pytest.raises(MetricError, match="at least 2 samples for PR; got 1"):
        check_min_samples(np.ones((1, 3)), 2, what="PR")
    with pytest.raises(ConfigError, match="lr must be a finite number > 0; got -1"):
        check_positive(-1, name="lr")
    check_positive(0, name="x", allow_zero=True)
    with pytest.raises(ConfigError, match="mode must be one of 'a', 'b'; got 'c'"):
        check_in("c", ("a", "b"), name="mode")
