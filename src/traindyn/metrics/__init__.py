"""Pure maths on representations: arrays in, numbers out; no I/O, no global state.

Every function takes ``X`` of shape (n_samples, n_features), rows being samples, as a
numpy array or a torch tensor on any device, and validates it once at the entry.

- :mod:`~traindyn.metrics.spectral`: covariance spectrum and the five rank-like
  summaries (participation ratio, effective, stable and energy rank, nuclear-norm ratio)
  from one eigendecomposition.
- :mod:`~traindyn.metrics.intrinsic_dim`: TwoNN and Levina-Bickel MLE dimension.
- :mod:`~traindyn.metrics.topology`: Vietoris-Rips diagrams and Betti numbers (ripser).
- :mod:`~traindyn.metrics.similarity`: linear CKA between two representations.
- :mod:`~traindyn.metrics.representations`: CKA matrices between checkpoints or layers,
  attention entropy and similarity, conv-filter similarity, hidden-unit statistics.
- :mod:`~traindyn.metrics.reduce`: conv/token activations to 2-D by a named rule.
- :mod:`~traindyn.metrics.registry`: metric names (the ``metric`` column of a run),
  metadata, and :func:`measure`, which returns NaN with a reason instead of raising.
"""

from __future__ import annotations

from traindyn.metrics.intrinsic_dim import DuplicatePointsWarning, mle_dimension, twonn_dimension
from traindyn.metrics.reduce import Layout, ReduceRule, reduce_activation
from traindyn.metrics.registry import (
    DEFAULT_METRICS,
    METRICS,
    Measurement,
    MetricFamily,
    MetricSpec,
    get_metric,
    measure,
)
from traindyn.metrics.representations import (
    CKA_COLUMNS,
    AttentionSimilarity,
    FilterSimilarity,
    HiddenUnitStats,
    attention_entropy,
    attention_similarity,
    cka_matrix,
    filter_similarity,
    hidden_unit_stats,
)
from traindyn.metrics.similarity import linear_cka
from traindyn.metrics.spectral import (
    SPECTRAL_METRICS,
    effective_rank,
    energy_rank,
    nuclear_norm_ratio,
    participation_ratio,
    spectral_metrics,
    spectrum,
    stable_rank,
)
from traindyn.metrics.topology import (
    BettiByClass,
    Subsample,
    betti_by_class,
    betti_numbers,
    persistence_diagrams,
    relative_betti_numbers,
)

__all__ = [
    "CKA_COLUMNS",
    "DEFAULT_METRICS",
    "METRICS",
    "SPECTRAL_METRICS",
    "AttentionSimilarity",
    "BettiByClass",
    "DuplicatePointsWarning",
    "FilterSimilarity",
    "HiddenUnitStats",
    "Layout",
    "Measurement",
    "MetricFamily",
    "MetricSpec",
    "ReduceRule",
    "Subsample",
    "attention_entropy",
    "attention_similarity",
    "betti_by_class",
    "betti_numbers",
    "cka_matrix",
    "effective_rank",
    "energy_rank",
    "filter_similarity",
    "get_metric",
    "hidden_unit_stats",
    "linear_cka",
    "measure",
    "mle_dimension",
    "nuclear_norm_ratio",
    "participation_ratio",
    "persistence_diagrams",
    "reduce_activation",
    "relative_betti_numbers",
    "spectral_metrics",
    "spectrum",
    "stable_rank",
    "twonn_dimension",
]
