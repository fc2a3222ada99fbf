"""Milestones: loss, match rate and confidence at fixed fractions of training.

Seed 004 kept a "Progress Tracking" section with a slot per milestone (15, 30, 50 and
100% of training) and filled loss and match rate in by hand, leaving "[TBD]" where it had
not looked yet. A Tracker given ``total_steps`` samples those steps whatever its schedule
(``milestones=``, default :data:`~traindyn.capture.DEFAULT_MILESTONES`); this module reads
the slots back from the run's scalars. It also answers seed 004's open question, "compare
confidence on correct vs incorrect answers": the probe's mean probability of the correct
answer on the examples it gets right and on those it gets wrong.

Predictions about milestones are ordinary predictions on a fraction window, e.g. seed
004's "match rate rises while loss stays flat" (:mod:`traindyn.analysis.predictions`)::

    - {id: match-rises, claim: ..., target: {scalar: probe_accuracy},
       window: {fraction: [0, 0.3]}, statistic: relative_change, expect: {op: ">=", value: 0.2}}
    - {id: loss-flat, claim: ..., target: {scalar: probe_loss},
       window: {fraction: [0, 0.3]}, statistic: relative_change, expect: {between: [-0.05, 0.05]}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from traindyn.analysis.trajectories import total_steps_of
from traindyn.capture.tracker import DEFAULT_MILESTONES
from traindyn.exceptions import ConfigError
from traindyn.store import Run

__all__ = ["MILESTONE_COLUMNS", "milestones"]

_PROBE = (
    "probe_loss",
    "probe_accuracy",
    "probe_confidence",
    "probe_confidence_correct",
    "probe_confidence_incorrect",
)
MILESTONE_COLUMNS = [
    "fraction",
    "target_step",
    "step",
    "reached",
    "train_loss",
    "train_accuracy",
    *_PROBE,
]
"""Columns of :func:`milestones`: the milestone, the probe sample used (``step``), whether
training got there, the training loss and batch match rate averaged over the trailing
window, and the probe's values at ``step``."""


def milestones(
    run: Run,
    fractions: Sequence[float] | None = None,
    *,
    smooth: float = 0.05,
    scalars: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The milestone table of a run: one row per fraction of training.

    Parameters
    ----------
    run : Run
        An open run (read-only is fine).
    fractions : sequence of float in (0, 1], optional
        Default: the milestones recorded by the Tracker in ``run.json``, else
        :data:`~traindyn.capture.DEFAULT_MILESTONES` (15, 30, 50, 100%).
    smooth : float
        The training ``loss`` (and ``batch_accuracy``) are per-batch and noisy, so
        ``train_loss`` is their mean over the trailing ``smooth`` fraction of training,
        the steps ``(target - w, target]`` with ``w = max(1, round(smooth * total))``.
    scalars : DataFrame, optional
        The run's scalars when already read.

    Returns
    -------
    DataFrame
        :data:`MILESTONE_COLUMNS`. ``target_step`` is ``round(fraction * total_steps)``
        (``total_steps`` from ``run.json``, else the last recorded step). The probe columns
        come from the last probe sample at or before it (``step``; NaN when there is none,
        e.g. a run that has not got there: ``reached`` is False). Probe columns a run did
        not record (no targets in the probe) are NaN.

    Examples
    --------
    >>> import tempfile
    >>> from traindyn.store import Run
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with Run.create(f"{tmp}/r", config={"total_steps": 10}, handle_signals=False) as r:
    ...         for step in range(11):
    ...             r.append_scalars(step, {"loss": 1.0 - step / 20, "probe_accuracy": step / 10})
    ...     table = milestones(r, [0.5, 1.0], smooth=0.1)
    >>> table[["fraction", "target_step", "step", "train_loss", "probe_accuracy"]]
       fraction  target_step  step  train_loss  probe_accuracy
    0       0.5            5     5        0.75             0.5
    1       1.0           10    10        0.50             1.0
    """
    fractions = _fractions(run, fractions)
    if not 0 < smooth <= 1:
        raise ConfigError(f"smooth must be a fraction of training in (0, 1]; got {smooth!r}.")
    s = run.scalars if scalars is None else scalars
    total = max(total_steps_of(run, s), 1)
    wide = (
        s.pivot_table(index="step", columns="name", values="value", aggfunc="last")
        if len(s)
        else pd.DataFrame()
    )
    last_step = int(s["step"].max()) if len(s) else -1
    window = max(1, round(smooth * total))
    probe_steps = (
        wide.index[wide[[c for c in _PROBE if c in wide.columns]].notna().any(axis=1)]
        if any(c in wide.columns for c in _PROBE)
        else pd.Index([], dtype=np.int64)
    )
    rows = []
    for f in fractions:
        target = round(f * total)
        # a loop over range(total) stops at total - 1: that is its 100% state
        reached = last_step >= target or (f == 1.0 and last_step >= total - 1)
        row: dict[str, Any] = {"fraction": f, "target_step": target, "reached": reached}
        before = probe_steps[probe_steps <= target]
        step = int(before.max()) if len(before) else None
        row["step"] = step if step is not None else pd.NA
        at: dict[Any, Any] = {} if step is None else wide.loc[step].to_dict()
        for name in _PROBE:
            row[name] = float(at.get(name, math.nan))
        trailing = wide[(wide.index > target - window) & (wide.index <= target)]
        for out, name in (("train_loss", "loss"), ("train_accuracy", "batch_accuracy")):
            values = trailing[name].dropna() if name in trailing.columns else pd.Series()
            row[out] = float(values.mean()) if len(values) else math.nan
        rows.append(row)
    table = pd.DataFrame(rows, columns=MILESTONE_COLUMNS)
    table["step"] = table["step"].astype("Int64")
    return table


def _fractions(run: Run, fractions: Sequence[float] | None) -> list[float]:
    given: Sequence[Any]
    if fractions is None:
        config = run.manifest.config
        tracker = config.get("tracker") if isinstance(config, Mapping) else None
        recorded = tracker.get("milestones") if isinstance(tracker, Mapping) else None
        given = recorded if isinstance(recorded, list) and recorded else DEFAULT_MILESTONES
    else:
        given = fractions
    out = []
    for i, f in enumerate(given):
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f <= 1:
            raise ConfigError(f"fractions[{i}] must be in (0, 1] (30% is 0.3); got {f!r}.")
        out.append(float(f))
    return sorted(set(out))
