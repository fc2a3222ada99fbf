"""Checkpoint/layer comparisons against closed-form truths and direct transcriptions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy
from scipy.stats import ortho_group

from traindyn.exceptions import MetricError
from traindyn.metrics import (
    CKA_COLUMNS,
    attention_entropy,
    attention_similarity,
    cka_matrix,
    filter_similarity,
    hidden_unit_stats,
    linear_cka,
)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------------------- CKA


def test_cka_invariant_to_orthogonal_transforms_and_isotropic_scaling(
    rng: np.random.Generator,
) -> None:
    X = rng.standard_normal((60, 12))
    Q = ortho_group.rvs(12, random_state=1)
    noise = rng.standard_normal((60, 5))
    t = cka_matrix({"step-1": X, "step-2": 2.5 * X @ Q, "noise": noise})
    square = t.pivot(index="a", columns="b", values="cka")
    assert square.loc["step-1", "step-2"] == pytest.approx(1.0, abs=1e-12)
    assert square.loc["step-2", "step-1"] == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(np.diag(square.to_numpy()), 1.0, atol=1e-12)
    # unrelated features: the table holds exactly what linear_cka computes
    assert square.loc["step-1", "noise"] == pytest.approx(linear_cka(X, noise), rel=1e-12)
    assert square.loc["step-1", "noise"] < 0.6


def test_cka_table_schema_and_order(rng: np.random.Generator) -> None:
    A = {"l1": rng.standard_normal((20, 3)), "l2": rng.standard_normal((20, 4))}
    B = {"x": rng.standard_normal((20, 2)), "y": torch.randn(20, 6, dtype=torch.float64)}
    t = cka_matrix(A, B)
    assert tuple(t.columns) == CKA_COLUMNS
    assert list(zip(t["a"], t["b"], strict=True)) == [
        ("l1", "x"),
        ("l1", "y"),
        ("l2", "x"),
        ("l2", "y"),
    ]
    assert t["cka"].dtype == np.float64
    assert isinstance(t["a"].dtype, pd.StringDtype)
    assert t["reason"].isna().all()
    assert t["cka"].iloc[1] == pytest.approx(linear_cka(A["l1"], B["y"]), rel=1e-12)


def test_cka_debiased_matches_linear_cka(rng: np.random.Generator) -> None:
    A = {"a": rng.standard_normal((30, 40)), "b": rng.standard_normal((30, 40))}
    t = cka_matrix(A, debiased=True)
    value = t.query("a == 'a' and b == 'b'")["cka"].item()
    assert value == pytest.approx(linear_cka(A["a"], A["b"], debiased=True), rel=1e-12)
    biased = cka_matrix(A).query("a == 'a' and b == 'b'")["cka"].item()
    assert abs(value) < biased  # the bias of CKA with more features than samples


def test_collapsed_representation_gives_nan_with_reason(rng: np.random.Generator) -> None:
    X = rng.standard_normal((10, 3))
    t = cka_matrix({"ok": X, "dead": np.zeros((10, 3))})
    dead = t[(t["a"] == "dead") | (t["b"] == "dead")]
    assert dead["cka"].isna().all()
    assert dead["reason"].str.contains("constant").all()
    assert t.query("a == 'ok' and b == 'ok'")["cka"].item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("reps", "match"),
    [
        ({}, "non-empty mapping"),
        ([np.ones((3, 2))], "mapping"),
        ({1: np.ones((3, 2))}, "keys must be strings"),
        ({"a": np.ones((3, 2)), "b": np.ones((4, 2))}, "same number of samples"),
        ({"a": np.ones(3)}, "2-D"),
        ({"a": np.array([[1.0, np.nan], [0.0, 1.0]])}, "finite"),
        ({"a": np.ones((1, 2))}, "at least 2 samples"),
    ],
)
def test_cka_matrix_rejects_bad_input(reps: object, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        cka_matrix(reps)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- attention


def test_uniform_attention_has_entropy_log_k_and_one_hot_zero() -> None:
    k = 7
    uniform = np.full((3, 2, 5, k), 1.0 / k)
    assert np.allclose(attention_entropy(uniform), math.log(k), atol=1e-12)
    one_hot = np.zeros((3, 2, 5, k))
    one_hot[..., 4] = 1.0
    assert np.array_equal(attention_entropy(one_hot), [0.0, 0.0])
    mixed = np.concatenate([uniform[:, :1], one_hot[:, :1]], axis=1)
    assert np.allclose(attention_entropy(torch.tensor(mixed)), [math.log(k), 0.0])
    assert attention_entropy(uniform[:, 0]).shape == (1,)  # (n, q, k): one head


def test_attention_entropy_matches_scipy_and_is_bounded(rng: np.random.Generator) -> None:
    w = softmax(3 * rng.standard_normal((4, 3, 6, 9)))
    ent = attention_entropy(w.astype(np.float32))
    expected = scipy_entropy(w, axis=-1).mean(axis=(0, 2))
    assert np.allclose(ent, expected, atol=1e-6)
    assert ((ent >= 0) & (ent <= math.log(9))).all()


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.full((2, 3), 0.5), "shape"),
        (np.array([[[1.5, -0.5]]]), "non-negative"),
        (np.array([[[0.3, 0.3]]]), "sum to 1"),
        (np.array([[[np.nan, 1.0]]]), "finite"),
        (np.zeros((0, 2, 2)), "non-empty"),
    ],
)
def test_attention_entropy_rejects_non_distributions(weights: np.ndarray, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        attention_entropy(weights)


def test_attention_similarity_of_identical_maps_is_perfect(rng: np.random.Generator) -> None:
    w = softmax(rng.standard_normal((5, 2, 4, 6)))
    s = attention_similarity(w, torch.tensor(w))
    assert np.allclose(s.js_divergence, 0.0, atol=1e-15)
    assert np.allclose(s.correlation, 1.0, atol=1e-12)


def test_attention_similarity_matches_direct_formulas(rng: np.random.Generator) -> None:
    a = softmax(rng.standard_normal((5, 2, 4, 6)))
    b = softmax(rng.standard_normal((5, 2, 4, 6)))
    s = attention_similarity(a, b)
    js = jensenshannon(a, b, axis=-1) ** 2  # scipy returns the distance, natural log
    assert np.allclose(s.js_divergence, js.mean(axis=(0, 2)), atol=1e-12)
    for h in range(2):
        r = np.corrcoef(a[:, h].ravel(), b[:, h].ravel())[0, 1]
        assert s.correlation[h] == pytest.approx(r, rel=1e-10)


def test_disjoint_attention_has_js_log_2_and_uniform_has_no_correlation() -> None:
    a = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    s = attention_similarity(a, a[:, ::-1].copy())
    assert s.js_divergence[0] == pytest.approx(math.log(2))
    uniform = np.full((2, 3, 4), 0.25)
    u = attention_similarity(uniform, uniform)
    assert u.js_divergence[0] == 0.0 and math.isnan(u.correlation[0])


def test_attention_similarity_needs_equal_shapes() -> None:
    with pytest.raises(MetricError, match="shape of w_a"):
        attention_similarity(np.full((1, 2, 2), 0.5), np.full((1, 3, 2), 0.5))


# --------------------------------------------------------------------------- filters


def test_identical_filters_have_similarity_one() -> None:
    torch.manual_seed(0)
    w = torch.nn.Conv2d(3, 8, 3).weight.detach()
    s = filter_similarity(w, w.clone())
    assert np.allclose(s.matched, 1.0) and np.allclose(s.permuted, 1.0)
    assert s.permutation.tolist() == list(range(8))
    assert s.mean_matched == pytest.approx(1.0)


def test_permuted_conv_layer_is_matched_by_hungarian_assignment() -> None:
    torch.manual_seed(1)
    w = torch.nn.Conv2d(2, 10, 3).weight.detach()
    perm = torch.randperm(10)
    s = filter_similarity(w, w[perm])
    assert np.allclose(s.permuted, 1.0)
    # filter i of w is row j of w[perm] where perm[j] == i
    assert s.permutation.tolist() == torch.argsort(perm).tolist()
    assert s.mean_matched < 0.9
    fixed = perm == torch.arange(10)
    assert np.allclose(s.matched[fixed.numpy()], 1.0)


def test_filter_similarity_is_signed_cosine_and_scale_free(rng: np.random.Generator) -> None:
    a = rng.standard_normal((6, 4, 3))
    b = rng.standard_normal((6, 4, 3))
    s = filter_similarity(a, b)
    cos = torch.nn.functional.cosine_similarity(
        torch.tensor(a.reshape(6, -1)), torch.tensor(b.reshape(6, -1)), dim=1
    )
    assert np.allclose(s.matched, cos.numpy(), atol=1e-12)
    C = _cos(a, b)
    assert np.allclose(s.permuted, C[np.arange(6), s.permutation])
    best = max(sum(C[i, j] for i, j in enumerate(p)) for p in itertools.permutations(range(6)))
    assert s.permuted.sum() == pytest.approx(best)  # the optimal assignment, by brute force
    assert s.mean_permuted >= s.mean_matched
    assert np.allclose(filter_similarity(a, 3 * a).matched, 1.0)
    assert np.allclose(filter_similarity(a, -a).matched, -1.0)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    A = a.reshape(len(a), -1)
    B = b.reshape(len(b), -1)
    return (A / np.linalg.norm(A, axis=1, keepdims=True)) @ (
        B / np.linalg.norm(B, axis=1, keepdims=True)
    ).T


def test_zero_filters_follow_the_documented_convention() -> None:
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    s = filter_similarity(a, np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert s.matched.tolist() == [1.0, 1.0]
    t = filter_similarity(a, np.array([[1.0, 0.0], [0.0, 2.0]]))
    assert t.matched.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("w_a", "w_b", "match"),
    [
        (np.ones((4, 2, 3)), np.ones((4, 3, 3)), "shape of w_a"),
        (np.ones(4), np.ones(4), "layer weights"),
        (np.ones((0, 2)), np.ones((0, 2)), "non-empty"),
        (np.array([[np.inf, 1.0]]), np.ones((1, 2)), "finite"),
    ],
)
def test_filter_similarity_rejects_bad_weights(
    w_a: np.ndarray, w_b: np.ndarray, match: str
) -> None:
    with pytest.raises(MetricError, match=match):
        filter_similarity(w_a, w_b)


# ---------------------------------------------------------------------- hidden units


def test_planted_dead_units_are_found(rng: np.random.Generator) -> None:
    acts = np.maximum(rng.standard_normal((200, 20)), 0.0)
    dead = [3, 7, 11]
    acts[:, dead] = 0.0
    acts[:, 15] = 0.0
    acts[17, 15] = 0.1  # fires once: alive
    s = hidden_unit_stats(torch.tensor(acts, dtype=torch.float32))
    assert np.flatnonzero(s.dead).tolist() == dead
    assert s.dead_fraction == pytest.approx(3 / 20)
    assert s.sparsity == pytest.approx(float((acts == 0).mean()))
    assert (s.n_samples, s.n_units) == (200, 20)


def test_pre_activation_units_never_positive_are_dead(rng: np.random.Generator) -> None:
    pre = rng.standard_normal((50, 6))
    pre[:, 2] = -np.abs(pre[:, 2]) - 0.1
    s = hidden_unit_stats(pre)
    assert np.flatnonzero(s.dead).tolist() == [2]
    assert s.sparsity == 0.0


def test_unit_moments_match_numpy(rng: np.random.Generator) -> None:
    acts = rng.exponential(size=(40, 5))
    s = hidden_unit_stats(acts)
    assert np.allclose(s.unit_mean, acts.mean(axis=0))
    assert np.allclose(s.unit_std, acts.std(axis=0))
    assert s.mean_activation == pytest.approx(acts.mean())
    assert s.std_unit_mean == pytest.approx(acts.mean(axis=0).std())
    assert s.mean_unit_std == pytest.approx(acts.std(axis=0).mean())


@pytest.mark.parametrize(
    ("acts", "match"),
    [(np.ones(3), "2-D"), (np.array([[np.nan]]), "finite"), (np.ones((0, 3)), "non-empty")],
)
def test_hidden_unit_stats_rejects_bad_input(acts: np.ndarray, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        hidden_unit_stats(acts)
