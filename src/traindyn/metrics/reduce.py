"""Turn conv and token activations into the 2-D (n_samples, n_features) the metrics take.

Rules (``rule``), for channels-first input (n, c, *spatial) such as Conv1d/2d/3d outputs
(``layout="channels_first"``), with P = ∏spatial:

=================  ===================  ================================================
rule               output shape         meaning
=================  ===================  ================================================
``"mean"``         (n, c)               average over positions: one vector per input
``"flatten"``      (n, c·P)             every (channel, position) is a feature
``"per_position"`` (n·P, c)             every position of every input is a sample
=================  ===================  ================================================

For channels-last input (n, *positions, d) such as transformer tokens (n, t, d)
(``layout="channels_last"``) the same rules give (n, d), (n, t·d) and (n·t, d).
``"flatten"`` keeps everything but makes n_features large and mixes position with
content; ``"mean"`` is the usual choice for spectra of conv layers; ``"per_position"``
asks how many directions a single position's feature vector uses. Rows of
``"per_position"`` are ordered input-major (all positions of input 0 first).
The rule changes every metric's value, so the tracker records it with the run.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from traindyn._validation import Array, check_in
from traindyn.exceptions import MetricError

__all__ = ["Layout", "ReduceRule", "reduce_activation"]

ReduceRule = Literal["flatten", "mean", "per_position"]
Layout = Literal["channels_first", "channels_last"]
_RULES: tuple[ReduceRule, ...] = ("flatten", "mean", "per_position")
_LAYOUTS: tuple[Layout, ...] = ("channels_first", "channels_last")


def reduce_activation(
    A: Any, *, rule: ReduceRule = "mean", layout: Layout = "channels_first"
) -> Array:
    """Reduce an activation tensor of any rank >= 2 to (n_samples, n_features).

    Parameters
    ----------
    A : ndarray or torch.Tensor of shape (n, c, *spatial) or (n, *positions, d)
        Activations with the batch first. 2-D float input is returned unchanged (the
        same object). A torch tensor stays a tensor on its device (no copy where a view
        suffices); integer input becomes float64.
    rule : {"mean", "flatten", "per_position"}, default "mean"
        See the module docstring.
    layout : {"channels_first", "channels_last"}, default "channels_first"
        Where the feature axis is: axis 1 (PyTorch conv outputs) or the last axis
        (token activations, channels-last images).

    Returns
    -------
    ndarray or torch.Tensor
        2-D, same kind and device as ``A``.

    Raises
    ------
    MetricError
        If ``A`` has fewer than 2 dimensions or an empty axis.
    ConfigError
        If ``rule`` or ``layout`` is not one of the allowed values.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.arange(24, dtype=float).reshape(2, 3, 2, 2)  # (n, c, h, w)
    >>> reduce_activation(A).shape, reduce_activation(A, rule="flatten").shape
    ((2, 3), (2, 12))
    >>> reduce_activation(A, rule="per_position").shape
    (8, 3)
    >>> reduce_activation(A)[0]  # channel means of input 0: (0+1+2+3)/4, ...
    array([1.5, 5.5, 9.5])
    """
    check_in(rule, _RULES, name="rule")
    check_in(layout, _LAYOUTS, name="layout")
    arr: Array
    if isinstance(A, torch.Tensor):
        arr = A if A.is_floating_point() else A.double()
    else:
        a = np.asarray(A)
        arr = a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)
    shape = tuple(arr.shape)
    if len(shape) < 2:
        raise MetricError(
            f"A must have at least 2 dimensions (n_samples, ...); got shape {shape}. "
            "Use A.reshape(-1, 1) for one feature per sample, or A[None] for one sample."
        )
    if len(shape) == 2:
        return arr
    if 0 in shape:
        raise MetricError(f"A must have no empty axis; got shape {shape}.")
    n = shape[0]
    out: Array
    if layout == "channels_first":
        c = shape[1]
        if rule == "mean":
            out = arr.reshape(n, c, -1).mean(-1)
        elif rule == "flatten":
            out = arr.reshape(n, -1)
        elif isinstance(arr, torch.Tensor):
            out = arr.reshape(n, c, -1).transpose(1, 2).reshape(-1, c)
        else:
            out = np.swapaxes(arr.reshape(n, c, -1), 1, 2).reshape(-1, c)
        return out
    d = shape[-1]
    if rule == "mean":
        out = arr.reshape(n, -1, d).mean(1)
    elif rule == "flatten":
        out = arr.reshape(n, -1)
    else:
        out = arr.reshape(-1, d)
    return out
