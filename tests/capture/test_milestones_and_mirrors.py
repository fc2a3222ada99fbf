"""Tracker milestones (seed 004), confidence on right vs wrong answers, mirrors, and
predictions locked by the Tracker."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import nn

import traindyn as td
from traindyn.analysis import predictions as P
from traindyn.exceptions import ConfigError, TrackerWarning


def task(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    x = torch.randn(300, 8)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    return model, x, y


def train(tracker: td.Tracker, model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    with tracker:
        for step in range(n + 1):  # step n is the state after the last update
            loss = nn.functional.cross_entropy(model(x[100:]), y[100:])
            tracker.step(step, loss=loss)
            if step < n:
                opt.zero_grad()
                loss.backward()
                opt.step()


def test_milestones_are_sampled_whatever_the_schedule(tmp_path: Path) -> None:
    model, x, y = task()
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=1000,
                         total_steps=200)  # fmt: skip
    train(tracker, model, x, y, 200)
    run = td.open_run(tmp_path / "r")
    # step 0 (the schedule), 30, 60, 100, 200 (15/30/50/100%) and 199 (a range(200) loop's end)
    assert sorted(run.metrics["step"].unique()) == [0, 30, 60, 100, 199, 200]
    tracker_config = run.manifest.config["tracker"]
    assert tracker_config["total_steps"] == 200
    assert tracker_config["milestones"] == [0.15, 0.3, 0.5, 1.0]

    table = td.analysis.milestones(run)
    assert list(table["target_step"]) == [30, 60, 100, 200]
    assert list(table["step"]) == [30, 60, 100, 200]
    assert table["reached"].all()
    probe = run.scalars.pivot_table(index="step", columns="name", values="value")
    for row in table.itertuples():
        assert row.probe_accuracy == probe.loc[row.step, "probe_accuracy"]
        # train_loss: the mean loss over the trailing 5% (10 steps) of training
        window = probe.loc[row.target_step - 9 : row.target_step, "loss"]
        assert row.train_loss == pytest.approx(window.mean())
    assert table["probe_accuracy"].iloc[-1] > table["probe_accuracy"].iloc[0]


def test_confidence_on_right_and_wrong_answers_matches_a_direct_computation(
    tmp_path: Path,
) -> None:
    model, x, y = task(seed=3)
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=[0])
    with tracker:
        tracker.step(0)
    with torch.no_grad():
        probs = torch.softmax(model(x[:100]).double(), dim=1)
    p_true = probs[torch.arange(100), y[:100]]
    right = probs.argmax(1) == y[:100]
    assert 0 < int(right.sum()) < 100  # an untrained model gets some right, some wrong
    got = td.open_run(tmp_path / "r").scalars.set_index("name")["value"]
    assert got["probe_confidence_correct"] == pytest.approx(float(p_true[right].mean()))
    assert got["probe_confidence_incorrect"] == pytest.approx(float(p_true[~right].mean()))
    assert got["probe_confidence"] == pytest.approx(float(p_true.mean()))
    # the right answers are the confident ones: p > 0.5 exactly when the argmax is right
    assert got["probe_confidence_correct"] > 0.5 > got["probe_confidence_incorrect"]


def test_a_run_that_stops_early_has_unreached_milestones(tmp_path: Path) -> None:
    model, x, y = task()
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=10,
                         total_steps=100)  # fmt: skip
    train(tracker, model, x, y, 40)  # killed at 40% of the plan
    table = td.analysis.milestones(td.open_run(tmp_path / "r"))
    assert list(table["reached"]) == [True, True, False, False]
    assert list(table["step"]) == [15, 30, 40, 40]  # the last sample before each target


@pytest.mark.parametrize("bad", [[0.0], [1.5], [-0.1], ["half"]])
def test_milestones_must_be_fractions(bad: list[object]) -> None:
    model, x, y = task()
    with pytest.raises(ConfigError, match=r"milestones\[0\] must be a fraction"):
        td.Tracker(model, probe=(x, y), milestones=bad)  # type: ignore[arg-type]


class ListMirror:
    def __init__(self) -> None:
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.closed = 0

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.logged.append((step, dict(values)))

    def close(self) -> None:
        self.closed += 1


def test_mirrors_receive_every_recorded_value(tmp_path: Path) -> None:
    model, x, y = task()
    mirror = ListMirror()
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=5,
                         mirrors=[mirror])  # fmt: skip
    train(tracker, model, x, y, 20)
    assert mirror.closed == 1
    run = td.open_run(tmp_path / "r")
    seen: dict[tuple[int, str], float] = {}
    for step, values in mirror.logged:
        for key, value in values.items():
            seen[(step, key)] = value
    for row in run.metrics.itertuples():
        assert seen[(row.step, f"{row.layer}/{row.metric}")] == pytest.approx(
            row.value, nan_ok=True
        )
    for row in run.scalars.itertuples():
        assert seen[(row.step, row.name)] == pytest.approx(row.value, nan_ok=True)
    assert len(seen) == len(run.metrics) + len(run.scalars)


class BrokenMirror(ListMirror):
    def log(self, step: int, values: Mapping[str, float]) -> None:
        raise OSError("disk full")


def test_a_failing_mirror_is_dropped_and_the_run_keeps_everything(tmp_path: Path) -> None:
    model, x, y = task()
    broken = BrokenMirror()
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=5,
                         mirrors=[broken])  # fmt: skip
    with pytest.warns(TrackerWarning, match="BrokenMirror failed in log.*disk full"):
        train(tracker, model, x, y, 20)
    assert broken.closed == 1  # dropped from logging, still closed (its files flushed)
    run = td.open_run(tmp_path / "r")
    assert run.status == "finished"
    assert sorted(run.metrics["step"].unique()) == [0, 5, 10, 15, 20]


def test_a_mirror_must_have_log_and_close() -> None:
    model, x, y = task()
    with pytest.raises(ConfigError, match=r"mirrors\[0\] must have log"):
        td.Tracker(model, probe=(x, y), mirrors=[object()])  # type: ignore[list-item]


def test_a_second_call_for_a_step_records_scalars_without_a_second_sample(
    tmp_path: Path,
) -> None:
    model, x, y = task()
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=5)
    with tracker:
        tracker.step(0, loss=1.0)
        tracker.step(0, lr=0.1)  # e.g. a framework's log event after its step event
    run = td.open_run(tmp_path / "r")
    assert run.metrics.groupby(["layer", "metric"]).size().eq(1).all()
    assert set(run.scalars["name"]) >= {"loss", "lr", "probe_accuracy"}


PREDICTIONS = """\
predictions:
  - id: match-rises
    claim: match rate rises by at least 20% in the first 30% of training
    target: {scalar: probe_accuracy}
    window: {fraction: [0, 0.3]}
    statistic: relative_change
    expect: {op: ">=", value: 0.2}
  - id: loss-flat
    claim: while the probe loss stays within 5% of where it started
    target: {scalar: probe_loss}
    window: {fraction: [0, 0.3]}
    statistic: relative_change
    expect: {between: [-0.05, 0.05]}
"""


def test_the_tracker_locks_predictions_before_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "predictions.yaml"
    path.write_text(textwrap.dedent(PREDICTIONS))
    model, x, y = task()
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=10,
                         total_steps=100, predictions=path)  # fmt: skip
    train(tracker, model, x, y, 100)
    run = td.open_run(tmp_path / "r")
    lock = run.manifest.predictions
    assert lock is not None
    assert not lock.late
    assert lock.rows_at_lock == 0
    result = P.check(tmp_path / "r")
    table = result.table.set_index("id")
    probe = run.scalars[run.scalars["name"] == "probe_accuracy"].set_index("step")["value"]
    expected = (probe[30] - probe[0]) / abs(probe[0])
    assert table.loc["match-rises", "value"] == pytest.approx(expected)
    assert table.loc["match-rises", "verdict"] == (
        "SUPPORTED" if expected >= 0.2 else "NOT SUPPORTED"
    )
    # seed 004's hypothesis is about a run where it holds; on this easy task the loss falls
    loss = run.scalars[run.scalars["name"] == "probe_loss"].set_index("step")["value"]
    change = (loss[30] - loss[0]) / loss[0]
    assert table.loc["loss-flat", "value"] == pytest.approx(change)
    assert table.loc["loss-flat", "verdict"] == (
        "SUPPORTED" if abs(change) <= 0.05 else "NOT SUPPORTED"
    )


def test_the_tracker_refuses_a_late_lock_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "predictions.yaml"
    path.write_text(textwrap.dedent(PREDICTIONS))
    model, x, y = task()
    train(
        td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=10), model, x, y, 10
    )
    tracker = td.Tracker(model, probe=(x[:100], y[:100]), run=tmp_path / "r", every=10,
                         resume=True, predictions=path)  # fmt: skip
    with pytest.raises(ConfigError, match=r"not pre-registered.*--late"):
        tracker.step(11)
    assert td.open_run(tmp_path / "r").manifest.predictions is None
