"""A run killed mid-training and resumed ends exactly like an uninterrupted one."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import traindyn as td
from traindyn.exceptions import StoreError
from traindyn.experiments.suite import ExperimentSpec
from traindyn.experiments.trainer import train
from traindyn.store.training_state import (
    latest_training_state,
    load_training_state,
    save_training_state,
)

SPEC = {
    "arch": "mlp_medium",
    "dataset": "digits",
    "seed": 3,
    "train": {"steps": 120, "optimizer": "adam", "schedule": {"kind": "cosine"}},
    "tracking": {"every": 5, "probe_per_class": 5},
    "checkpoints": {"every": 20},
    "early_stopping": {"monitor": "probe_accuracy", "mode": "max", "patience": 50},
}

CHILD = """
    import sys, torch
    torch.set_num_threads(1)
    from traindyn.experiments.suite import ExperimentSpec
    from traindyn.experiments.trainer import train
    spec = ExperimentSpec.model_validate_json(sys.argv[2])
    def slow(n):
        import time; time.sleep(0.01)
    train(spec, sys.argv[1], progress=slow)
"""


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    spec = ExperimentSpec.model_validate(SPEC)
    train(spec, tmp_path / "reference")  # one torch thread (tests/conftest.py), as the child

    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    run_dir = tmp_path / "resumed"
    with subprocess.Popen([sys.executable, str(script), str(run_dir), spec.model_dump_json()]) as p:
        deadline = time.time() + 60
        while time.time() < deadline and (latest_training_state(run_dir) or 0) < 40:
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert not td.open_run(run_dir).is_finished
    assert 40 <= (latest_training_state(run_dir) or 0) < 120

    train(spec, run_dir, resume=True)
    a, b = td.open_run(tmp_path / "reference"), td.open_run(run_dir)
    assert b.is_finished
    for table in ("metrics", "scalars"):
        ta, tb = getattr(a, table), getattr(b, table)
        keys = ["step", "layer", "metric"] if table == "metrics" else ["step", "name"]
        ta, tb = ta.sort_values(keys, ignore_index=True), tb.sort_values(keys, ignore_index=True)
        assert ta[keys].equals(tb[keys])
        assert ta["value"].tolist() == tb["value"].tolist()
    assert a.read_analysis("training") == b.read_analysis("training")


def test_training_state_round_trip_and_errors(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    rng = torch.get_rng_state()
    save_training_state(tmp_path, 7, optimizer=opt, rng_state=rng, extra={"loop": {"a": 1}})
    assert latest_training_state(tmp_path) is None  # no weights beside it yet
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    state = load_training_state(tmp_path, 7, optimizer=fresh)
    assert torch.equal(state.rng_state, rng)
    assert state.extra == {"loop": {"a": 1}}
    for p in model.parameters():
        assert torch.equal(fresh.state[p]["exp_avg"], opt.state[p]["exp_avg"])
    assert fresh.param_groups[0]["lr"] == 0.1
    with pytest.raises(StoreError, match="not a readable training state"):
        load_training_state(tmp_path, 8, optimizer=fresh)
    other = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(StoreError, match="does not fit this optimiser"):
        load_training_state(tmp_path, 7, optimizer=other)


def test_resume_skips_finished_runs(tmp_path: Path) -> None:
    from traindyn.experiments.executors import run_experiments

    small = {**SPEC, "train": {"steps": 10}, "checkpoints": {"every": 5}}
    first = ExperimentSpec.model_validate(small)
    second = ExperimentSpec.model_validate({**small, "seed": 4})
    run_experiments([first], tmp_path, workers=0, show_progress=False)
    manifest = (tmp_path / first.run_name / "run.json").read_text()
    results = run_experiments(
        [first, second], tmp_path, workers=0, show_progress=False, resume=True
    )
    assert [r.status for r in results] == ["finished", "finished"]
    assert (tmp_path / first.run_name / "run.json").read_text() == manifest  # untouched
    assert results[0].outcome is not None and results[0].outcome.last_step == 10
    assert td.open_run(tmp_path / second.run_name).is_finished
