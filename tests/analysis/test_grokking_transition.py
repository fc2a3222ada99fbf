"""Issue 5, item 4: on a grokking suite the representation transition is found near the
step where test accuracy jumps, and the shuffled-label control has no event that
training does not explain.

The module fixture trains the built-in suite ``grokking-fast`` (modular addition p = 31,
800 full-batch steps measured every 10, seeds 0-2 of the task and of its shuffled-label
control) once, on 2 workers, and finds each run's memorisation step and accuracy jump
(79 s for the six runs on 2 cores). The control is not quiet: like the task, it
reorganises its representation when it memorises and at every Adam "slingshot" collapse
of training accuracy (about every 120 steps), and those events are real, so the check on
the control is that each of its surviving events sits at such a collapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import traindyn as td
from traindyn.analysis import analyze_run
from traindyn.analysis.transitions import accuracy_jump, first_step_reaching
from traindyn.exceptions import ConfigError
from traindyn.experiments.executors import run_experiments
from traindyn.experiments.suite import builtin_suite, expand_suite

SUITE = "grokking-fast"
MEMORISED = 0.99  # batch_accuracy (full batch: the whole training set) at memorisation
GENERALISED = 0.9  # the final probe accuracy of a run that grokked


@dataclass(frozen=True)
class GrokRun:
    """One trained run of the suite.

    ``jump`` is :func:`accuracy_jump` of ``probe_accuracy`` after memorisation (the
    first sample halfway between the post-memorisation plateau and the final level);
    None for a control, whose probe accuracy never rises.
    """

    path: Path
    seed: int
    control: bool
    memorised: int  # first step with batch_accuracy >= MEMORISED
    jump: int | None
    final_probe_accuracy: float
    total_steps: int


@dataclass(frozen=True)
class GrokkingRuns:
    grok: tuple[GrokRun, ...]  # seeds 0, 1, 2 of the task
    control: tuple[GrokRun, ...]  # the same seeds with shuffled training labels


def _describe(path: Path, seed: int, control: bool) -> GrokRun:
    scalars = td.open_run(path).scalars
    memorised = first_step_reaching(scalars, "batch_accuracy", MEMORISED)
    try:
        jump: int | None = accuracy_jump(scalars, after=memorised).step
    except ConfigError:
        jump = None
    probe = scalars[scalars["name"] == "probe_accuracy"]
    return GrokRun(
        path=path,
        seed=seed,
        control=control,
        memorised=memorised,
        jump=jump,
        final_probe_accuracy=float(probe["value"].iloc[-1]),
        total_steps=int(scalars["step"].max()),
    )


@pytest.fixture(scope="module")
def grokking_runs(tmp_path_factory: pytest.TempPathFactory) -> GrokkingRuns:
    root = tmp_path_factory.mktemp("grokking-fast")
    specs = expand_suite(builtin_suite(SUITE))
    results = run_experiments(specs, root, workers=2, show_progress=False)
    failed = [(r.name, r.error) for r in results if r.status != "finished"]
    assert not failed, failed
    runs = [
        _describe(r.run_dir, spec.seed, spec.dataset.endswith("_shuffled"))
        for spec, r in zip(specs, results, strict=True)
    ]
    return GrokkingRuns(
        grok=tuple(sorted((r for r in runs if not r.control), key=lambda r: r.seed)),
        control=tuple(sorted((r for r in runs if r.control), key=lambda r: r.seed)),
    )


def test_every_seed_groks_after_memorising(grokking_runs: GrokkingRuns) -> None:
    assert [r.seed for r in grokking_runs.grok] == [0, 1, 2]
    for run in grokking_runs.grok:
        assert run.jump is not None, run
        assert run.memorised < run.jump, run  # the jump comes after memorisation...
        assert run.jump >= 3 * run.memorised, run  # ...well after: that is grokking
        assert run.jump <= 0.8 * run.total_steps, run  # with room to see the aftermath
        assert run.final_probe_accuracy >= GENERALISED, run


def test_the_control_memorises_but_never_jumps(grokking_runs: GrokkingRuns) -> None:
    assert [r.seed for r in grokking_runs.control] == [0, 1, 2]
    for run in grokking_runs.control:
        assert run.memorised < run.total_steps, run
        assert run.jump is None, run
        assert run.final_probe_accuracy < 0.1, run  # chance is 1/31
        with pytest.raises(ConfigError, match="never jumps"):
            accuracy_jump(td.open_run(run.path).scalars, after=run.memorised)


JUMP_TOLERANCE = 0.05  # of training: 40 of 800 steps, 4 samples
COLLAPSE_TOLERANCE = 20  # steps: 2 samples around a collapse of training accuracy


def _collapses(path: Path, after: int) -> list[int]:
    """Steps after memorisation where training accuracy collapses below 0.9 (Adam's
    "slingshot" instabilities, seen in both the task and the control)."""
    scalars = td.open_run(path).scalars
    acc = scalars[(scalars["name"] == "batch_accuracy") & (scalars["step"] > after)]
    return acc.loc[acc["value"] < 0.9, "step"].astype(int).tolist()


def test_transition_detected_near_accuracy_jump(grokking_runs: GrokkingRuns) -> None:
    # Every seed: a surviving representation event within 5% of training of the step where
    # test accuracy jumps.
    for run in grokking_runs.grok:
        assert run.jump is not None
        events = analyze_run(run.path).surviving
        late = events[events["location"] > run.memorised + 20]
        distance = (late["location"] - run.jump).abs()
        assert len(late) and distance.min() <= JUMP_TOLERANCE * run.total_steps, (
            f"seed {run.seed}: accuracy jumps at {run.jump}; surviving events after "
            f"memorisation at {sorted(late['location'].unique().tolist())}"
        )
    # The control memorises and never generalises; its representation still reorganises
    # (memorisation, and each collapse of training accuracy), and those are real events.
    # What must not appear is an event that nothing in training explains: every surviving
    # control event after memorisation sits at a collapse of training accuracy.
    for run in grokking_runs.control:
        events = analyze_run(run.path).surviving
        late = events[events["location"] > run.memorised + 20]
        collapses = _collapses(run.path, run.memorised)
        unexplained = [
            int(step)
            for step in late["location"].unique()
            if not any(abs(int(step) - c) <= COLLAPSE_TOLERANCE for c in collapses)
        ]
        assert unexplained == [], (
            f"control seed {run.seed}: events at {unexplained}, collapses at {collapses}"
        )
