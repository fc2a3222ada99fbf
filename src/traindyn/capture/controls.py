"""Null controls: the same metrics, on the same probe, measured where there is nothing to learn.

A trajectory means something only against what chance gives. :func:`null_controls`
measures a run's metrics on two controls, with the hooks, reduction rules and probe of
:func:`~traindyn.capture.measure_checkpoints`:

- ``"random_init"``: the architecture freshly initialised with ``n_draws`` seeds, never
  trained. One band for the whole run (its rows carry ``step = -1``).
- ``"gaussian"``: at each checkpoint, each layer's reduced representation X (n × d)
  replaced by ``n_draws`` Gaussian clouds with X's mean and covariance and the same n
  (:func:`~traindyn.analysis.chance.gaussian_surrogate`). Second-order statistics are
  kept and everything else is destroyed, so spectral metrics sit inside this band by
  construction, while an intrinsic dimension or a Betti number far outside it is
  structure beyond the covariance (a curved manifold, clusters, holes).

The third control, a label-shuffled twin of a suite run, is a run of its own
(``ExperimentSpec.shuffle_labels``); its metrics table is the band
(:func:`~traindyn.analysis.chance.shuffled_bands`). Bands and the
"different from chance" column are analysis: :mod:`traindyn.analysis.chance`.

Like every post-hoc driver this leaves the model as it found it: weights, train/eval
flags and the torch RNG state are restored, and no hook stays registered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import nn

from traindyn._validation import check_in
from traindyn.capture._probe import (
    layer_output,
    model_device,
    n_samples,
    prepare_probe,
    split_probe,
)
from traindyn.capture.hooks import LayerSelector, Layout, OutputSelector
from traindyn.capture.posthoc import (
    _RULES,
    RunLike,
    _check_batch_size,
    _check_metrics,
    _check_model,
    _closed,
    _frame,
    _label,
    _measure,
    _nan,
    _passes,
    _plan,
    _probe_pass,
)
from traindyn.capture.tracker import ReduceRule
from traindyn.exceptions import ConfigError, ProbeError
from traindyn.metrics import DEFAULT_METRICS, Measurement, measure, reduce_activation
from traindyn.store import Run

__all__ = ["CONTROLS", "Control", "null_controls"]

Control = Literal["random_init", "gaussian"]
CONTROLS: tuple[Control, ...] = ("random_init", "gaussian")
"""The controls :func:`null_controls` measures, the values of its ``control`` column."""

RANDOM_INIT_STEP = -1
"""``step`` of the random-initialisation rows: that band does not depend on the step."""

_CONTROLS_SCHEMA = {
    "step": "int64",
    "layer": "string",
    "control": "string",
    "draw": "int64",
    "metric": "string",
    "value": "float64",
    "reason": "string",
}
_DATA_ERRORS = (ValueError, ArithmeticError, RuntimeError)
# Modules whose own parameters a reset method re-draws. nn.MultiheadAttention keeps its
# packed in-projection in a private _reset_parameters (called by its __init__).
_RESET_METHODS = ("reset_parameters", "_reset_parameters")


def null_controls(
    run: RunLike,
    model: nn.Module,
    probe: Any,
    *,
    controls: Sequence[Control] | Control = CONTROLS,
    init: Callable[[int], nn.Module] | None = None,
    steps: int | Sequence[int] | None = None,
    layers: LayerSelector = None,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    n_draws: int = 5,
    seed: int = 0,
    covariance: Literal["exact", "expected"] = "exact",
    reduce: ReduceRule = "mean",
    layouts: Mapping[str, Layout] | None = None,
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
    probe_batch_size: int | None = None,
) -> pd.DataFrame:
    """Measure metrics on null controls of a run: a random-init band and a Gaussian band.

    Parameters
    ----------
    run : Run, str or os.PathLike
        The run whose checkpoints are measured (``"gaussian"``) and whose probe
        description, when recorded, the probe must fit.
    model : nn.Module
        A model of the checkpoints' architecture, as in
        :func:`~traindyn.capture.measure_checkpoints`; its weights are restored.
    probe : tensor, mapping of tensors, or (x, y)
        The probe the run was tracked on (labels are ignored).
    controls : sequence of {"random_init", "gaussian"}, default both
        Which controls to measure.
    init : callable ``seed -> nn.Module``, optional
        Builds the architecture freshly initialised, for ``"random_init"``. Draw ``d``
        calls ``init(seed + d)`` with the global torch generator already seeded with
        ``seed + d`` (so ``lambda s: MyNet()`` is reproducible too); the module must
        have ``model``'s parameter names and shapes. For a suite run pass
        ``rebuild(run).initial_model``: draw ``d`` is then exactly the initial weights
        of a run with seed ``seed + d``. Default: a copy of ``model`` whose modules are
        re-drawn with their own ``reset_parameters()`` under ``torch.manual_seed(seed +
        d)``; this is each module's *default* initialisation (not a custom scheme of
        the model's ``__init__``), and a model with parameters no reset method covers
        (a bare ``nn.Parameter`` such as a positional embedding) is refused.
    steps : int, list of int or None
        Checkpoints for ``"gaussian"`` (default: every one).
    layers, reduce, layouts, output_selector, probe_batch_size
        As in :func:`~traindyn.capture.measure_checkpoints`; use those the run was
        tracked with, so that the bands belong to its trajectories.
    metrics : sequence of str, default DEFAULT_METRICS
        Registered metric names.
    n_draws : int, default 5
        Draws per control (>= 2, to estimate a spread).
    seed : int, default 0
        First initialisation seed, and seed of the Gaussian draws.
    covariance : {"exact", "expected"}, default "exact"
        Whether each Gaussian draw has the representation's covariance exactly (the
        Gaussian conditioned on its mean and covariance) or only in expectation (rows
        i.i.d. ``N(mean, S)``); see :func:`~traindyn.analysis.chance.gaussian_surrogate`.

    Returns
    -------
    DataFrame
        Columns ``step`` (int64), ``layer``, ``control`` (string), ``draw`` (int64),
        ``metric`` (string), ``value`` (float64), ``reason`` (string, ``<NA>`` unless
        ``value`` is NaN). ``"random_init"`` rows have ``step = -1`` (one band for every
        step; :func:`~traindyn.analysis.chance.different_from_chance` broadcasts it).
        Rows are ordered by control (as given), step, layer, draw, metric.

    Raises
    ------
    StoreError
        If the run has no checkpoints or a requested step has none (``"gaussian"``).
    CheckpointMismatch
        If ``model`` does not fit a checkpoint.
    ProbeError
        If the probe is invalid, or its size or input shape differs from the probe
        description recorded in the run's ``run.json``.
    ConfigError
        If a control, metric or option is unknown, ``n_draws < 2``, ``init`` builds
        another architecture, or the default re-initialisation cannot cover every
        parameter.

    Notes
    -----
    Gaussian draw ``d`` of a layer comes from
    :func:`~traindyn.analysis.chance.gaussian_surrogate` with ``seed`` (the same Z at
    every step and layer of the same shape: common random numbers, so the band moves
    only because the representation does), cast back to the representation's dtype so
    that it is measured as the representation is. It works when d > n.
    The Gaussian keeps the covariance, so it is the null of "nothing beyond second
    order": with ``covariance="exact"`` every spectral metric of a draw *equals* the
    representation's (a band of sd 0 around the observed value, never "different"), and
    with ``"expected"`` spectral metrics sit inside the band up to the bias of
    re-sampling the covariance (measured: participation ratio 10.60 ± 0.25 vs 11.18 for
    a Gaussian X of n = 200, d = 20). Intrinsic dimension or topology outside the band
    is structure the spectrum cannot see (a curved manifold, clusters, loops). The
    random-init band asks instead what the architecture gives before any learning.

    Examples
    --------
    >>> import tempfile, torch
    >>> from torch import nn
    >>> from traindyn.store import Run, save_checkpoint
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> run = Run.create(tempfile.mkdtemp() + "/demo", handle_signals=False)
    >>> _ = save_checkpoint(net, run, 10); run.finish()
    >>> t = null_controls(run, net, torch.randn(32, 4), metrics=["stable_rank"], n_draws=2)
    >>> print(t[["step", "layer", "control", "draw"]].to_string(index=False))
     step layer     control  draw
       -1     0 random_init     0
       -1     0 random_init     1
       -1     2 random_init     0
       -1     2 random_init     1
       10     0    gaussian     0
       10     0    gaussian     1
       10     2    gaussian     0
       10     2    gaussian     1
    >>> bool(t["value"].notna().all())
    True
    """
    # Imported here, as in probe_noise: the surrogate's maths lives with the bands in
    # analysis, and importing the analysis package would slow down `import traindyn.capture`.
    from traindyn.analysis.chance import gaussian_surrogate

    model = _check_model(model)
    wanted = _check_controls(controls)
    if init is not None and not callable(init):
        raise ConfigError(
            f"init must be a callable seed -> nn.Module; got {type(init).__name__}. Pass e.g. "
            "init=lambda seed: MyNet() or, for a suite run, rebuild(run).initial_model."
        )
    check_in(reduce, _RULES, name="reduce")
    check_in(covariance, ("exact", "expected"), name="covariance")
    names_m = _check_metrics(metrics)
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 2:
        raise ConfigError(
            f"n_draws must be an integer >= 2 to estimate a band's spread; got {n_draws!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    _check_batch_size(probe_batch_size)
    x, _ = prepare_probe(probe, model_device(model))
    n = n_samples(x)
    names, layouts_, run_, chosen = _plan(run, model, layers, layouts, steps)
    _check_recorded_probe(run_, x, n)

    rows: list[tuple[Any, ...]] = []
    for control in wanted:
        if control == "random_init":
            for draw in range(n_draws):
                fresh = _initialised(model, init, seed + draw)
                was_training = [(m, m.training) for m in fresh.modules()]
                with _rng_preserved():
                    fresh.eval()
                    p = _probe_pass(
                        fresh,
                        split_probe(x, probe_batch_size),
                        RANDOM_INIT_STEP,
                        names=names,
                        output_selector=output_selector,
                    )
                for module, flag in was_training:
                    module.training = flag
                for name in names:
                    acts, reason = layer_output(p.capture, name, p.n_chunks, n)
                    results = _measure(acts, reason, names_m, reduce, layouts_[name])
                    rows += [
                        (p.step, _label(name), control, draw, r.metric, r.value, r.reason)
                        for r in results
                    ]
            continue
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
                acts, reason = layer_output(p.capture, name, p.n_chunks, n)
                per_draw = _gaussian_measurements(
                    acts,
                    reason,
                    names_m,
                    reduce,
                    layouts_[name],
                    partial(gaussian_surrogate, n_draws=n_draws, seed=seed, covariance=covariance),
                    n_draws,
                )
                for draw, results in enumerate(per_draw):
                    rows += [
                        (p.step, _label(name), control, draw, r.metric, r.value, r.reason)
                        for r in results
                    ]
    layer_order = {_label(name): i for i, name in enumerate(names)}
    control_order = {c: i for i, c in enumerate(wanted)}
    rows.sort(key=lambda r: (control_order[r[2]], r[0], layer_order[r[1]], r[3]))  # stable
    return _frame(rows, _CONTROLS_SCHEMA)


# ------------------------------------------------------------------------------ guts


def _check_controls(controls: Sequence[Control] | Control) -> tuple[Control, ...]:
    names = (controls,) if isinstance(controls, str) else tuple(controls)
    if not names:
        raise ConfigError(f"controls must name at least one of {list(CONTROLS)}; got none.")
    for name in names:
        check_in(name, CONTROLS, name="controls")
    return tuple(dict.fromkeys(names))


def _check_recorded_probe(run: Run, x: Any, n: int) -> None:
    """Refuse a probe that is not the one the run's manifest describes (size, shape)."""
    recorded = run.manifest.probe
    if not isinstance(recorded, Mapping) or recorded.get("mode", "probe") != "probe":
        return
    differ = []
    if isinstance(recorded.get("n"), int) and recorded["n"] != n:
        differ.append(f"{n} samples, recorded {recorded['n']}")
    shape = recorded.get("shape")
    if isinstance(shape, list) and isinstance(x, torch.Tensor) and list(x.shape) != shape:
        differ.append(f"shape {list(x.shape)}, recorded {shape}")
    if differ:
        raise ProbeError(
            f"probe does not match the probe {run.path} was tracked on ({'; '.join(differ)}). "
            "Controls must be measured on the run's own probe: for a suite run use "
            "rebuild(run).probe."
        )


class _rng_preserved:
    """Restore the CPU (and initialised CUDA) torch RNG state on exit."""

    def __enter__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]

    def __exit__(self, *exc: object) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def _initialised(model: nn.Module, init: Callable[[int], nn.Module] | None, seed: int) -> nn.Module:
    """A freshly initialised module of ``model``'s architecture, drawn with ``seed``."""
    with _rng_preserved():
        torch.manual_seed(seed)
        if init is None:
            fresh = copy.deepcopy(model)
            _reset(fresh)
        else:
            fresh = init(seed)
            if not isinstance(fresh, nn.Module):
                raise ConfigError(
                    f"init must return an nn.Module; init({seed}) returned {type(fresh).__name__}."
                )
            _check_same_architecture(model, fresh)
    return fresh.to(model_device(model))


def _reset(model: nn.Module) -> None:
    """Re-draw every parameter with its module's reset method; refuse uncovered ones."""
    covered: set[int] = set()
    for module in model.modules():
        method = next((getattr(module, m) for m in _RESET_METHODS if hasattr(module, m)), None)
        if callable(method):
            covered.update(id(p) for p in module.parameters(recurse=False))
    missing = [name for name, p in model.named_parameters() if id(p) not in covered]
    if missing:
        raise ConfigError(
            f"init=None re-initialises modules with their reset_parameters(), which does not "
            f"cover the parameters {missing}. Pass init=, a callable seed -> a freshly built "
            "model (for a suite run: init=rebuild(run).initial_model)."
        )
    with torch.no_grad():
        for module in model.modules():
            for m in _RESET_METHODS:
                method = getattr(module, m, None)
                if callable(method):
                    method()
                    break


def _check_same_architecture(model: nn.Module, fresh: nn.Module) -> None:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    differ = [f"missing {k!r}" for k in want if k not in got]
    differ += [f"unexpected {k!r}" for k in got if k not in want]
    differ += [
        f"{k!r} has shape {got[k]}, expected {want[k]}"
        for k in want
        if k in got and got[k] != want[k]
    ]
    if differ:
        raise ConfigError(
            "init must build model's architecture (the checkpoints'); its module differs: "
            f"{'; '.join(differ)}."
        )


def _gaussian_measurements(
    acts: torch.Tensor | None,
    reason: str | None,
    metrics: Sequence[str],
    reduce: ReduceRule,
    layout: Layout,
    surrogate: Callable[[Any], list[NDArray[np.float64]]],
    n_draws: int,
) -> list[list[Measurement]]:
    """Metrics of ``n_draws`` Gaussian surrogates of one layer's activations."""
    if reason is not None or acts is None:
        return [_nan(metrics, reason or "no activations")] * n_draws
    try:
        X = reduce_activation(acts, rule=reduce, layout=layout)
        draws = surrogate(X)
    except _DATA_ERRORS as exc:  # non-finite activations of a diverged checkpoint
        why = f"{type(exc).__name__}: {exc}"
        return [_nan(metrics, why)] * n_draws
    if isinstance(X, torch.Tensor):  # measured in the representation's precision
        return [measure(torch.as_tensor(Y, dtype=X.dtype), metrics) for Y in draws]
    return [measure(Y, metrics) for Y in draws]
