"""The registry's names, lookups, and measure(): one decomposition, NaN + reason on failure."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import numpy as np
import pytest
import torch

import traindyn.metrics as tdm
from traindyn.exceptions import ConfigError
from traindyn.metrics import (
    DEFAULT_METRICS,
    METRICS,
    SPECTRAL_METRICS,
    DuplicatePointsWarning,
    Measurement,
    MetricSpec,
    get_metric,
    measure,
    spectral_metrics,
)

NAMES = [
    "participation_ratio",
    "effective_rank",
    "stable_rank",
    "energy_rank",
    "nuclear_norm_ratio",
    "twonn_dimension",
    "mle_dimension",
    "betti_0",
    "betti_1",
]


def test_names_are_the_store_contract():
    assert list(METRICS) == NAMES
    assert DEFAULT_METRICS == SPECTRAL_METRICS == tuple(NAMES[:5])
    for name, spec in METRICS.items():
        assert spec.name == name
        assert spec.family in ("spectral", "intrinsic_dimension", "topology")
        assert spec.min_samples >= 2
        assert spec.description
        assert spec.reference
    with pytest.raises(TypeError):
        METRICS["x"] = METRICS["betti_0"]  # type: ignore[index]


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_metric("betti_1").min_samples = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Measurement("a", 1.0, None).value = 2.0  # type: ignore[misc]


def test_get_metric_lists_valid_names():
    assert isinstance(get_metric("mle_dimension"), MetricSpec)
    with pytest.raises(
        ConfigError,
        match=r"metric must be one of 'participation_ratio', .*"
        r"'betti_1'; got 'partcipation_ratio'\. Did you mean 'participation_ratio'",
    ):
        get_metric("partcipation_ratio")
    with pytest.raises(ConfigError, match="got 3"):
        get_metric(3)  # type: ignore[arg-type]


def test_measure_equals_the_registered_functions(rng):
    X = rng.standard_normal((120, 6)) @ rng.standard_normal((6, 10))
    results = measure(X, NAMES)
    assert [m.metric for m in results] == NAMES
    for m in results:
        assert m.reason is None
        assert m.value == pytest.approx(METRICS[m.metric].function(X), rel=1e-12), m.metric


def test_spectral_metrics_share_one_decomposition(rng, monkeypatch):
    calls = []
    original = torch.linalg.eigvalsh

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigvalsh", counting)
    X = rng.standard_normal((30, 5))
    results = measure(X, [*SPECTRAL_METRICS, "betti_0"])
    assert len(calls) == 1
    expected = spectral_metrics(X)
    assert {m.metric: m.value for m in results[:5]} == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    ("X", "reason"),
    [
        (np.ones((1, 4)), r"MetricError: X must have at least \d+ samples .*got 1\."),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "MetricError: X must be finite"),
        (np.ones(5), "MetricError: X must be 2-D"),
        (np.ones((4, 3, 2)), "MetricError: X must be 2-D .*reduce_activation"),
        ([["a", "b"], ["c", "d"]], "MetricError: X must be a numeric array"),
    ],
)
def test_measure_returns_nan_and_reason_instead_of_raising(X, reason):
    results = measure(X, NAMES)
    assert [m.metric for m in results] == NAMES
    for m in results:
        assert math.isnan(m.value)
        assert m.reason is not None
        assert len(m.reason) <= 300
        assert re.match(reason, m.reason), m.reason


def test_measure_fails_only_the_metrics_that_cannot_run(rng):
    X = rng.standard_normal((10, 3))  # MLE needs 21 samples
    results = {m.metric: m for m in measure(X, NAMES)}
    assert math.isnan(results["mle_dimension"].value)
    assert results["mle_dimension"].reason == (
        "MetricError: X must have at least 21 samples for mle_dimension; got 10. "
        "Use a larger probe set or batch."
    )
    for name in NAMES:
        if name != "mle_dimension":
            assert results[name].reason is None, name
            assert math.isfinite(results[name].value), name


def test_measure_constant_representation():
    results = {m.metric: m for m in measure(np.full((30, 4), 2.0), NAMES)}
    for name in SPECTRAL_METRICS:
        assert results[name] == Measurement(name, 0.0, None)
    assert results["betti_0"].value == 1.0
    assert results["betti_1"].value == 0.0
    for name in ("twonn_dimension", "mle_dimension"):
        assert math.isnan(results[name].value)
        assert "unique samples" in str(results[name].reason)


def test_measure_notes_dropped_duplicates_instead_of_warning(rng):
    X = rng.standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # measure() runs on a worker thread: it must not warn
        results = measure(np.vstack([X, X[:5]]), ["twonn_dimension"])
    assert results[0].reason is None
    assert "Dropped 5 duplicate" in str(results[0].note)
    assert results[0].value == pytest.approx(tdm.twonn_dimension(X), rel=1e-12)
    with pytest.warns(DuplicatePointsWarning, match="Dropped 5 duplicate"):
        tdm.twonn_dimension(np.vstack([X, X[:5]]))  # the public function still warns


def test_measure_reduces_higher_rank_activations(rng):
    A = rng.standard_normal((16, 8, 3, 3))
    by_rule = measure(A, ["participation_ratio"], reduce_rule="mean")
    direct = tdm.participation_ratio(A.mean(axis=(2, 3)))
    assert by_rule[0].value == pytest.approx(direct, rel=1e-14)
    tokens = measure(
        A.reshape(16, 9, 8), ["stable_rank"], reduce_rule="per_position", layout="channels_last"
    )
    assert tokens[0].reason is None


def test_measure_names_order_and_forms(rng):
    X = rng.standard_normal((25, 4))
    single = measure(X, "stable_rank")
    assert [m.metric for m in single] == ["stable_rank"]
    twice = measure(X, ["stable_rank", "betti_0", "stable_rank"])
    assert [m.metric for m in twice] == ["stable_rank", "betti_0", "stable_rank"]
    assert twice[0] == twice[2]
    assert [m.metric for m in measure(X)] == list(DEFAULT_METRICS)
    assert measure(X, []) == []


def test_measure_rejects_programming_errors_even_on_bad_data():
    with pytest.raises(ConfigError, match="metric must be one of"):
        measure(np.ones(3), ["participation_ratio", "pr"])
    with pytest.raises(ConfigError, match="reduce_rule must be one of"):
        measure(np.ones((3, 3)), reduce_rule="max")  # type: ignore[arg-type]


def test_measure_catches_numerical_failures(rng, monkeypatch):
    def broken(*args, **kwargs):
        raise torch.linalg.LinAlgError("eigh did not converge")

    monkeypatch.setattr(torch.linalg, "eigvalsh", broken)
    results = measure(rng.standard_normal((10, 3)), ["stable_rank", "betti_0"])
    assert math.isnan(results[0].value)
    assert results[0].reason == "LinAlgError: eigh did not converge"  # not "_LinAlgError"
    assert results[1].reason is None
