"""The single home of input checks.

Public entry points call these once; private ``_guts`` functions then trust their input.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import torch
from numpy.typing import NDArray

from traindyn.exceptions import ConfigError, MetricError

__all__ = ["Array", "as_2d_float", "check_in", "check_min_samples", "check_positive"]

Array: TypeAlias = NDArray[np.floating[Any]] | torch.Tensor
"""A 2-D float matrix as numpy array or torch tensor (any device)."""

_HALF = (torch.float16, torch.bfloat16)


def as_2d_float(X: Any, *, name: str = "X", check_finite: bool = True) -> Array:
    """Return ``X`` as a clean 2-D floating matrix of shape (n_samples, n_features).

    numpy input becomes a float64 ndarray (float32 is kept: sums are accumulated in
    float64 by the callers). A torch tensor stays a tensor on its own device, detached;
    float16 / bfloat16 are upcast to float32 because their 8-11 bit mantissas make Gram
    matrices meaningless. Lists and other array-likes go through ``np.asarray``.

    Raises
    ------
    MetricError
        If ``X`` is not 2-D, is empty, or (with ``check_finite``) holds NaN or Inf.
    """
    if isinstance(X, torch.Tensor):
        T = X.detach()
        if T.dtype in _HALF:
            T = T.float()
        elif not T.is_floating_point():
            T = T.double()
        _check_shape(tuple(T.shape), name)
        if check_finite and not bool(torch.isfinite(T).all()):
            n_bad = int((~torch.isfinite(T)).sum())
            raise MetricError(
                f"{name} must be finite; got {n_bad} NaN/Inf value(s) in a {tuple(T.shape)} "
                "tensor. Check the layer for overflow or a diverged run."
            )
        return T
    try:
        A = np.asarray(X)
        if A.dtype not in (np.float32, np.float64):
            A = A.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricError(
            f"{name} must be a numeric array of shape (n_samples, n_features); could not convert "
            f"a {type(X).__name__}: {exc}"
        ) from exc
    _check_shape(A.shape, name)
    if check_finite and not np.isfinite(A).all():
        n_bad = int((~np.isfinite(A)).sum())
        raise MetricError(
            f"{name} must be finite; got {n_bad} NaN/Inf value(s) in a {A.shape} array. "
            "Check the layer for overflow or a diverged run."
        )
    return A


def _check_shape(shape: tuple[int, ...], name: str) -> None:
    if len(shape) != 2:
        hint = (
            " Reduce conv/token activations first with traindyn.metrics.reduce_activation."
            if len(shape) > 2
            else " Use X.reshape(-1, 1) for a single feature."
        )
        raise MetricError(f"{name} must be 2-D (n_samples, n_features); got shape {shape}.{hint}")
    if shape[0] == 0 or shape[1] == 0:
        raise MetricError(f"{name} must be non-empty; got shape {shape}.")


def check_min_samples(X: Array, minimum: int, *, name: str = "X", what: str = "") -> None:
    """Raise :class:`MetricError` unless ``X`` has at least ``minimum`` rows."""
    n = int(X.shape[0])
    if n < minimum:
        purpose = f" for {what}" if what else ""
        raise MetricError(
            f"{name} must have at least {minimum} samples{purpose}; got {n}. "
            "Use a larger probe set or batch."
        )


def check_positive(value: float, *, name: str, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is positive (or >= 0 with ``allow_zero``)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not np.isfinite(value):
        expected = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {expected}; got {value!r}.")


def check_in(value: Any, allowed: tuple[Any, ...] | list[Any], *, name: str) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``, listing them."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{name} must be one of {options}; got {value!r}.")
