"""A killed writer: SIGKILL leaves a readable, unfinished run; SIGTERM flushes and fails it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from traindyn.store import open_run

CHILD = r"""
import sys, time
from traindyn.store import Run

path, mode = sys.argv[1], sys.argv[2]
run = Run.create(path)
step = 0
while True:
    run.append_metrics([
        (step, "encoder.layers.0/attn", "effective_rank", float(step), None),
        (step, "head", "twonn", float("nan"), "too few samples"),
    ])
    run.append_scalars(step, {"loss": 1.0 / (step + 1)})
    if mode == "kill":
        if run.maybe_flush(interval_s=0.2):
            print(step, flush=True)  # every row up to this step is on disk
    else:
        print(step, flush=True)  # appended (buffered: no flush is ever due)
        run.maybe_flush(interval_s=3600.0)
    step += 1
    time.sleep(0.001)
"""


def _start(path: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], n_lines: int) -> list[int]:
    assert proc.stdout is not None
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        steps: list[int] = []
        while len(steps) < n_lines:
            line = proc.stdout.readline()
            if not line:
                _, err = proc.communicate()
                pytest.fail(f"child exited early with {proc.returncode}:\n{err}")
            steps.append(int(line))
        return steps
    finally:
        watchdog.cancel()


def _check_complete_prefix(run_dir: Path, last_step: int) -> int:
    """Every step up to the last one on disk has all its rows; returns that last step."""
    run = open_run(run_dir)
    metrics, scalars = run.metrics, run.scalars
    top = int(metrics.step.max())
    assert top >= last_step
    assert metrics.step.tolist() == [s for s in range(top + 1) for _ in range(2)]
    attn = metrics[metrics.layer == "encoder.layers.0/attn"]
    assert (attn.value == attn.step.astype(float)).all()
    head = metrics[metrics.layer == "head"]
    assert head.value.isna().all()
    assert (head.reason == "too few samples").all()
    assert scalars.step.tolist()[: last_step + 1] == list(range(last_step + 1))
    np.testing.assert_array_equal(
        scalars.value[: last_step + 1], 1.0 / (np.arange(last_step + 1) + 1)
    )
    return top


def test_sigkill_leaves_a_readable_unfinished_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    proc = _start(run_dir, "kill")
    reported = _read_until(proc, 3)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    reported += [int(line) for line in out.split()]
    assert proc.returncode == -signal.SIGKILL

    _check_complete_prefix(run_dir, reported[-1])
    run = open_run(run_dir)
    assert run.status == "running"
    assert not run.is_finished
    assert run.is_stale  # its pid is gone


def test_sigterm_flushes_buffered_rows_and_fails_the_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "terminated"
    proc = _start(run_dir, "term")
    reported = _read_until(proc, 50)
    assert not list((run_dir / "metrics").glob("part-*.parquet"))  # all still buffered
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    reported += [int(line) for line in out.split()]
    assert proc.returncode == 128 + signal.SIGTERM, err

    _check_complete_prefix(run_dir, reported[-1])
    run = open_run(run_dir)
    assert run.status == "failed"
    assert run.manifest.error == "interrupted by SIGTERM"
    assert run.manifest.finished_at is not None
    assert not run.is_finished
    assert not run.is_stale
