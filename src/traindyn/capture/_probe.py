"""The probe set: validation, device placement and chunking, shared by every driver.

The :class:`~traindyn.capture.Tracker` and the post-hoc drivers
(:mod:`~traindyn.capture.posthoc`) feed the same probe through a model; these helpers
make them agree on what a valid probe is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from traindyn.capture.hooks import Capture
from traindyn.exceptions import ProbeError

ROOT_LABEL = "(model)"
"""Layer label of the model itself (its ``named_modules()`` path is the empty string)."""


def model_device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def prepare_probe(probe: Any, device: torch.device) -> tuple[Any, torch.Tensor | None]:
    x, y = probe if isinstance(probe, tuple) and len(probe) == 2 else (probe, None)
    if isinstance(x, torch.Tensor):
        check_probe_tensor(x, "probe x")
        x = x.to(device)
    elif isinstance(x, Mapping):
        x = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in x.items()}
    else:
        raise ProbeError(
            f"probe x must be a tensor or a mapping of tensors; got {type(x).__name__}. "
            "Pass probe=(x, y) with torch tensors."
        )
    n = n_samples(x)
    if n < 2:
        raise ProbeError(
            f"probe must hold at least 2 samples (spectral metrics need a covariance); got {n}."
        )
    if y is not None:
        if not isinstance(y, torch.Tensor):
            raise ProbeError(f"probe y must be a tensor of class indices; got {type(y).__name__}.")
        if y.shape[0] != n:
            raise ProbeError(
                f"probe y must have one target per sample; got {y.shape[0]} targets for {n} inputs."
            )
        if y.is_floating_point():
            raise ProbeError(f"probe y must hold integer class indices; got dtype {y.dtype}.")
        y = y.to(device)
    return x, y


def check_probe_tensor(x: torch.Tensor, name: str) -> None:
    if x.ndim == 0:
        raise ProbeError(f"{name} must have a sample axis; got a 0-d tensor.")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ProbeError(f"{name} must be finite; it holds NaN or Inf values.")


def n_samples(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0])
    for value in x.values():
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    raise ProbeError("probe mapping holds no tensor to count samples from.")


def split_probe(x: Any, size: int | None) -> list[Any]:
    n = n_samples(x)
    if size is None or size >= n:
        return [x]
    if isinstance(x, torch.Tensor):
        return list(torch.split(x, size))
    return [
        {k: (v[i : i + size] if isinstance(v, torch.Tensor) else v) for k, v in x.items()}
        for i in range(0, n, size)
    ]


def layer_output(
    cap: Capture, name: str, n_chunks: int, n: int | None
) -> tuple[torch.Tensor | None, str | None]:
    """A layer's captured activations with ``n`` rows first, or None and why not.

    The checks every driver makes: the layer raised in its hook, did not run, ran more or
    less than once per probe chunk (a reused module has no single representation), or
    does not put the ``n`` samples first (``n`` None: not checked, e.g. batch mode).
    """
    reason = cap.errors.get(name)
    calls = cap.calls.get(name, 0)
    if reason is None and calls == 0:
        reason = "layer did not run during the forward pass"
    elif reason is None and calls != n_chunks:
        reason = (
            f"module ran {calls} times in a pass of {n_chunks} chunk(s); a reused module has "
            "no single representation: measure a distinct module instead"
        )
    acts = None if reason is not None else cap.stacked(name)
    if acts is not None and n is not None and acts.shape[:1] != (n,):
        reason = (
            f"output has shape {tuple(acts.shape)}, not {n} probe samples first; build "
            "sequence-first modules with batch_first=True or pass an output_selector that "
            "puts samples first"
        )
        acts = None
    return acts, reason
