"""Post-hoc measurement over a run's saved checkpoints: the tracker's hooks, another driver.

For each chosen checkpoint the weights are loaded **strictly**
(:func:`~traindyn.store.load_checkpoint`: a model that does not fit raises
:class:`~traindyn.exceptions.CheckpointMismatch`, listing every difference), the fixed
probe is passed through the model in eval mode under ``no_grad`` with the same hooks as
the :class:`~traindyn.capture.Tracker` (:func:`~traindyn.capture.capture_activations`),
and activations are reduced to 2-D with the same rule machinery
(:func:`~traindyn.metrics.reduce_activation`) and measured with
:func:`~traindyn.metrics.measure`, which records NaN and a reason instead of raising.

- :func:`measure_checkpoints`: registered metrics per step and layer, the long table of
  ``run.metrics``; optionally on a frozen reference model's features of the model's
  outputs (a "judge" classifier measuring generated samples), and per class with the
  mean over classes.
- :func:`checkpoint_representations`: the 2-D representations themselves.
- :func:`probe_noise`: each metric's spread across probe sets of the same size at each
  checkpoint (half-sampling), the probe-resampling noise floor of ``traindyn analyze``.
- :func:`compare_checkpoints`: linear CKA across checkpoints and across layers, plus
  attention entropy and similarity (``nn.MultiheadAttention``), conv filter similarity
  and hidden-unit statistics, as a :class:`CheckpointComparison`.
- :func:`write_checkpoint_comparison`: the only function here that writes, into
  ``<run>/analysis/``.

Every function leaves the model as it found it: weights, train/eval flags and the torch
RNG state are restored, and no hook stays registered.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from traindyn._validation import check_in
from traindyn.capture._probe import (
    ROOT_LABEL,
    layer_output,
    model_device,
    n_samples,
    prepare_probe,
    split_probe,
)
from traindyn.capture.hooks import (
    Capture,
    LayerSelector,
    Layout,
    OutputSelector,
    capture_activations,
    infer_layout,
    resolve_layers,
    select_output,
)
from traindyn.capture.tracker import ReduceRule
from traindyn.exceptions import ConfigError, MetricError, ProbeError, StoreError
from traindyn.metrics import DEFAULT_METRICS, Measurement, get_metric, measure, reduce_activation
from traindyn.metrics.representations import (
    attention_entropy,
    attention_similarity,
    cka_matrix,
    filter_similarity,
    hidden_unit_stats,
)
from traindyn.store import Run, open_run
from traindyn.store.checkpoints import load_checkpoint

__all__ = [
    "CheckpointComparison",
    "checkpoint_representations",
    "compare_checkpoints",
    "measure_checkpoints",
    "probe_noise",
    "write_checkpoint_comparison",
]

_RULES: tuple[ReduceRule, ...] = ("mean", "flatten", "per_position")
# CKA compares rows: both rules keep one row per probe input in every layer.
_CKA_RULES: tuple[ReduceRule, ...] = ("mean", "flatten")
_CONVS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Modules whose output is a post-activation hidden layer (hidden-unit statistics).
_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Tanh,
    nn.Sigmoid,
)
_DATA_ERRORS = (ValueError, ArithmeticError, RuntimeError)

RunLike = Run | str | os.PathLike[str]

# Declared schemas of the tables (column -> pandas dtype).
_METRICS_SCHEMA = {
    "step": "int64",
    "layer": "string",
    "metric": "string",
    "value": "float64",
    "reason": "string",
}
_PER_CLASS_SCHEMA = {
    "step": "int64",
    "layer": "string",
    "class": "string",
    "metric": "string",
    "value": "float64",
    "reason": "string",
}
_ACROSS_STEPS = {
    "layer": "string",
    "step_a": "int64",
    "step_b": "int64",
    "cka": "float64",
    "reason": "string",
}
_ACROSS_LAYERS = {
    "step": "int64",
    "layer_a": "string",
    "layer_b": "string",
    "cka": "float64",
    "reason": "string",
}
_ATTN_ENTROPY = {
    "step": "int64",
    "module": "string",
    "head": "int64",
    "entropy": "float64",
    "max_entropy": "float64",
}
_ATTN_SIMILARITY = {
    "module": "string",
    "step_a": "int64",
    "step_b": "int64",
    "head": "int64",
    "js_divergence": "float64",
    "correlation": "float64",
}
_FILTERS = {
    "module": "string",
    "step_a": "int64",
    "step_b": "int64",
    "n_filters": "int64",
    "matched": "float64",
    "permuted": "float64",
}
_PROBE_NOISE = {
    "step": "int64",
    "layer": "string",
    "metric": "string",
    "noise": "float64",
}
_HIDDEN = {
    "step": "int64",
    "module": "string",
    "n_units": "int64",
    "dead_fraction": "float64",
    "sparsity": "float64",
    "mean_activation": "float64",
    "std_unit_mean": "float64",
    "mean_unit_std": "float64",
}


def _frame(rows: Sequence[tuple[Any, ...]], schema: Mapping[str, str]) -> pd.DataFrame:
    """A table with the declared columns and dtypes, also when there are no rows."""
    return pd.DataFrame(list(rows), columns=list(schema)).astype(dict(schema))


@dataclass(frozen=True, eq=False)
class CheckpointComparison:
    """Representations and weights of a few checkpoints compared with each other.

    Every table has declared columns (empty, with the same columns, when the model has
    no module of the kind). Step pairs ``(step_a, step_b)`` of the similarity tables have
    ``step_a < step_b``; the CKA tables hold every ordered pair (square matrices in long
    form, diagonal included).

    Attributes
    ----------
    steps : tuple of int
        The compared checkpoints, ascending.
    layers : tuple of str
        Layer labels of the CKA tables (``named_modules()`` paths; ``"(model)"`` for the
        model itself).
    reduce : {"mean", "flatten"}
        How conv/token activations were reduced to one row per probe input.
    across_steps : DataFrame
        ``layer, step_a, step_b, cka, reason``: linear CKA of each layer between
        checkpoints. ``cka`` is NaN (with the reason) for a collapsed representation.
    across_layers : DataFrame
        ``step, layer_a, layer_b, cka, reason``: linear CKA between layers at each step.
    attention_entropy : DataFrame
        ``step, module, head, entropy, max_entropy``: mean attention entropy in nats of
        each head of every ``nn.MultiheadAttention``; ``max_entropy`` is ln(keys).
    attention_similarity : DataFrame
        ``module, step_a, step_b, head, js_divergence, correlation``: see
        :func:`~traindyn.metrics.representations.attention_similarity`.
    filter_similarity : DataFrame
        ``module, step_a, step_b, n_filters, matched, permuted``: mean cosine similarity
        of every ``nn.Conv1d/2d/3d``'s filters, by index and after Hungarian matching
        (:func:`~traindyn.metrics.representations.filter_similarity`).
    hidden_units : DataFrame
        ``step, module, n_units, dead_fraction, sparsity, mean_activation,
        std_unit_mean, mean_unit_std`` of each hidden-unit module
        (:func:`~traindyn.metrics.representations.hidden_unit_stats`).
    skipped : tuple of str
        One line per module and step left out of the attention, filter or hidden-unit
        tables, with the reason (a module that did not run or ran more than once per
        pass, non-finite values).
    """

    steps: tuple[int, ...]
    layers: tuple[str, ...]
    reduce: ReduceRule
    across_steps: pd.DataFrame
    across_layers: pd.DataFrame
    attention_entropy: pd.DataFrame
    attention_similarity: pd.DataFrame
    filter_similarity: pd.DataFrame
    hidden_units: pd.DataFrame
    skipped: tuple[str, ...] = ()

    def tables(self) -> dict[str, pd.DataFrame]:
        """The six tables by attribute name, in declaration order."""
        return {
            "across_steps": self.across_steps,
            "across_layers": self.across_layers,
            "attention_entropy": self.attention_entropy,
            "attention_similarity": self.attention_similarity,
            "filter_similarity": self.filter_similarity,
            "hidden_units": self.hidden_units,
        }


# ------------------------------------------------------------------------ validation


def _as_run(run: RunLike) -> Run:
    if isinstance(run, Run):
        return run
    if isinstance(run, str | os.PathLike):
        return open_run(run)
    raise ConfigError(
        f"run must be a Run or the path of a run directory; got {type(run).__name__}."
    )


def _check_model(model: Any, name: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{name} must be a torch.nn.Module; got {type(model).__name__}.")
    return model


def _checked_steps(run: Run, steps: int | Sequence[int] | None) -> list[int]:
    """Sorted unique steps that all have a checkpoint in ``run``."""
    available = run.checkpoints()
    if not available:
        raise StoreError(
            f"{run.path} has no checkpoints (checkpoints/step-<N>.safetensors). Save some "
            "while training with Tracker(checkpoint_every=...) or save_checkpoint(model, "
            "run, step)."
        )
    if steps is None:
        return available
    wanted = [steps] if isinstance(steps, numbers.Integral) else steps
    if isinstance(wanted, str) or not isinstance(wanted, Sequence) or len(wanted) == 0:
        raise ConfigError(
            f"steps must be None, an int or a non-empty list of ints; got {steps!r}. "
            f"Available steps: {_shown(available)}."
        )
    for step in wanted:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise ConfigError(f"steps must hold integers; got {step!r} in {steps!r}.")
    chosen = sorted({int(s) for s in wanted})
    missing = [s for s in chosen if s not in set(available)]
    if missing:
        raise StoreError(
            f"steps {missing} have no checkpoint in {run.path / 'checkpoints'}; "
            f"available steps: {_shown(available)}."
        )
    return chosen


def _shown(steps: Sequence[int], limit: int = 20) -> str:
    return ", ".join(map(str, steps[:limit])) + (" ..." if len(steps) > limit else "")


def _early_mid_late(available: Sequence[int]) -> list[int]:
    """First, middle and last checkpoint (fewer when fewer exist)."""
    positions = sorted({0, (len(available) - 1) // 2, len(available) - 1})
    return [available[i] for i in positions]


def _check_metrics(metrics: Sequence[str] | str) -> tuple[str, ...]:
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not names:
        raise ConfigError("metrics must name at least one registered metric; got none.")
    for name in names:
        get_metric(name)  # unknown names fail here, listing the valid ones
    return names


def _plan(
    run: RunLike,
    target: nn.Module,
    layers: LayerSelector,
    layouts: Mapping[str, Layout] | None,
    steps: int | Sequence[int] | None,
) -> tuple[list[str], dict[str, Layout], Run, list[int]]:
    """What a driver measures: the layers of ``target``, their layouts, the run and the
    checkpoint steps (validated)."""
    names = resolve_layers(target, layers)
    run_ = _as_run(run)
    return names, _layouts(target, names, layouts), run_, _checked_steps(run_, steps)


def _layouts(
    model: nn.Module, names: Sequence[str], layouts: Mapping[str, Layout] | None
) -> dict[str, Layout]:
    given = dict(layouts or {})
    for layer, layout in given.items():
        check_in(layout, ("channels_first", "channels_last"), name=f"layouts[{layer!r}]")
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(
            f"layouts names layers that are not measured: {unknown}. Measured: {list(names)}."
        )
    return {n: given.get(n) or infer_layout(model, n) for n in names}


def _label(name: str) -> str:
    return name or ROOT_LABEL


# ------------------------------------------------------------------------- the passes


@contextmanager
def _preserved(model: nn.Module, reference: nn.Module | None) -> Iterator[None]:
    """Restore ``model``'s weights, both models' train/eval flags and the RNG state."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    modules = [*model.modules(), *(reference.modules() if reference is not None else ())]
    flags = [(m, m.training) for m in modules]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        model.load_state_dict(weights)
        for module, was_training in flags:
            module.training = was_training
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


@contextmanager
def _attention_weights(model: nn.Module, names: Sequence[str]) -> Iterator[Capture]:
    """Capture per-head attention weights of ``nn.MultiheadAttention`` modules.

    ``nn.TransformerEncoderLayer`` calls its attention with ``need_weights=False``, so
    the weights are not in the module's output. A forward hook (with kwargs) calls the
    module's ``forward`` once more on the same inputs and masks with
    ``need_weights=True, average_attn_weights=False``: the forward pass itself is
    untouched, and ``forward`` (not ``__call__``) does not re-enter the hooks. Any hook
    on a submodule also keeps ``TransformerEncoderLayer`` off its fused fast path, so
    the attention module really runs. Hooks are removed in ``finally``.
    """
    cap = Capture()
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, Any, Any, Any], None]:
        def hook(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
            cap.calls[name] = cap.calls.get(name, 0) + 1
            try:
                bound = inspect.signature(module.forward).bind(*args, **kwargs)
                bound.arguments["need_weights"] = True
                bound.arguments["average_attn_weights"] = False
                result = module.forward(*bound.args, **bound.kwargs)
                weights = result[1] if isinstance(result, tuple) and len(result) > 1 else None
                if not isinstance(weights, torch.Tensor):
                    raise TypeError("the module returned no attention weights")
                cap.activations.setdefault(name, []).append(
                    weights.detach().float().to("cpu", copy=True)
                )
            except Exception as exc:  # never break the forward pass
                cap.errors.setdefault(name, f"{type(exc).__name__}: {exc}")

        return hook

    try:
        for name in names:
            module = model.get_submodule(name)
            handles.append(module.register_forward_hook(make_hook(name), with_kwargs=True))
        yield cap
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class _Pass:
    step: int
    capture: Capture
    attention: Capture
    n_chunks: int


def _passes(
    run: Run,
    model: nn.Module,
    probe_x: Any,
    steps: Sequence[int],
    *,
    names: Sequence[str],
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None,
    probe_batch_size: int | None,
    reference: nn.Module | None = None,
    to_reference: Callable[[torch.Tensor], torch.Tensor] | None = None,
    attention: Sequence[str] = (),
) -> Generator[_Pass, None, None]:
    """Load each checkpoint strictly and run the probe through it with hooks on ``names``.

    Hooks go on ``reference`` when given (fed the model's output), else on ``model``.
    Each pass starts from the caller's RNG state, so a model that samples noise in its
    forward sees the same noise at every checkpoint. While a pass is yielded the model
    holds that checkpoint's weights; everything is restored when the generator ends
    (use it under ``contextlib.closing`` so that an error in the caller restores too).
    """
    chunks = split_probe(probe_x, probe_batch_size)
    ref_device = model_device(reference) if reference is not None else None
    with _preserved(model, reference):
        rng = torch.get_rng_state()
        model.eval()
        if reference is not None:
            reference.eval()
        for step in steps:
            load_checkpoint(model, run.checkpoint_path(step))
            torch.set_rng_state(rng)
            yield _probe_pass(
                model,
                chunks,
                step,
                names=names,
                output_selector=output_selector,
                reference=reference,
                to_reference=to_reference,
                attention=attention,
                ref_device=ref_device,
            )


def _probe_pass(
    model: nn.Module,
    chunks: Sequence[Any],
    step: int,
    *,
    names: Sequence[str],
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None,
    reference: nn.Module | None = None,
    to_reference: Callable[[torch.Tensor], torch.Tensor] | None = None,
    attention: Sequence[str] = (),
    ref_device: torch.device | None = None,
) -> _Pass:
    """One probe pass through ``model`` as it is, with hooks on ``names`` (on
    ``reference`` when given) under ``no_grad``. Guts of :func:`_passes`: the caller
    sets the weights, eval mode and RNG state, and restores them."""
    target = reference if reference is not None else model
    with (
        torch.no_grad(),
        capture_activations(target, names, output_selector=output_selector) as cap,
        _attention_weights(model, attention) as att,
    ):
        for chunk in chunks:
            out = model(**chunk) if isinstance(chunk, Mapping) else model(chunk)
            if reference is not None:
                features = select_output(out)
                if to_reference is not None:
                    features = to_reference(features)
                reference(features.to(ref_device))
    return _Pass(step, cap, att, len(chunks))


def _closed(passes: Generator[_Pass, None, None]) -> Iterator[_Pass]:
    """Iterate ``passes`` and close it (restoring the model) even if the caller raises."""
    with closing(passes):
        yield from passes


def _nan(metrics: Sequence[str], reason: str) -> list[Measurement]:
    return [Measurement(m, math.nan, reason) for m in metrics]


# ----------------------------------------------------------------- measure_checkpoints


def measure_checkpoints(
    run: RunLike,
    model: nn.Module,
    probe: Any,
    *,
    steps: int | Sequence[int] | None = None,
    layers: LayerSelector = None,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    reduce: ReduceRule = "mean",
    layouts: Mapping[str, Layout] | None = None,
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
    reference: nn.Module | None = None,
    to_reference: Callable[[torch.Tensor], torch.Tensor] | None = None,
    per_class: bool = False,
    probe_batch_size: int | None = None,
) -> pd.DataFrame:
    """Measure registered metrics on the probe at every saved checkpoint of a run.

    Parameters
    ----------
    run : Run, str or os.PathLike
        The run whose ``checkpoints/step-<N>.safetensors`` are measured.
    model : nn.Module
        A model of the checkpoints' architecture (and config); each checkpoint is loaded
        into it strictly. Its own weights are restored afterwards.
    probe : tensor, mapping of tensors, or (x, y)
        Fixed inputs ``x`` of shape (n, ...) passed as ``model(x)`` (``model(**x)`` for a
        mapping), with optional integer class labels ``y`` of shape (n,), exactly as the
        Tracker's ``probe``.
    steps : int, list of int or None
        Checkpoints to measure (default: every one, ascending).
    layers : None, str, list of str or callable
        Layers to measure, resolved on ``reference`` when given, else on ``model``, as
        :func:`~traindyn.capture.resolve_layers` (None: the default layers).
    metrics : sequence of str, default DEFAULT_METRICS
        Registered metric names.
    reduce : {"mean", "flatten", "per_position"}, default "mean"
        Rule reducing conv/token activations to 2-D, as in the Tracker.
    layouts : mapping of layer name to layout, optional
        Override the inferred channel layout of specific layers.
    output_selector : callable or mapping of layer name to callable, optional
        Picks the representation out of a non-tensor module output, as in the Tracker.
    reference : nn.Module, optional
        A frozen model that measures the model's *outputs*: the model's output for the
        probe (its first tensor, see :func:`~traindyn.capture.select_output`) is passed
        through ``reference`` and the reference's layers are measured instead of the
        model's, so checkpoints of different architectures are measured in one feature
        space (e.g. generated samples through a fixed classifier). Its weights are not
        touched; its train/eval flags are restored.
    to_reference : callable, optional
        Maps the model's output to the reference's input (a reshape, a sampler); only
        with ``reference``.
    per_class : bool, default False
        Measure the rows of each class separately (needs labels ``y``) and add their
        mean. The forward pass is the same; rows are split after it (before reduction).
    probe_batch_size : int, optional
        Pass the probe in chunks of this size (default: one pass).

    Returns
    -------
    DataFrame
        Without ``per_class``: the metrics table of a run, ``step`` (int64), ``layer``,
        ``metric`` (string), ``value`` (float64), ``reason`` (string, ``<NA>`` unless
        ``value`` is NaN): the columns and dtypes of ``run.metrics``.
        With ``per_class``: a ``class`` column (string) after ``layer`` holds the label
        (``"0"``, ``"1"``, ...) or ``"mean"`` for the mean over classes, which is NaN
        (with the first failing class's reason) unless every class has a value. Rows are
        ordered by step, layer, class, metric.

    Raises
    ------
    StoreError
        If the run has no checkpoints or a requested step has none (the message lists
        the available steps).
    CheckpointMismatch
        If ``model`` does not fit a checkpoint (every difference is listed).
    ProbeError
        If the probe is not a tensor (or mapping, or pair), has fewer than 2 samples,
        holds NaN/Inf, or its labels do not fit.
    ConfigError
        If an option is invalid, ``per_class`` is set without labels or with labels that
        are not one per sample, or ``to_reference`` is given without ``reference``.

    Notes
    -----
    A metric that cannot be computed on a layer is NaN with a reason, as in the Tracker
    (a class with fewer samples than a metric needs, a layer that did not run). Every
    checkpoint's pass starts from the caller's torch RNG state, so a model that samples
    noise in its forward (a generator) sees the same noise at every checkpoint; the
    caller's RNG state, the model's weights and all train/eval flags are restored.

    Examples
    --------
    >>> import tempfile, torch
    >>> from torch import nn
    >>> from traindyn.store import Run, save_checkpoint
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> run = Run.create(tempfile.mkdtemp() + "/demo", handle_signals=False)
    >>> _ = save_checkpoint(net, run, 0); _ = save_checkpoint(net, run, 10)
    >>> run.finish()
    >>> t = measure_checkpoints(run, net, torch.randn(32, 4), metrics=["stable_rank"])
    >>> print(t[["step", "layer", "metric", "reason"]].to_string(index=False))
     step layer      metric reason
        0     0 stable_rank   <NA>
        0     2 stable_rank   <NA>
       10     0 stable_rank   <NA>
       10     2 stable_rank   <NA>
    """
    model = _check_model(model)
    if reference is not None:
        _check_model(reference, "reference")
        if reference is model:
            raise ConfigError(
                "reference must be a separate, frozen model; got the measured model itself. "
                "Pass reference=None to measure the model's own layers."
            )
    elif to_reference is not None:
        raise ConfigError(
            "to_reference maps the model's output to the reference's input; it needs "
            "reference=. Pass a reference model or drop to_reference."
        )
    check_in(reduce, _RULES, name="reduce")
    names_m = _check_metrics(metrics)
    _check_batch_size(probe_batch_size)
    x, y = prepare_probe(probe, model_device(model))
    n = n_samples(x)
    labels = _class_labels(y, n) if per_class else None
    target = reference if reference is not None else model
    names, layouts_, run_, chosen = _plan(run, target, layers, layouts, steps)

    rows: list[tuple[Any, ...]] = []
    passes = _passes(
        run_,
        model,
        x,
        chosen,
        names=names,
        output_selector=output_selector,
        probe_batch_size=probe_batch_size,
        reference=reference,
        to_reference=to_reference,
    )
    for p in _closed(passes):
        for name in names:
            acts, reason = layer_output(p.capture, name, p.n_chunks, n)
            label = _label(name)
            if labels is None:
                results = _measure(acts, reason, names_m, reduce, layouts_[name])
                rows += [(p.step, label, r.metric, r.value, r.reason) for r in results]
                continue
            per: list[list[Measurement]] = []
            for cls, mask in labels:
                sub = None if acts is None else acts[mask]
                results = _measure(sub, reason, names_m, reduce, layouts_[name])
                per.append(results)
                rows += [(p.step, label, cls, r.metric, r.value, r.reason) for r in results]
            for i, metric in enumerate(names_m):
                pairs = zip(labels, per, strict=True)
                value, why = _class_mean([(cls, res[i]) for (cls, _), res in pairs])
                rows.append((p.step, label, "mean", metric, value, why))
    return _frame(rows, _PER_CLASS_SCHEMA if labels is not None else _METRICS_SCHEMA)


def _check_batch_size(size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"probe_batch_size must be None or an int >= 1; got {size!r}.")


def _class_labels(y: torch.Tensor | None, n: int) -> list[tuple[str, torch.Tensor]]:
    """(label, row mask) per class, ascending, from 1-D integer labels."""
    if y is None:
        raise ConfigError(
            "per_class=True needs class labels; pass probe=(x, y) with integer labels y of "
            "shape (n_samples,)."
        )
    if tuple(y.shape) != (n,):
        raise ConfigError(
            f"per_class=True needs one class label per probe sample, shape ({n},); got "
            f"labels of shape {tuple(y.shape)}. Pass the class of each input."
        )
    y_cpu = y.detach().cpu()
    return [(str(int(c)), y_cpu == c) for c in torch.unique(y_cpu)]


def _measure(
    acts: torch.Tensor | None,
    reason: str | None,
    metrics: Sequence[str],
    reduce: ReduceRule,
    layout: Layout,
) -> list[Measurement]:
    if reason is not None or acts is None:
        return _nan(metrics, reason or "no activations")
    return measure(acts, metrics, reduce_rule=reduce, layout=layout)


def _class_mean(per_class: Sequence[tuple[str, Measurement]]) -> tuple[float, str | None]:
    for cls, m in per_class:
        if not math.isfinite(m.value):
            return math.nan, f"class {cls}: {m.reason}"
    return math.fsum(m.value for _, m in per_class) / len(per_class), None


# ---------------------------------------------------------- checkpoint_representations


def checkpoint_representations(
    run: RunLike,
    model: nn.Module,
    probe_x: Any,
    *,
    steps: int | Sequence[int] | None = None,
    layers: LayerSelector = None,
    reduce: ReduceRule = "mean",
    layouts: Mapping[str, Layout] | None = None,
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
    probe_batch_size: int | None = None,
) -> dict[int, dict[str, torch.Tensor]]:
    """The 2-D representation of each layer at each checkpoint, for :func:`cka_matrix`.

    Parameters
    ----------
    run, model, steps, layers, reduce, layouts, output_selector, probe_batch_size
        As in :func:`measure_checkpoints`.
    probe_x : tensor or mapping of tensors
        Probe inputs of shape (n, ...).

    Returns
    -------
    dict of int to dict of str to Tensor
        ``reps[step][layer]`` is a CPU tensor of shape (n, features) (``(n·P, c)`` with
        ``reduce="per_position"``); layer keys are ``named_modules()`` paths
        (``"(model)"`` for the model itself), in model order.

    Raises
    ------
    MetricError
        If a layer has no representation at a step (it did not run, ran more than once
        per pass, or its output is not samples-first).
    StoreError, CheckpointMismatch, ProbeError, ConfigError
        As in :func:`measure_checkpoints`.
    """
    model = _check_model(model)
    check_in(reduce, _RULES, name="reduce")
    _check_batch_size(probe_batch_size)
    x, _ = prepare_probe(probe_x, model_device(model))
    names, layouts_, run_, chosen = _plan(run, model, layers, layouts, steps)
    n = n_samples(x)
    reps: dict[int, dict[str, torch.Tensor]] = {}
    passes = _passes(
        run_,
        model,
        x,
        chosen,
        names=names,
        output_selector=output_selector,
        probe_batch_size=probe_batch_size,
    )
    for p in _closed(passes):
        reps[p.step] = {
            _label(name): _reduced(p, name, n, reduce, layouts_[name]) for name in names
        }
    return reps


def _reduced(p: _Pass, name: str, n: int, reduce: ReduceRule, layout: Layout) -> torch.Tensor:
    acts, reason = layer_output(p.capture, name, p.n_chunks, n)
    if acts is None:
        raise MetricError(
            f"layer {_label(name)!r} has no representation at step {p.step}: {reason}. "
            "Choose other layers with layers=."
        )
    out = reduce_activation(acts, rule=reduce, layout=layout)
    assert isinstance(out, torch.Tensor)  # a tensor in, a tensor out
    return out


# ------------------------------------------------------------------------ probe_noise


def probe_noise(
    run: RunLike,
    model: nn.Module,
    probe_x: Any,
    *,
    steps: int | Sequence[int] | None = None,
    layers: LayerSelector = None,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    n_resamples: int = 20,
    seed: int = 0,
    reduce: ReduceRule = "mean",
    layouts: Mapping[str, Layout] | None = None,
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
    probe_batch_size: int | None = None,
) -> pd.DataFrame:
    """Each metric's spread across probe sets of the probe's size, at every checkpoint.

    For each checkpoint, the probe is passed through the model once (as in
    :func:`checkpoint_representations`), each layer's activations are reduced to one row
    per probe input, and :func:`~traindyn.analysis.noise.half_sample_spread` measures
    the metrics on ``n_resamples`` random halves of the rows: the standard deviation
    over the halves is the noise a different probe set of the same size would show.
    The same halves (one ``seed``) are used at every checkpoint and layer.
    ``traindyn analyze`` reads this table from ``analysis/probe_noise.parquet`` and adds
    its median over steps to each series' noise floor.

    Parameters
    ----------
    run, model, steps, layers, metrics, layouts, output_selector, probe_batch_size
        As in :func:`measure_checkpoints`; measure the layers, metrics and rule the run
        was tracked with so that the noise belongs to its trajectories.
    probe_x : tensor, mapping of tensors, or (x, y)
        Probe inputs of shape (n, ...) with n >= 4 (labels, if given, are ignored).
    n_resamples : int, default 20
        Halves per checkpoint and layer (>= 2).
    seed : int, default 0
        Seed of the generator drawing the halves.
    reduce : {"mean", "flatten"}, default "mean"
        Reduction of conv/token activations; both keep one row per probe input, so a
        half of the rows is a half of the probe. (``"per_position"`` makes rows of
        positions, whose halves are not probe sets.)

    Returns
    -------
    DataFrame
        ``step`` (int64), ``layer``, ``metric`` (string), ``noise`` (float64, in the
        metric's units), one row per checkpoint, layer and metric, ordered so. ``noise``
        is NaN when the layer has no representation at that step (it did not run, or
        ran more than once per pass), its activations are not finite, or the metric
        failed on fewer than 2 halves' worth of rows; the rest of the table is kept.

    Raises
    ------
    ProbeError
        If the probe has fewer than 4 samples, or is not a tensor, mapping or pair.
    StoreError, CheckpointMismatch, ConfigError
        As in :func:`measure_checkpoints`; ConfigError also for ``n_resamples < 2`` or
        ``reduce="per_position"``.

    References
    ----------
    Shao, J., & Wu, C. F. J. (1989). A general theory for jackknife variance estimation.
    Annals of Statistics 17(3) (delete-d jackknife, d = n/2).

    Examples
    --------
    Both checkpoints hold the same weights, so each layer's noise is the same at both
    steps, and a random probe of 64 inputs gives a positive spread:

    >>> import tempfile, torch
    >>> from torch import nn
    >>> from traindyn.store import Run, save_checkpoint
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> run = Run.create(tempfile.mkdtemp() + "/demo", handle_signals=False)
    >>> _ = save_checkpoint(net, run, 0); _ = save_checkpoint(net, run, 10)
    >>> run.finish()
    >>> t = probe_noise(run, net, torch.randn(64, 4), metrics=["stable_rank"], n_resamples=5)
    >>> print(t[["step", "layer", "metric"]].to_string(index=False))
     step layer      metric
        0     0 stable_rank
        0     2 stable_rank
       10     0 stable_rank
       10     2 stable_rank
    >>> bool((t["noise"] > 0).all()), bool(t["noise"].iloc[0] == t["noise"].iloc[2])
    (True, True)
    """
    # Imported here: the half-sampling maths lives with the other noise floors in
    # analysis, and importing the analysis package would slow down `import traindyn.capture`.
    from traindyn.analysis.noise import half_sample_spread

    model = _check_model(model)
    if reduce == "per_position":
        raise ConfigError(
            "reduce must be 'mean' or 'flatten' for probe_noise; got 'per_position', whose "
            "rows are positions, so their halves are not probe sets. Measure with "
            "reduce='mean'."
        )
    check_in(reduce, _CKA_RULES, name="reduce")
    names_m = _check_metrics(metrics)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
        raise ConfigError(
            f"n_resamples must be an integer >= 2 to estimate a spread; got {n_resamples!r}."
        )
    _check_batch_size(probe_batch_size)
    x, _ = prepare_probe(probe_x, model_device(model))
    n = n_samples(x)
    if n < 4:
        raise ProbeError(
            f"probe must hold at least 4 samples to be split in halves; got {n}. Pass a "
            "larger probe."
        )
    names, layouts_, run_, chosen = _plan(run, model, layers, layouts, steps)
    rows: list[tuple[Any, ...]] = []
    passes = _passes(
        run_,
        model,
        x,
        chosen,
        names=names,
        output_selector=output_selector,
        probe_batch_size=probe_batch_size,
    )
    for p in _closed(passes):
        for name in names:
            spread = dict.fromkeys(names_m, math.nan)
            acts, _reason = layer_output(p.capture, name, p.n_chunks, n)
            if acts is not None:
                try:
                    X = reduce_activation(acts, rule=reduce, layout=layouts_[name])
                    spread = half_sample_spread(X, names_m, n_resamples=n_resamples, seed=seed)
                except _DATA_ERRORS:  # non-finite activations of a diverged checkpoint
                    pass
            rows += [(p.step, _label(name), metric, spread[metric]) for metric in names_m]
    return _frame(rows, _PROBE_NOISE)


# ------------------------------------------------------------------ compare_checkpoints


def compare_checkpoints(
    run: RunLike,
    model: nn.Module,
    probe_x: Any,
    *,
    steps: int | Sequence[int] | None = None,
    layers: LayerSelector = None,
    units: LayerSelector = None,
    reduce: ReduceRule = "mean",
    layouts: Mapping[str, Layout] | None = None,
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
    debiased: bool = False,
    probe_batch_size: int | None = None,
) -> CheckpointComparison:
    """Compare a few checkpoints' representations and weights (early / mid / late).

    One probe pass per checkpoint captures, at once: the ``layers`` (for CKA), the
    per-head attention weights of every ``nn.MultiheadAttention`` and the outputs of the
    hidden-unit modules. Conv filters are read from the loaded weights.

    Parameters
    ----------
    run, model, layers, layouts, output_selector, probe_batch_size
        As in :func:`measure_checkpoints` (``output_selector`` applies to ``layers``).
    probe_x : tensor or mapping of tensors
        Probe inputs of shape (n, ...).
    steps : int, list of int or None
        Checkpoints to compare. Default: the first, middle and last saved checkpoint
        (early / mid / late; fewer when the run has fewer).
    units : None, str, list of str or callable
        Modules whose outputs get hidden-unit statistics. None: every activation module
        (``nn.ReLU``, ``nn.GELU``, ``nn.Tanh``...), i.e. the post-activation hidden
        layers of MLPs and CNN blocks; models that apply activations functionally get an
        empty table unless modules are named here (a Linear layer's output then counts
        as pre-activations). Token and conv outputs are reduced with
        ``"per_position"``: every position is a sample and every channel a unit.
    reduce : {"mean", "flatten"}, default "mean"
        Reduction of conv/token activations for CKA; both keep one row per input.
    debiased : bool, default False
        Debiased linear CKA (:func:`~traindyn.metrics.linear_cka`).

    Returns
    -------
    CheckpointComparison
        CKA across steps and layers, attention, filter and hidden-unit tables.

    Raises
    ------
    MetricError
        If a CKA layer has no representation at a step (see
        :func:`checkpoint_representations`).
    StoreError, CheckpointMismatch, ProbeError, ConfigError
        As in :func:`measure_checkpoints`.

    Notes
    -----
    Attention weights are obtained by calling each attention module's ``forward`` a
    second time, from a forward hook, with the inputs and masks of the real call and
    ``need_weights=True, average_attn_weights=False``; the model's own forward pass is
    not modified. Weights of shape (n, heads, q, k) are required (batched calls).

    References
    ----------
    Early / mid / late comparison: "modified phase 2" of the seed study (checkpoints at
    steps 100, 1000, 2000). CKA: Kornblith et al. (2019); attention: Clark et al.
    (2019); filter matching: Li et al. (2016); see
    :mod:`traindyn.metrics.representations`.

    Examples
    --------
    >>> import tempfile, torch
    >>> from torch import nn
    >>> from traindyn.store import Run, save_checkpoint
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> run = Run.create(tempfile.mkdtemp() + "/demo", handle_signals=False)
    >>> _ = save_checkpoint(net, run, 0); _ = save_checkpoint(net, run, 10)
    >>> run.finish()
    >>> c = compare_checkpoints(run, net, torch.randn(32, 4))
    >>> c.steps, c.layers, c.across_steps["cka"].round(6).tolist()
    ((0, 10), ('0', '2'), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    >>> print(c.hidden_units[["step", "module", "n_units"]].to_string(index=False))
     step module  n_units
        0      1        8
       10      1        8
    """
    model = _check_model(model)
    check_in(reduce, _CKA_RULES, name="reduce")
    _check_batch_size(probe_batch_size)
    x, _ = prepare_probe(probe_x, model_device(model))
    n = n_samples(x)
    names = resolve_layers(model, layers)
    unit_names = (
        [name for name, m in model.named_modules() if name and isinstance(m, _ACTIVATIONS)]
        if units is None
        else resolve_layers(model, units)
    )
    attn_names = [name for name, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    conv_names = [name for name, m in model.named_modules() if isinstance(m, _CONVS)]
    hooked = list(dict.fromkeys([*names, *unit_names]))
    layouts_ = _layouts(model, hooked, layouts)
    selectors: OutputSelector | Mapping[str, OutputSelector] | None = output_selector
    if callable(output_selector) and not isinstance(output_selector, Mapping):
        selectors = {name: output_selector for name in names}
    run_ = _as_run(run)
    chosen = (
        _early_mid_late(_checked_steps(run_, None))
        if steps is None
        else _checked_steps(run_, steps)
    )

    reps: dict[int, dict[str, torch.Tensor]] = {}
    attn: dict[str, dict[int, torch.Tensor]] = {}
    filters: dict[str, dict[int, torch.Tensor]] = {}
    entropy_rows: list[tuple[Any, ...]] = []
    hidden_rows: list[tuple[Any, ...]] = []
    skipped: list[str] = []
    passes = _passes(
        run_,
        model,
        x,
        chosen,
        names=hooked,
        output_selector=selectors,
        probe_batch_size=probe_batch_size,
        attention=attn_names,
    )
    for p in _closed(passes):
        reps[p.step] = {
            _label(name): _reduced(p, name, n, reduce, layouts_[name]) for name in names
        }
        for name in conv_names:
            weight = model.get_submodule(name).weight
            if isinstance(weight, torch.Tensor):
                filters.setdefault(name, {})[p.step] = weight.detach().to("cpu", copy=True)
        for name in attn_names:
            weights, reason = layer_output(p.attention, name, p.n_chunks, n)
            if weights is not None and weights.ndim != 4:
                reason = f"weights of shape {tuple(weights.shape)}, not (n, heads, q, k)"
            if weights is None or reason is not None:
                skipped.append(f"attention of {name!r} at step {p.step}: {reason}")
                continue
            try:
                ent = attention_entropy(weights)
            except MetricError as exc:  # NaN rows of fully masked queries
                skipped.append(f"attention of {name!r} at step {p.step}: MetricError: {exc}")
                continue
            attn.setdefault(name, {})[p.step] = weights
            max_ent = math.log(weights.shape[-1])
            entropy_rows += [(p.step, name, h, float(e), max_ent) for h, e in enumerate(ent)]
        for name in unit_names:
            acts, reason = layer_output(p.capture, name, p.n_chunks, n)
            if acts is None:
                skipped.append(f"hidden units of {_label(name)!r} at step {p.step}: {reason}")
                continue
            try:
                stats = hidden_unit_stats(
                    reduce_activation(acts, rule="per_position", layout=layouts_[name])
                )
            except MetricError as exc:  # non-finite activations of a diverged checkpoint
                skipped.append(f"hidden units of {_label(name)!r} at step {p.step}: {exc}")
                continue
            hidden_rows.append(
                (
                    p.step,
                    _label(name),
                    stats.n_units,
                    stats.dead_fraction,
                    stats.sparsity,
                    stats.mean_activation,
                    stats.std_unit_mean,
                    stats.mean_unit_std,
                )
            )

    labels = [_label(name) for name in names]
    across_steps: list[tuple[Any, ...]] = []
    for label in labels:
        keyed = {f"step-{s}": (s, reps[s][label]) for s in chosen}
        table = cka_matrix({k: v for k, (_, v) in keyed.items()}, debiased=debiased)
        for a, b, value, reason in table.itertuples(index=False):
            across_steps.append((label, keyed[a][0], keyed[b][0], value, _na(reason)))
    across_layers: list[tuple[Any, ...]] = []
    for s in chosen:
        table = cka_matrix(reps[s], debiased=debiased)
        for a, b, value, reason in table.itertuples(index=False):
            across_layers.append((s, a, b, value, _na(reason)))
    similarity_rows: list[tuple[Any, ...]] = []
    for name, by_step in attn.items():
        for a, b in _pairs(sorted(by_step)):
            sim = attention_similarity(by_step[a], by_step[b])
            similarity_rows += [
                (name, a, b, h, float(js), float(r))
                for h, (js, r) in enumerate(zip(sim.js_divergence, sim.correlation, strict=True))
            ]
    filter_rows: list[tuple[Any, ...]] = []
    for name, by_step in filters.items():
        for a, b in _pairs(sorted(by_step)):
            try:
                fs = filter_similarity(by_step[a], by_step[b])
            except MetricError as exc:  # non-finite weights of a diverged checkpoint
                skipped.append(f"filters of {name!r} at steps {a}, {b}: {exc}")
                continue
            filter_rows.append((name, a, b, len(fs.matched), fs.mean_matched, fs.mean_permuted))
    return CheckpointComparison(
        steps=tuple(chosen),
        layers=tuple(labels),
        reduce=reduce,
        across_steps=_frame(across_steps, _ACROSS_STEPS),
        across_layers=_frame(across_layers, _ACROSS_LAYERS),
        attention_entropy=_frame(entropy_rows, _ATTN_ENTROPY),
        attention_similarity=_frame(similarity_rows, _ATTN_SIMILARITY),
        filter_similarity=_frame(filter_rows, _FILTERS),
        hidden_units=_frame(hidden_rows, _HIDDEN),
        skipped=tuple(skipped),
    )


def _pairs(steps: Sequence[int]) -> list[tuple[int, int]]:
    return [(a, b) for i, a in enumerate(steps) for b in steps[i + 1 :]]


def _na(value: Any) -> str | None:
    return None if value is pd.NA or value is None else str(value)


# -------------------------------------------------------------------------- writing


def write_checkpoint_comparison(
    run: RunLike, comparison: CheckpointComparison, *, name: str = "checkpoint_comparison"
) -> list[Path]:
    """Write a :class:`CheckpointComparison` into ``<run>/analysis/``.

    Each table goes to ``<name>_<table>.parquet`` (``checkpoint_comparison_across_steps``,
    ...; empty tables too, so readers find every file) and the steps, layers, reduction
    rule and skipped modules to ``<name>.json``. Read back with ``run.read_analysis``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ConfigError
        If ``name`` is not a plain file stem.
    """
    run_ = _as_run(run)
    paths = [
        run_.write_analysis(f"{name}_{table}", frame)
        for table, frame in comparison.tables().items()
    ]
    summary = {
        "steps": list(comparison.steps),
        "layers": list(comparison.layers),
        "reduce": comparison.reduce,
        "tables": [f"{name}_{table}" for table in comparison.tables()],
        "skipped": list(comparison.skipped),
    }
    paths.append(run_.write_analysis(name, summary))
    return paths
