"""The metrics are pure functions: use them on any array or tensor.

Run:  .venv/bin/python examples/metrics_on_arrays.py
"""

from __future__ import annotations

import numpy as np

import traindyn as td

rng = np.random.default_rng(0)
# 2000 points on a 5-dimensional linear subspace of R^50, plus a noisy circle.
plane = rng.standard_normal((2000, 5)) @ np.linalg.qr(rng.standard_normal((50, 5)))[0].T
theta = rng.uniform(0, 2 * np.pi, 300)
circle = np.c_[np.cos(theta), np.sin(theta)] + 0.05 * rng.standard_normal((300, 2))

print("spectral:", {k: round(v, 3) for k, v in td.metrics.spectral_metrics(plane).items()})
print("TwoNN:", round(td.metrics.twonn_dimension(plane), 2), "(true 5)")
print("MLE k=20:", round(td.metrics.mle_dimension(plane, k=20), 2), "(true 5)")
print("Betti numbers of a circle:", td.metrics.betti_numbers(circle, min_persistence=0.5))
rotation = np.linalg.qr(rng.standard_normal((50, 50)))[0]
print("CKA(X, X @ rotation):", round(td.metrics.linear_cka(plane, plane @ rotation), 6))
