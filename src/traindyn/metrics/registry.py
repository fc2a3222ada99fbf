"""The metric registry: names, metadata and a batch :func:`measure` that never raises.

The registry's keys are the strings stored in the ``metric`` column of a run's
``metrics/*.parquet`` table, so they are part of the store contract: renaming one breaks
every existing run. Every registered metric maps a 2-D representation (n_samples,
n_features) to one float, with the options fixed to the defaults stated in its
:class:`MetricSpec` description (q = 0.9, k = 20, discard_fraction = 0.1, Betti threshold
2 × the 90th percentile of minimum-spanning-tree edges, on at most 400
greedy-subsampled points).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

from traindyn._validation import Array, as_2d_float, check_in, check_min_samples
from traindyn.exceptions import ConfigError
from traindyn.metrics.intrinsic_dim import _mle_guts, _twonn_guts, mle_dimension, twonn_dimension
from traindyn.metrics.reduce import _LAYOUTS, _RULES, Layout, ReduceRule, reduce_activation
from traindyn.metrics.spectral import (
    SPECTRAL_METRICS,
    _spectral_guts,
    effective_rank,
    energy_rank,
    nuclear_norm_ratio,
    participation_ratio,
    stable_rank,
)
from traindyn.metrics.topology import _relative_betti_guts, relative_betti_numbers

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "Measurement",
    "MetricFamily",
    "MetricSpec",
    "get_metric",
    "measure",
]

MetricFamily = Literal["spectral", "intrinsic_dimension", "topology"]

# Defaults of the registered metrics; the reasons are in the functions' docstrings.
_TWONN_DISCARD = 0.1  # Facco et al. 2017
_MLE_K = 20  # Levina & Bickel 2005 use k = 10-20
_BETTI_FACTOR = 2.0  # × 90th-percentile MST edge: see relative_betti_numbers
_BETTI_QUANTILE = 0.9
_BETTI_MAX_POINTS = 400  # ripser at maxdim=1 stays near 0.1 s


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric.

    Attributes
    ----------
    name : str
        Registry key and value of the ``metric`` column.
    family : {"spectral", "intrinsic_dimension", "topology"}
        Metrics of the ``"spectral"`` family share one eigendecomposition in
        :func:`measure`.
    min_samples : int
        Fewest rows for which the metric is defined (more unique rows may be needed
        when there are duplicates).
    description : str
        One line: what it measures and with which fixed options.
    reference : str
        The paper that defines it.
    function : callable
        ``function(X) -> float`` for X of shape (n_samples, n_features); validates X.
    """

    name: str
    family: MetricFamily
    min_samples: int
    description: str
    reference: str
    function: Callable[[Any], float]


@dataclass(frozen=True)
class Measurement:
    """One metric's value on one representation, or NaN and the reason it failed.

    Attributes
    ----------
    metric : str
        Registry name.
    value : float
        The value, or NaN if the metric could not be computed.
    reason : str or None
        ``None`` on success, else ``"<ExceptionType>: <message>"``.
    note : str or None
        Something worth knowing about a valid value (e.g. duplicate rows were dropped
        before an intrinsic-dimension estimate); ``None`` usually.
    """

    metric: str
    value: float
    reason: str | None
    note: str | None = None


def _betti_0(X: Any) -> float:
    """β₀ at 2 × the point spacing (see :func:`~traindyn.metrics.relative_betti_numbers`)."""
    return float(
        relative_betti_numbers(X, _BETTI_FACTOR, maxdim=0, max_points=_BETTI_MAX_POINTS)[0]
    )


def _betti_1(X: Any) -> float:
    """β₁ at 2 × the point spacing (see :func:`~traindyn.metrics.relative_betti_numbers`)."""
    return float(
        relative_betti_numbers(X, _BETTI_FACTOR, maxdim=1, max_points=_BETTI_MAX_POINTS)[1]
    )


_ROY = "Roy & Vetterli (2007), EUSIPCO"
_JOLLIFFE = "Jolliffe (2002), Principal Component Analysis, 2nd ed., §6.1.1"
_HORN = "Horn & Johnson (2013), Matrix Analysis, 2nd ed. (nuclear and spectral norms)"
_SPECS = (
    MetricSpec(
        "participation_ratio",
        "spectral",
        2,
        "(Σλ)²/Σλ² of the covariance spectrum",
        "Gao et al. (2017), bioRxiv 214262",
        participation_ratio,
    ),
    MetricSpec("effective_rank", "spectral", 2, "exp(entropy of σ_i/Σσ)", _ROY, effective_rank),
    MetricSpec(
        "stable_rank",
        "spectral",
        2,
        "Σλ/λ_max",
        "Rudelson & Vershynin (2007), J. ACM 54(4)",
        stable_rank,
    ),
    MetricSpec(
        "energy_rank",
        "spectral",
        2,
        "fewest components holding 90% of the variance (q=0.9)",
        _JOLLIFFE,
        energy_rank,
    ),
    MetricSpec("nuclear_norm_ratio", "spectral", 2, "Σσ/σ_max", _HORN, nuclear_norm_ratio),
    MetricSpec(
        "twonn_dimension",
        "intrinsic_dimension",
        3,
        "TwoNN intrinsic dimension (discard_fraction=0.1)",
        "Facco et al. (2017), Sci. Rep. 7:12140",
        twonn_dimension,
    ),
    MetricSpec(
        "mle_dimension",
        "intrinsic_dimension",
        _MLE_K + 1,
        "Levina-Bickel MLE intrinsic dimension, k=20, MacKay-Ghahramani average",
        "Levina & Bickel (2005), NIPS 17",
        mle_dimension,
    ),
    MetricSpec(
        "betti_0",
        "topology",
        2,
        "Rips β₀: components persisting > 2 × q90 MST edge (≤400 greedy points)",
        "Bauer (2021), J. Appl. Comput. Topol. 5",
        _betti_0,
    ),
    MetricSpec(
        "betti_1",
        "topology",
        2,
        "Rips β₁: loops persisting > 2 × q90 MST edge (≤400 greedy points)",
        "Bauer (2021), J. Appl. Comput. Topol. 5",
        _betti_1,
    ),
)

METRICS: Mapping[str, MetricSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every registered metric by name (read-only)."""

DEFAULT_METRICS: tuple[str, ...] = SPECTRAL_METRICS
"""The metrics a tracker records unless told otherwise: the five spectral ones (cheap,
one eigendecomposition)."""

# Guts on already-validated input, so that measure() validates X once. The second
# argument collects notes (dropped duplicates) instead of warning: measure() runs on the
# tracker's worker thread, where a warning would be lost.
_CLEAN: Mapping[str, Callable[[Array, list[str]], float]] = MappingProxyType(
    {
        "twonn_dimension": lambda A, notes: _twonn_guts(A, _TWONN_DISCARD, notes),
        "mle_dimension": lambda A, notes: _mle_guts(A, _MLE_K, notes),
        "betti_0": lambda A, notes: float(
            _relative_betti_guts(A, _BETTI_FACTOR, _BETTI_QUANTILE, 0, _BETTI_MAX_POINTS)[0]
        ),
        "betti_1": lambda A, notes: float(
            _relative_betti_guts(A, _BETTI_FACTOR, _BETTI_QUANTILE, 1, _BETTI_MAX_POINTS)[1]
        ),
    }
)

# What bad data can raise: MetricError, ValueError from ripser/LAPACK, torch's
# LinAlgError and OutOfMemoryError (RuntimeErrors), overflow (ArithmeticError).
_DATA_ERRORS = (ValueError, ArithmeticError, RuntimeError)
_MAX_REASON = 300


def get_metric(name: str) -> MetricSpec:
    """The :class:`MetricSpec` registered under ``name``.

    Raises
    ------
    ConfigError
        If no metric has that name; the message lists the valid names.

    Examples
    --------
    >>> get_metric("participation_ratio").family
    'spectral'
    """
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(METRICS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        valid = ", ".join(repr(k) for k in METRICS)
        raise ConfigError(f"metric must be one of {valid}; got {name!r}.{hint}") from None


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__.lstrip('_')}: {exc}"  # torch's is "_LinAlgError"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def measure(
    X: Any,
    names: Iterable[str] | str = DEFAULT_METRICS,
    *,
    reduce_rule: ReduceRule | None = None,
    layout: Layout = "channels_first",
) -> list[Measurement]:
    """Compute several registered metrics on one representation, never raising on bad data.

    X is validated once. All requested spectral metrics come from ONE
    eigendecomposition; the others are computed one by one. A metric that cannot be
    computed (too few samples, NaN/Inf, duplicates only, a numerical failure) gives
    ``value=nan`` and a short ``reason``; the other metrics are unaffected.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features), or higher rank
        The representation; higher-rank activations need ``reduce_rule``.
    names : iterable of str or str, default DEFAULT_METRICS
        Registry names, in the order of the result.
    reduce_rule : {"mean", "flatten", "per_position"}, optional
        If given, X is first reduced with :func:`~traindyn.metrics.reduce_activation`
        (2-D input is unchanged).
    layout : {"channels_first", "channels_last"}, default "channels_first"
        Layout for ``reduce_rule``.

    Returns
    -------
    list of Measurement
        One per name, in order.

    Raises
    ------
    ConfigError
        If a name is not registered, or ``reduce_rule``/``layout`` is invalid: these
        are programming errors, caught when a tracker is configured.

    Notes
    -----
    Nothing is warned (this runs on the tracker's worker thread): dropped duplicate
    rows are reported in :attr:`Measurement.note` instead.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.vstack([np.eye(3), -np.eye(3)])
    >>> [(m.metric, round(m.value, 10), m.reason) for m in measure(X, ["stable_rank"])]
    [('stable_rank', 3.0, None)]
    >>> bad = measure(X[:1], ["stable_rank"])[0]
    >>> bad.value, bad.reason.split(";")[0]
    (nan, 'MetricError: X must have at least 2 samples for stable_rank')
    """
    wanted = [names] if isinstance(names, str) else list(names)
    for name in wanted:
        get_metric(name)
    if reduce_rule is not None:
        check_in(reduce_rule, _RULES, name="reduce_rule")
        check_in(layout, _LAYOUTS, name="layout")
    results: dict[str, Measurement] = {}
    try:
        A = X if reduce_rule is None else reduce_activation(X, rule=reduce_rule, layout=layout)
        A = as_2d_float(A)
    except _DATA_ERRORS as exc:  # MetricError, or ValueError for non-numeric input
        return [Measurement(name, math.nan, _reason(exc)) for name in wanted]

    spectral = [n for n in dict.fromkeys(wanted) if METRICS[n].family == "spectral"]
    if spectral:
        try:
            check_min_samples(A, 2, what=spectral[0] if len(spectral) == 1 else "spectral metrics")
            values = _spectral_guts(A)
            for name in spectral:
                results[name] = _checked(name, values[name])
        except _DATA_ERRORS as exc:
            results.update((n, Measurement(n, math.nan, _reason(exc))) for n in spectral)

    for name in dict.fromkeys(wanted):
        if name in results:
            continue
        notes: list[str] = []
        try:
            check_min_samples(A, METRICS[name].min_samples, what=name)
            result = _checked(name, _CLEAN[name](A, notes))
            results[name] = replace(result, note="; ".join(notes) or None)
        except _DATA_ERRORS as exc:
            results[name] = Measurement(name, math.nan, _reason(exc))
    return [results[name] for name in wanted]


def _checked(name: str, value: float) -> Measurement:
    if math.isfinite(value):
        return Measurement(name, float(value), None)
    return Measurement(name, math.nan, f"non-finite result {value!r}")
