"""Compare representations and weights across checkpoints and layers: pure functions.

Arrays (numpy or torch) in, typed results out; no file I/O, no hooks. The driver that
loads checkpoints and captures the inputs of these functions is
:func:`traindyn.capture.posthoc.compare_checkpoints`.

- :func:`cka_matrix`: linear CKA between every pair of named representations of the
  same probe inputs (checkpoints of one layer, or layers at one checkpoint).
- :func:`attention_entropy`, :func:`attention_similarity`: per-head entropy of attention
  maps, and how much two checkpoints' maps differ (Jensen-Shannon divergence and
  correlation).
- :func:`filter_similarity`: cosine similarity of conv filters between two checkpoints,
  index-matched and after an optimal permutation (Hungarian matching).
- :func:`hidden_unit_stats`: dead units, sparsity and per-unit moments of activations.

References
----------
.. [1] Kornblith, S., Norouzi, M., Lee, H. & Hinton, G. (2019). Similarity of neural
   network representations revisited. ICML, PMLR 97, 3519-3529.
.. [2] Clark, K., Khandelwal, U., Levy, O. & Manning, C. D. (2019). What does BERT look
   at? An analysis of BERT's attention. BlackboxNLP, 276-286.
.. [3] Lin, J. (1991). Divergence measures based on the Shannon entropy. IEEE Trans.
   Inf. Theory 37(1), 145-151.
.. [4] Li, Y., Yosinski, J., Clune, J., Lipson, H. & Hopcroft, J. (2016). Convergent
   learning: do different neural networks learn the same representations? ICLR.
.. [5] Glorot, X., Bordes, A. & Bengio, Y. (2011). Deep sparse rectifier neural
   networks. AISTATS, PMLR 15, 315-323.
.. [6] Lu, L., Shin, Y., Su, Y. & Karniadakis, G. E. (2020). Dying ReLU and
   initialization: theory and numerical examples. Commun. Comput. Phys. 28(5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from traindyn._validation import Array, as_2d_float, check_min_samples
from traindyn.exceptions import MetricError
from traindyn.metrics.similarity import linear_cka

__all__ = [
    "CKA_COLUMNS",
    "AttentionSimilarity",
    "FilterSimilarity",
    "HiddenUnitStats",
    "attention_entropy",
    "attention_similarity",
    "cka_matrix",
    "filter_similarity",
    "hidden_unit_stats",
]

CKA_COLUMNS: tuple[str, ...] = ("a", "b", "cka", "reason")
"""Columns of :func:`cka_matrix`: ``a``, ``b`` (string), ``cka`` (float64), ``reason``
(string, ``<NA>`` when ``cka`` is a number)."""

# Softmax rows in float32 sum to 1 within ~1e-6; half precision within ~1e-3. A row off
# by more is not a probability distribution (scores or logits were passed).
_ROW_SUM_TOL = 1e-3
# Attention weights lie in [0, 1]; a map whose standard deviation is below float32
# rounding is constant (uniform attention) and has no correlation with anything.
_CONSTANT_STD = 1e-6


# ------------------------------------------------------------------------------- CKA


def _check_reps(reps: Any, name: str) -> dict[str, Array]:
    """Validate a mapping of name -> 2-D representation (finite, non-empty)."""
    if not isinstance(reps, Mapping) or len(reps) == 0:
        raise MetricError(
            f"{name} must be a non-empty mapping of name to (n_samples, n_features) "
            f"array; got {type(reps).__name__}"
            f"{' (empty)' if isinstance(reps, Mapping) else ''}. Pass e.g. "
            "{'step-100': X100, 'step-2000': X2000}."
        )
    out: dict[str, Array] = {}
    for key, value in reps.items():
        if not isinstance(key, str):
            raise MetricError(f"{name} keys must be strings; got {key!r}.")
        out[key] = as_2d_float(value, name=f"{name}[{key!r}]")
    return out


def cka_matrix(
    reps_a: Mapping[str, Any],
    reps_b: Mapping[str, Any] | None = None,
    *,
    debiased: bool = False,
) -> pd.DataFrame:
    """Linear CKA between every pair of named representations, as a long table.

    Used across checkpoints (keys ``"step-100"``, ``"step-2000"``: one layer's
    representation at several steps) and across layers (keys are layer names at one
    step). Every representation must hold the same ``n_samples`` probe inputs in the
    same order; feature counts may differ.

    Parameters
    ----------
    reps_a : mapping of str to ndarray or torch.Tensor of shape (n_samples, n_features)
        Named representations (rows).
    reps_b : mapping of str to ndarray or torch.Tensor of shape (n_samples, n_features), optional
        Representations to compare with (columns); default ``reps_a`` (a symmetric table
        whose diagonal is 1, computed once per unordered pair).
    debiased : bool, default False
        Use the debiased estimator of :func:`~traindyn.metrics.linear_cka`.

    Returns
    -------
    DataFrame
        Columns :data:`CKA_COLUMNS`: ``a`` and ``b`` (string keys), ``cka`` (float64)
        and ``reason`` (string). One row per ordered pair, ``a``-major in the key order
        of the mappings. A pair involving a constant (collapsed) representation has
        ``cka`` NaN and the reason; every other value is a number. For a square matrix
        use ``t.pivot(index="a", columns="b", values="cka").loc[keys_a, keys_b]``
        (``pivot`` sorts the keys).

    Raises
    ------
    MetricError
        If a mapping is empty or not a mapping, a key is not a string, a representation
        is not 2-D or holds NaN/Inf, the representations differ in ``n_samples``, or
        there are fewer than 2 samples (4 when ``debiased``).

    See Also
    --------
    traindyn.metrics.linear_cka : one pair.

    References
    ----------
    .. [1] Kornblith, S., Norouzi, M., Lee, H. & Hinton, G. (2019). Similarity of
       neural network representations revisited. ICML, PMLR 97, 3519-3529.

    Examples
    --------
    A rotated and rescaled copy has CKA 1; one of two equal-variance directions has
    CKA 1/√2 with the pair; orthogonal signals have CKA 0:

    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> R = np.array([[0.6, -0.8], [0.8, 0.6]])
    >>> t = cka_matrix({"early": X, "late": 3 * X @ R, "x0": X[:, :1]})
    >>> t.pivot(index="a", columns="b", values="cka").round(4)  # doctest: +NORMALIZE_WHITESPACE
    b       early    late      x0
    a
    early  1.0000  1.0000  0.7071
    late   1.0000  1.0000  0.7071
    x0     0.7071  0.7071  1.0000
    >>> cka_matrix({"x0": X[:, :1]}, {"x1": X[:, 1:]})[["a", "b", "cka"]]
        a   b  cka
    0  x0  x1  0.0
    """
    A = _check_reps(reps_a, "reps_a")
    B = A if reps_b is None else _check_reps(reps_b, "reps_b")
    first = next(iter(A))
    n = int(A[first].shape[0])
    for side, reps in (("reps_a", A), ("reps_b", B)):
        for key, rep in reps.items():
            if int(rep.shape[0]) != n:
                raise MetricError(
                    f"{side}[{key!r}] must have the same number of samples as "
                    f"reps_a[{first!r}] ({n}); got {int(rep.shape[0])}. Every "
                    "representation must hold the same probe inputs in the same order "
                    "(use one reduce rule that keeps one row per input, e.g. 'mean')."
                )
    check_min_samples(
        A[first],
        4 if debiased else 2,
        name=f"reps_a[{first!r}]",
        what="debiased linear CKA" if debiased else "linear CKA",
    )
    done: dict[tuple[str, str], tuple[float, str | None]] = {}
    rows: list[tuple[str, str, float, str | None]] = []
    for ka, xa in A.items():
        for kb, xb in B.items():
            if reps_b is None and (kb, ka) in done:
                value, reason = done[(kb, ka)]
            else:
                try:
                    value, reason = linear_cka(xa, xb, debiased=debiased), None
                except MetricError as exc:  # a collapsed representation: 0/0
                    value, reason = math.nan, f"MetricError: {exc}"
                done[(ka, kb)] = (value, reason)
            rows.append((ka, kb, value, reason))
    return pd.DataFrame(rows, columns=list(CKA_COLUMNS)).astype(
        {"a": "string", "b": "string", "cka": "float64", "reason": "string"}
    )


# ------------------------------------------------------------------------- attention


def _as_attention(weights: Any, name: str) -> torch.Tensor:
    """Validate attention maps; return a float64 tensor of shape (n, heads, q, k)."""
    try:
        if isinstance(weights, torch.Tensor):
            T = weights.detach()
        else:  # a copy where numpy has negative strides (a[:, ::-1]), which torch refuses
            T = torch.as_tensor(np.ascontiguousarray(weights))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise MetricError(
            f"{name} must be a numeric array of shape (n, heads, q, k) or (n, q, k); could "
            f"not convert a {type(weights).__name__}: {exc}"
        ) from None
    shape = tuple(T.shape)
    if T.ndim not in (3, 4):
        raise MetricError(
            f"{name} must have shape (n, heads, q, k) or (n, q, k); got shape {shape}. "
            "Get per-head maps from nn.MultiheadAttention with need_weights=True, "
            "average_attn_weights=False."
        )
    if 0 in shape:
        raise MetricError(f"{name} must be non-empty; got shape {shape}.")
    T = T.double()
    if T.ndim == 3:
        T = T.unsqueeze(1)
    if not bool(torch.isfinite(T).all()):
        raise MetricError(
            f"{name} must be finite; got NaN/Inf (a fully masked query row gives NaN "
            "weights). Drop such rows before measuring."
        )
    low = float(T.min())
    if low < 0.0:
        raise MetricError(
            f"{name} must be non-negative probabilities; got a minimum of {low!r}. Pass "
            "softmax weights, not attention scores or logits."
        )
    worst = float((T.sum(dim=-1) - 1.0).abs().max())
    if worst > _ROW_SUM_TOL:
        raise MetricError(
            f"{name} rows (the last, key axis) must sum to 1; got a row off by {worst:.3g}. "
            "Pass softmax weights over the keys, with the keys last."
        )
    return T


def attention_entropy(weights: Any) -> NDArray[np.float64]:
    """Mean Shannon entropy of attention distributions, per head, in nats.

    For every sample and query position the attention row p over the k keys has
    entropy H(p) = −Σ_j p_j ln p_j (natural log, 0 ln 0 = 0), between 0 (all weight on
    one key) and ln k (uniform attention). The result averages H over samples and
    queries.

    Parameters
    ----------
    weights : ndarray or torch.Tensor of shape (n, heads, q, k) or (n, q, k)
        Attention probabilities (rows over keys sum to 1), e.g. from
        ``nn.MultiheadAttention(..., need_weights=True, average_attn_weights=False)``.
        A 3-D input is one head.

    Returns
    -------
    ndarray of shape (heads,), float64
        Mean entropy of each head, in nats, in [0, ln k].

    Raises
    ------
    MetricError
        If ``weights`` is not 3-D/4-D, is empty, holds NaN/Inf or negative values, or
        has a row whose sum differs from 1 by more than 1e-3.

    References
    ----------
    .. [1] Clark, K., Khandelwal, U., Levy, O. & Manning, C. D. (2019). What does BERT
       look at? An analysis of BERT's attention. BlackboxNLP, 276-286 (sec. 3.3).

    Examples
    --------
    Uniform attention over 4 keys has entropy ln 4; one-hot attention has entropy 0:

    >>> import numpy as np
    >>> uniform = np.full((2, 3, 4), 0.25)
    >>> bool(np.isclose(attention_entropy(uniform)[0], np.log(4)))
    True
    >>> attention_entropy(np.eye(4)[None, None])
    array([0.])
    """
    T = _as_attention(weights, "weights")
    entropy = torch.special.entr(T).sum(dim=-1)  # (n, heads, q)
    result: NDArray[np.float64] = entropy.mean(dim=(0, 2)).cpu().numpy()
    return result


@dataclass(frozen=True, eq=False)
class AttentionSimilarity:
    """How much two sets of attention maps on the same inputs differ, per head.

    Attributes
    ----------
    js_divergence : ndarray of shape (heads,), float64
        Jensen-Shannon divergence between corresponding attention rows (same sample,
        head and query), averaged over samples and queries, in nats: 0 for identical
        maps, at most ln 2 (disjoint supports).
    correlation : ndarray of shape (heads,), float64
        Pearson correlation between the two heads' maps flattened over samples, queries
        and keys: 1 for identical maps. NaN when either map is constant (uniform
        attention, standard deviation below 1e-6), where correlation is undefined.
    """

    js_divergence: NDArray[np.float64]
    correlation: NDArray[np.float64]


def attention_similarity(w_a: Any, w_b: Any) -> AttentionSimilarity:
    """Compare attention patterns of two checkpoints (or heads) on the same inputs.

    For corresponding rows p (from ``w_a``) and q (from ``w_b``) with m = (p + q) / 2,

        JS(p, q) = H(m) − (H(p) + H(q)) / 2    (natural log; Lin 1991),

    the measure Clark et al. (2019) use to compare BERT's heads. Its square root is a
    metric; it is bounded by ln 2 and needs no smoothing of zero weights, unlike the KL
    divergence. The Pearson correlation of the flattened maps is reported alongside as a
    scale-free summary of the same comparison.

    Parameters
    ----------
    w_a, w_b : ndarray or torch.Tensor of shape (n, heads, q, k) or (n, q, k)
        Attention probabilities of the same inputs, same shape (see
        :func:`attention_entropy`).

    Returns
    -------
    AttentionSimilarity
        ``js_divergence`` and ``correlation`` per head.

    Raises
    ------
    MetricError
        If either input is invalid (see :func:`attention_entropy`) or their shapes
        differ.

    References
    ----------
    .. [1] Lin, J. (1991). Divergence measures based on the Shannon entropy. IEEE Trans.
       Inf. Theory 37(1), 145-151.
    .. [2] Clark, K., Khandelwal, U., Levy, O. & Manning, C. D. (2019). What does BERT
       look at? An analysis of BERT's attention. BlackboxNLP, 276-286 (sec. 6).

    Examples
    --------
    Attention on disjoint keys has the maximal divergence ln 2:

    >>> import numpy as np
    >>> a = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # (n=1, q=2, k=2)
    >>> s = attention_similarity(a, a[:, ::-1, :])
    >>> bool(np.isclose(s.js_divergence[0], np.log(2))), s.correlation.round(6)
    (True, array([-1.]))
    >>> attention_similarity(a, a).js_divergence
    array([0.])
    """
    A = _as_attention(w_a, "w_a")
    B = _as_attention(w_b, "w_b").to(A.device)
    if A.shape != B.shape:
        raise MetricError(
            f"w_b must have the shape of w_a {tuple(A.shape)}; got {tuple(B.shape)}. "
            "Compare maps of the same module on the same probe inputs."
        )
    entr = torch.special.entr
    M = 0.5 * (A + B)
    js = (entr(M).sum(-1) - 0.5 * (entr(A).sum(-1) + entr(B).sum(-1))).clamp_min(0.0)
    js_mean = js.mean(dim=(0, 2)).cpu().numpy()
    heads = A.shape[1]
    fa = A.transpose(0, 1).reshape(heads, -1)
    fb = B.transpose(0, 1).reshape(heads, -1)
    ca = fa - fa.mean(dim=1, keepdim=True)
    cb = fb - fb.mean(dim=1, keepdim=True)
    sa, sb = ca.square().mean(dim=1).sqrt(), cb.square().mean(dim=1).sqrt()
    defined = (sa > _CONSTANT_STD) & (sb > _CONSTANT_STD)
    denom = torch.where(defined, sa * sb, torch.ones_like(sa))
    r = ((ca * cb).mean(dim=1) / denom).clamp(-1.0, 1.0)
    r = torch.where(defined, r, torch.full_like(r, math.nan))
    return AttentionSimilarity(js_divergence=js_mean, correlation=r.cpu().numpy())


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, eq=False)
class FilterSimilarity:
    """Cosine similarity of the filters of one layer at two checkpoints.

    Attributes
    ----------
    matched : ndarray of shape (out,), float64
        cos(a_i, b_i): filter i of ``w_a`` against filter i of ``w_b``.
    permuted : ndarray of shape (out,), float64
        cos(a_i, b_π(i)) under the permutation π maximising the total similarity, which
        undoes a relabelling of the layer's output channels.
    permutation : ndarray of shape (out,), int64
        π: filter i of ``w_a`` is matched with filter ``permutation[i]`` of ``w_b``.
    """

    matched: NDArray[np.float64]
    permuted: NDArray[np.float64]
    permutation: NDArray[np.int64]

    @property
    def mean_matched(self) -> float:
        """Mean of :attr:`matched`."""
        return float(self.matched.mean())

    @property
    def mean_permuted(self) -> float:
        """Mean of :attr:`permuted` (>= :attr:`mean_matched`)."""
        return float(self.permuted.mean())


def _as_filters(w: Any, name: str) -> tuple[NDArray[np.float64], tuple[int, ...]]:
    """Validate weights (out, in, *kernel); return them as (out, in * prod(kernel)) and
    their original shape."""
    arr = w.detach().cpu().double().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
    if arr.ndim < 2 or arr.size == 0:
        raise MetricError(
            f"{name} must be non-empty layer weights of shape (out, in, *kernel); got shape "
            f"{arr.shape}. Pass conv.weight (or linear.weight), not a bias."
        )
    flat = as_2d_float(arr.reshape(arr.shape[0], -1), name=name)
    return np.asarray(flat, dtype=np.float64), tuple(arr.shape)


def filter_similarity(w_a: Any, w_b: Any) -> FilterSimilarity:
    """Per-filter cosine similarity of two weight tensors, by index and after matching.

    Each output filter (``w[i]``, all input channels and kernel positions) is a vector.
    ``matched`` compares filters with the same index; ``permuted`` first finds the
    one-to-one assignment of ``w_a``'s filters to ``w_b``'s that maximises the summed
    cosine similarity (Hungarian algorithm, as Li et al. 2016 match units across
    networks), so it is invariant to a permutation of the output channels. Cosine is
    signed: a negated filter scores −1. By convention a zero filter has similarity 1
    with a zero filter and 0 with any other.

    The input-channel axis is compared as is: a permutation of the *previous* layer's
    channels is not undone.

    Parameters
    ----------
    w_a, w_b : ndarray or torch.Tensor of shape (out, in, *kernel)
        Weights of the same layer at two checkpoints (``conv.weight``; a Linear
        weight (out, in) works too), same shape.

    Returns
    -------
    FilterSimilarity
        ``matched``, ``permuted``, ``permutation`` and their means.

    Raises
    ------
    MetricError
        If an input has fewer than 2 dimensions, is empty or non-finite, or the shapes
        differ.

    References
    ----------
    .. [1] Li, Y., Yosinski, J., Clune, J., Lipson, H. & Hopcroft, J. (2016). Convergent
       learning: do different neural networks learn the same representations? ICLR.
    .. [2] Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval
       Research Logistics Quarterly 2(1-2), 83-97.

    Examples
    --------
    Swapping two filters leaves the matched similarity at 1 but not the index one:

    >>> import numpy as np
    >>> w = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # (out=2, in=1, k=2)
    >>> s = filter_similarity(w, w[::-1])
    >>> s.matched, s.permuted, s.permutation
    (array([0., 0.]), array([1., 1.]), array([1, 0]))
    """
    A, shape_a = _as_filters(w_a, "w_a")
    B, shape_b = _as_filters(w_b, "w_b")
    if shape_a != shape_b:
        raise MetricError(
            f"w_b must have the shape of w_a {shape_a}; got {shape_b}. Compare the same "
            "layer at two checkpoints."
        )
    na = np.linalg.norm(A, axis=1)
    nb = np.linalg.norm(B, axis=1)
    za, zb = na == 0.0, nb == 0.0
    Ahat = A / np.where(za, 1.0, na)[:, None]
    Bhat = B / np.where(zb, 1.0, nb)[:, None]
    C = np.clip(Ahat @ Bhat.T, -1.0, 1.0)
    C[np.outer(za, zb)] = 1.0  # two zero filters are the same filter
    rows, cols = linear_sum_assignment(C, maximize=True)
    order = np.argsort(rows)
    perm = np.asarray(cols[order], dtype=np.int64)
    idx = np.arange(C.shape[0])
    return FilterSimilarity(
        matched=np.asarray(C[idx, idx], dtype=np.float64),
        permuted=np.asarray(C[idx, perm], dtype=np.float64),
        permutation=perm,
    )


# ----------------------------------------------------------------------- hidden units


@dataclass(frozen=True, eq=False)
class HiddenUnitStats:
    """Activation statistics of the units of one layer over a set of inputs.

    Attributes
    ----------
    n_samples, n_units : int
        Shape of the activations.
    dead : ndarray of shape (n_units,), bool
        True for a unit whose activation is <= 0 for every sample.
    unit_mean, unit_std : ndarray of shape (n_units,), float64
        Mean and standard deviation (ddof=0) of each unit over the samples.
    dead_fraction : float
        Fraction of dead units, in [0, 1].
    sparsity : float
        Fraction of exact zeros over all n_samples × n_units activations.
    mean_activation : float
        Mean of all activations (= mean of ``unit_mean``).
    std_unit_mean : float
        Standard deviation (ddof=0) of ``unit_mean`` across units.
    mean_unit_std : float
        Mean of ``unit_std`` across units.
    """

    n_samples: int
    n_units: int
    dead: NDArray[np.bool_]
    unit_mean: NDArray[np.float64]
    unit_std: NDArray[np.float64]
    dead_fraction: float
    sparsity: float
    mean_activation: float
    std_unit_mean: float
    mean_unit_std: float


def hidden_unit_stats(acts: Any) -> HiddenUnitStats:
    """Dead units, sparsity and per-unit moments of a layer's activations.

    A unit is **dead** when its activation is <= 0 for every sample. On post-ReLU
    activations this is a unit that outputs exactly 0 on every input and so passes no
    gradient (the "dying ReLU" of Lu et al. 2020); on pre-activations (a Linear
    output) it is a unit that the ReLU after it would silence on every input. For other
    nonlinearities it reads "never positive". **Sparsity** is the fraction of exact
    zeros (Glorot et al. 2011), meaningful after a ReLU; it is 0 for most
    pre-activations.

    Parameters
    ----------
    acts : ndarray or torch.Tensor of shape (n_samples, n_units)
        Activations, rows are inputs. Reduce conv or token activations first, e.g.
        ``reduce_activation(A, rule="per_position")`` to treat every position as a sample
        and every channel as a unit.

    Returns
    -------
    HiddenUnitStats
        Per-unit arrays and scalar summaries, computed in float64.

    Raises
    ------
    MetricError
        If ``acts`` is not 2-D, is empty, or holds NaN/Inf.

    References
    ----------
    .. [1] Glorot, X., Bordes, A. & Bengio, Y. (2011). Deep sparse rectifier neural
       networks. AISTATS, PMLR 15, 315-323.
    .. [2] Lu, L., Shin, Y., Su, Y. & Karniadakis, G. E. (2020). Dying ReLU and
       initialization: theory and numerical examples. Commun. Comput. Phys. 28(5).

    Examples
    --------
    Unit 1 never fires; half of all activations are zero:

    >>> import numpy as np
    >>> s = hidden_unit_stats(np.array([[1.0, 0.0], [3.0, 0.0]]))
    >>> s.dead.tolist(), s.dead_fraction, s.sparsity, s.mean_activation
    ([False, True], 0.5, 0.5, 1.0)
    >>> s.unit_mean.tolist(), s.unit_std.tolist()
    ([2.0, 0.0], [1.0, 0.0])
    """
    X = as_2d_float(acts, name="acts")
    A = X.detach().cpu().double().numpy() if isinstance(X, torch.Tensor) else X
    A = np.asarray(A, dtype=np.float64)
    n, units = A.shape
    dead = np.asarray((A <= 0.0).all(axis=0), dtype=np.bool_)
    unit_mean = A.mean(axis=0)
    unit_std = A.std(axis=0)
    return HiddenUnitStats(
        n_samples=int(n),
        n_units=int(units),
        dead=dead,
        unit_mean=unit_mean,
        unit_std=unit_std,
        dead_fraction=float(dead.mean()),
        sparsity=float((A == 0.0).mean()),
        mean_activation=float(unit_mean.mean()),
        std_unit_mean=float(unit_mean.std()),
        mean_unit_std=float(unit_std.mean()),
    )
