"""One contract for every registered metric (like sklearn's ``parametrize_with_checks``).

Each registered metric is run through the same degenerate inputs. Every case has a
documented outcome: a value, or a MetricError whose message names the problem. Never a
crash of another type, a hang, a stray warning or a silent NaN. ``measure()`` turns every
failure into NaN plus a reason.

Documented outcomes (also in the functions' docstrings):

=================  ============  =====================  ==================  =====
input              spectral (5)  twonn_dimension        mle_dimension       betti
=================  ============  =====================  ==================  =====
n = 1              MetricError   MetricError            MetricError         Error
n = 2              1.0           MetricError (>= 3)     MetricError (>= 21) (1, 0)
d = 1 (a line)     1.0           ≈ 1                    ≈ 1                 β₁ = 0
all zero/constant  0.0           MetricError (unique)   MetricError         (1, 0)
duplicated rows    unchanged     unchanged + warning    unchanged + warn.   same
NaN / Inf          MetricError   MetricError            MetricError         Error
=================  ============  =====================  ==================  =====
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from traindyn.exceptions import MetricError
from traindyn.metrics import METRICS, DuplicatePointsWarning, measure

ALL = list(METRICS)
SPECTRAL = [n for n, s in METRICS.items() if s.family == "spectral"]
ID = ["twonn_dimension", "mle_dimension"]
BETTI = ["betti_0", "betti_1"]
# Relative tolerance between float32 and float64 versions of the same data: the
# float32 rounding of the points, not of the computation.
FLOAT32_RTOL = {**dict.fromkeys(SPECTRAL, 1e-5), **dict.fromkeys(ID, 1e-4)}


def run(name: str, X: Any) -> float:
    """The registered function, asserting the value is a finite, non-negative float."""
    value = METRICS[name].function(X)
    assert isinstance(value, float), name
    assert math.isfinite(value), f"{name} returned {value!r}"
    assert value >= 0.0, name
    return value


def cloud(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Generic points: distinct, full rank, a clear inner structure (two blobs)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[: n // 2] += 6.0
    return X


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return cloud(60, 4)


@pytest.fixture(scope="module")
def reference(X: np.ndarray) -> dict[str, float]:
    return {name: run(name, X) for name in ALL}


@pytest.mark.parametrize("name", ALL)
def test_one_sample_raises(name):
    with pytest.raises(MetricError, match=r"at least \d+ samples .*got 1\."):
        METRICS[name].function(np.ones((1, 5)))


@pytest.mark.parametrize("name", ALL)
def test_min_samples_is_honest(name):
    m = METRICS[name].min_samples
    run(name, cloud(m, 3, seed=1))
    with pytest.raises(MetricError, match=f"at least {m} samples"):
        METRICS[name].function(cloud(m - 1, 3, seed=1))


@pytest.mark.parametrize("name", ALL)
def test_two_samples(name):
    X2 = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    expected = {**dict.fromkeys(SPECTRAL, 1.0), "betti_0": 1.0, "betti_1": 0.0}
    if name in expected:
        assert run(name, X2) == pytest.approx(expected[name], rel=1e-12)
    else:
        with pytest.raises(MetricError, match=r"at least (3|21) samples"):
            METRICS[name].function(X2)


@pytest.mark.parametrize("name", ALL)
def test_one_feature(name):
    line = np.random.default_rng(2).uniform(0, 1, (200, 1))
    value = run(name, line)
    if name in SPECTRAL:
        assert value == pytest.approx(1.0, rel=1e-12)
    elif name in ID:
        assert value == pytest.approx(1.0, rel=0.2)
    elif name == "betti_1":
        assert value == 0.0  # Rips complexes of points on a line have no loops
    else:
        assert value >= 1.0


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "Z",
    [np.zeros((30, 4)), np.tile([3.5, -1e5, 0.0, 1e-9], (30, 1))],
    ids=["all_zero", "constant_rows"],
)
def test_zero_variance(name, Z):
    if name in ID:
        with pytest.raises(MetricError, match="unique samples"):
            METRICS[name].function(Z)
    else:
        expected = {**dict.fromkeys(SPECTRAL, 0.0), "betti_0": 1.0, "betti_1": 0.0}
        assert run(name, Z) == expected[name]


@pytest.mark.parametrize("name", ALL)
def test_duplicated_points(name, X, reference):
    doubled = np.vstack([X, X])
    if name in ID:
        with pytest.warns(DuplicatePointsWarning, match=f"Dropped {len(X)} duplicate"):
            value = run(name, doubled)
    else:
        value = run(name, doubled)
    assert value == pytest.approx(reference[name], rel=1e-9)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_extreme_scales(name, scale, X, reference):
    assert run(name, X * scale) == pytest.approx(reference[name], rel=1e-8)


@pytest.mark.parametrize("name", ALL)
def test_power_of_two_scaling_is_exact(name, X, reference):
    assert run(name, X * 2.0**-100) == reference[name]
    assert run(name, X * 2.0**100) == reference[name]


@pytest.mark.parametrize("name", ALL)
def test_float32_vs_float64(name, X, reference):
    rtol = FLOAT32_RTOL.get(name, 0.0)  # Betti numbers: equal
    assert run(name, X.astype(np.float32)) == pytest.approx(reference[name], rel=rtol, abs=0)
    torch_value = run(name, torch.from_numpy(X).float())
    assert torch_value == pytest.approx(reference[name], rel=rtol, abs=0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_raises(name, bad, X):
    Y = X.copy()
    Y[3, 1] = bad
    with pytest.raises(MetricError, match=r"X must be finite; got 1 NaN/Inf"):
        METRICS[name].function(Y)
    with pytest.raises(MetricError, match="finite"):
        METRICS[name].function(torch.from_numpy(Y))


@pytest.mark.parametrize("name", ALL)
def test_row_permutation(name, X, reference):
    perm = np.random.default_rng(3).permutation(len(X))
    assert run(name, X[perm]) == pytest.approx(reference[name], rel=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_wrong_rank_raises(name):
    with pytest.raises(MetricError, match="2-D"):
        METRICS[name].function(np.ones(30))
    with pytest.raises(MetricError, match="reduce_activation"):
        METRICS[name].function(np.ones((30, 3, 3)))


# Values with many ties, zeros, near-duplicates and spread magnitudes.
_ELEMENTS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-3]),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)
_ARRAYS = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 30), st.integers(1, 4)),
    elements=_ELEMENTS,
)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(A=_ARRAYS)
def test_any_input_gives_a_value_or_a_metric_error(name, A):
    n, d = A.shape
    message = ""
    value: float | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = run(name, A)
        except MetricError as exc:
            message = str(exc)
    if value is None:  # the message names the field, what was expected and what came
        assert message.startswith("X must "), message
        assert "; got " in message, message
    assert all(issubclass(w.category, DuplicatePointsWarning) for w in caught), [
        str(w.message) for w in caught
    ]
    if value is not None and name in SPECTRAL and value != 0.0:
        assert 1.0 - 1e-9 <= value <= min(n - 1, d) + 1e-9
    if value is not None and name in BETTI:
        assert value == int(value)
        if name == "betti_0":
            assert 1 <= value <= n


@settings(max_examples=30, deadline=None)
@given(A=_ARRAYS)
def test_measure_never_raises_and_never_hides_nan(A):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # measure() never warns: notes instead
        results = measure(A, ALL)
    assert [m.metric for m in results] == ALL
    for m in results:
        if m.reason is None:
            assert math.isfinite(m.value)
        else:
            assert math.isnan(m.value)
            assert m.reason.startswith("MetricError: ")


@pytest.mark.parametrize(
    "bad",
    [np.ones((1, 3)), np.full((5, 2), np.nan), np.ones(4), np.ones((2, 2, 2)), [[1.0, "x"]]],
    ids=["one_sample", "nan", "1d", "3d", "strings"],
)
def test_measure_turns_every_failure_into_nan_and_reason(bad):
    for m in measure(bad, ALL):
        assert math.isnan(m.value)
        assert m.reason
