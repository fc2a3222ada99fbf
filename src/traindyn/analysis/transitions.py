"""Behavioural transitions of a run: when a scalar such as test accuracy jumps.

The reference a representation-change detector is judged against (Issue 5, item 4: the
representation transition of a grokking run must be found near the step where test
accuracy jumps). Two questions, each answered from a run's scalars table alone:

* :func:`accuracy_jump` (and its shorthand :func:`accuracy_jump_step`): the step where a
  rising scalar -- by default ``probe_accuracy``, the accuracy on the held-out probe --
  jumps, with the definition stated in the result;
* :func:`first_step_reaching`: the first step at which a scalar reaches a level, e.g.
  memorisation as ``batch_accuracy >= 0.99``.

Definition of the jump
----------------------
With the scalar's samples ``v_0 .. v_{n-1}`` in step order, the *early level* is the
median of the first ``early_fraction`` of the samples, the *final level* the median of the
last ``late_fraction``, and the *threshold* halfway between them. The jump step is the
first sampled step whose value reaches the threshold (the first crossing of half the
rise, like the midpoint of a sigmoid); ``interpolated_step`` places the crossing
linearly between that sample and the one before it. The *steepest rise* is the largest
increase between consecutive samples, reported at the later of the two samples. A
scalar whose final level exceeds its early level by less than ``min_rise`` never jumped,
and no step is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn.exceptions import ConfigError

__all__ = [
    "JUMP_DEFINITION",
    "AccuracyJump",
    "accuracy_jump",
    "accuracy_jump_step",
    "first_step_reaching",
]

JUMP_DEFINITION = (
    "first sampled step where {name} reaches halfway between its early level (median of "
    "the first {early:.0%} of samples) and its final level (median of the last {late:.0%})"
)
"""The definition recorded in :attr:`AccuracyJump.definition` (formatted per call)."""

_COLUMNS = ("step", "name", "value")


@dataclass(frozen=True)
class AccuracyJump:
    """Where a rising scalar jumps, and how that step was defined.

    Attributes
    ----------
    name : str
        The scalar (``"probe_accuracy"``...).
    step : int
        The first sampled step whose value reaches ``threshold``.
    interpolated_step : float
        The crossing of ``threshold`` interpolated linearly between ``step`` and the
        sample before it (equal to ``step`` when the first sample already reaches it).
    early_level, final_level : float
        Medians of the first and last samples (see ``definition``).
    threshold : float
        ``(early_level + final_level) / 2``.
    steepest_step : int
        The later sample of the largest increase between consecutive samples.
    steepest_rise : float
        That increase, in the scalar's units.
    n_samples : int
        Samples of the scalar (after dropping NaN).
    definition : str
        The definition of ``step`` in words.
    """

    name: str
    step: int
    interpolated_step: float
    early_level: float
    final_level: float
    threshold: float
    steepest_step: int
    steepest_rise: float
    n_samples: int
    definition: str

    @property
    def rise(self) -> float:
        """``final_level - early_level``."""
        return self.final_level - self.early_level


def _series(scalars: pd.DataFrame, name: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Steps and finite values of scalar ``name`` in step order (last write per step)."""
    if not isinstance(scalars, pd.DataFrame) or not set(_COLUMNS) <= set(scalars.columns):
        raise ConfigError(
            f"scalars must be a table with columns {list(_COLUMNS)} (a run's "
            "traindyn.open_run(path).scalars); got "
            + (
                f"columns {list(scalars.columns)}"
                if isinstance(scalars, pd.DataFrame)
                else type(scalars).__name__
            )
            + "."
        )
    if "run" in scalars.columns and scalars["run"].nunique() > 1:
        raise ConfigError(
            f"scalars hold {scalars['run'].nunique()} runs; pass one run's rows "
            "(e.g. table[table.run == run_id])."
        )
    rows = scalars[scalars["name"] == name]
    if rows.empty:
        available = sorted(map(str, scalars["name"].unique()))
        raise ConfigError(
            f"scalar {name!r} is not in this run; it has {available}. probe_accuracy is "
            "recorded only when the tracker has a labelled probe (traindyn's trainer always "
            "gives it one); pass name= one of the scalars listed."
        )
    rows = rows[np.isfinite(rows["value"].to_numpy(dtype=np.float64))]
    rows = rows.sort_values("step", kind="stable").drop_duplicates("step", keep="last")
    return rows["step"].to_numpy(dtype=np.int64), rows["value"].to_numpy(dtype=np.float64)


def _check_fraction(label: str, value: float) -> None:
    if not 0 < value <= 0.5:
        raise ConfigError(f"{label} must be in (0, 0.5]; got {value!r}.")


def accuracy_jump(
    scalars: pd.DataFrame,
    *,
    name: str = "probe_accuracy",
    early_fraction: float = 0.1,
    late_fraction: float = 0.1,
    min_rise: float = 0.3,
    after: int | None = None,
) -> AccuracyJump:
    """Find the step where a rising scalar (by default test accuracy) jumps.

    Parameters
    ----------
    scalars : DataFrame
        One run's scalars: columns ``step``, ``name``, ``value``
        (``traindyn.open_run(path).scalars``).
    name : str
        The scalar; ``"probe_accuracy"`` is the accuracy on the held-out probe set.
    early_fraction, late_fraction : float
        Shares of the samples, in (0, 0.5], whose medians are the early and final levels
        (at least one sample each).
    min_rise : float
        The least ``final_level - early_level`` that counts as a jump, in the scalar's
        units (0.3: 30 points of accuracy).
    after : int, optional
        Use only the samples at steps ``>= after``. For grokking pass the memorisation
        step (:func:`first_step_reaching` of ``batch_accuracy``): test accuracy often
        rises a first time while the training set is memorised (on a commutative
        operation, the test pairs whose mirror ``b op a`` is a training pair), and the
        early level should be the plateau the late jump starts from, not chance.

    Returns
    -------
    AccuracyJump
        The jump step (first sample reaching halfway between the early and final
        levels), its interpolation, the levels and the steepest rise.

    Raises
    ------
    ConfigError
        If ``scalars`` is not one run's scalars table, ``name`` is not recorded in it
        (the message lists the scalars that are), it has fewer than 3 finite samples, a
        fraction is outside (0, 0.5], or the scalar never rises by ``min_rise`` (the run
        did not generalise: train longer, or lower ``min_rise`` if a smaller rise is
        expected).

    Examples
    --------
    A sigmoid from 0.02 to 1.0 with its midpoint at step 990, sampled every 50 steps:

    >>> steps = np.arange(0, 3001, 50)
    >>> acc = 0.02 + 0.98 / (1 + np.exp(-(steps - 990) / 80))
    >>> table = pd.DataFrame({"step": steps, "name": "probe_accuracy", "value": acc})
    >>> jump = accuracy_jump(table)
    >>> jump.step, round(jump.interpolated_step), jump.steepest_step
    (1000, 990, 1000)
    >>> round(jump.early_level, 2), round(jump.final_level, 2)
    (0.02, 1.0)

    A first rise to 0.6 at step 200 (memorisation), then the late jump at step 1990:

    >>> late = np.where(steps < 200, 0.02, 0.6 + 0.4 / (1 + np.exp(-(steps - 1990) / 80)))
    >>> table = pd.DataFrame({"step": steps, "name": "probe_accuracy", "value": late})
    >>> accuracy_jump(table).step, accuracy_jump(table, after=200).step
    (200, 2000)
    """
    _check_fraction("early_fraction", early_fraction)
    _check_fraction("late_fraction", late_fraction)
    if not min_rise > 0:
        raise ConfigError(f"min_rise must be > 0; got {min_rise!r}.")
    steps, values = _series(scalars, name)
    if after is not None:
        keep = steps >= after
        steps, values = steps[keep], values[keep]
    n = len(values)
    if n < 3:
        since = "" if after is None else f" at steps >= {after}"
        raise ConfigError(
            f"scalar {name!r} has {n} finite sample(s){since}; a jump needs at least 3 "
            "(track more often or train longer)."
        )
    n_early = max(1, math.floor(early_fraction * n))
    n_late = max(1, math.floor(late_fraction * n))
    early = float(np.median(values[:n_early]))
    final = float(np.median(values[-n_late:]))
    if final - early < min_rise:
        raise ConfigError(
            f"scalar {name!r} never jumps: it goes from {early:.3g} (early) to {final:.3g} "
            f"(final), a rise of {final - early:.3g} < min_rise={min_rise:g}. The run did not "
            "generalise within its steps: train longer (or check that the labels are not "
            "shuffled), or lower min_rise if a smaller rise is expected."
        )
    threshold = (early + final) / 2
    i = int(np.flatnonzero(values >= threshold)[0])
    if i == 0:
        interpolated = float(steps[0])
    else:
        v0, v1 = values[i - 1], values[i]
        t = (threshold - v0) / (v1 - v0)  # v0 < threshold <= v1, so 0 < t <= 1
        interpolated = float(steps[i - 1] + t * (steps[i] - steps[i - 1]))
    rises = np.diff(values)
    k = int(np.argmax(rises))
    return AccuracyJump(
        name=name,
        step=int(steps[i]),
        interpolated_step=interpolated,
        early_level=early,
        final_level=final,
        threshold=threshold,
        steepest_step=int(steps[k + 1]),
        steepest_rise=float(rises[k]),
        n_samples=n,
        definition=JUMP_DEFINITION.format(name=name, early=early_fraction, late=late_fraction)
        + ("" if after is None else f", using the samples at steps >= {after}"),
    )


def accuracy_jump_step(
    scalars: pd.DataFrame,
    *,
    name: str = "probe_accuracy",
    early_fraction: float = 0.1,
    late_fraction: float = 0.1,
    min_rise: float = 0.3,
    after: int | None = None,
) -> int:
    """The step of :func:`accuracy_jump`: the first sample halfway up the rise.

    Parameters and errors are those of :func:`accuracy_jump`.

    Examples
    --------
    >>> steps = np.arange(0, 2001, 20)
    >>> acc = 1 / (1 + np.exp(-(steps - 690) / 40))
    >>> accuracy_jump_step(pd.DataFrame({"step": steps, "name": "probe_accuracy", "value": acc}))
    700
    """
    return accuracy_jump(
        scalars,
        name=name,
        early_fraction=early_fraction,
        late_fraction=late_fraction,
        min_rise=min_rise,
        after=after,
    ).step


def first_step_reaching(scalars: pd.DataFrame, name: str, level: float) -> int:
    """The first step at which scalar ``name`` is ``>= level``.

    Parameters
    ----------
    scalars : DataFrame
        One run's scalars (columns ``step``, ``name``, ``value``).
    name : str
        The scalar, e.g. ``"batch_accuracy"`` (training accuracy on the step's batch).
    level : float
        The level to reach, e.g. 0.99 for memorisation of the training set.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        If ``name`` is not recorded, or never reaches ``level`` (the message gives its
        maximum: train longer or lower ``level``).

    Examples
    --------
    >>> table = pd.DataFrame(
    ...     {"step": [0, 10, 20, 30], "name": "batch_accuracy", "value": [0.1, 0.6, 0.995, 1.0]}
    ... )
    >>> first_step_reaching(table, "batch_accuracy", 0.99)
    20
    """
    steps, values = _series(scalars, name)
    reached = np.flatnonzero(values >= level)
    if len(reached) == 0:
        best = f"its maximum is {values.max():.4g}" if len(values) else "it has no finite value"
        raise ConfigError(
            f"scalar {name!r} never reaches {level:g}; {best}. Train longer or lower the level."
        )
    return int(steps[reached[0]])
