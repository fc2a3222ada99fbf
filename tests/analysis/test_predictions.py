"""Pre-registered predictions: the file format, locking, and verdicts on planted runs."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from traindyn.analysis import predictions as P
from traindyn.analysis.noise import trajectory_noise
from traindyn.analysis.synthetic import planted_metrics
from traindyn.exceptions import ConfigError, StoreError
from traindyn.store import Run, open_run

N, EVERY, JUMP = 200, 5, 100  # 200 samples, steps 0..995, a planted drop at step 500

PREDICTIONS = """\
predictions:
  - id: pr-drops
    claim: Participation ratio of l1 drops by at least 20% over training
    target: {layer: l1, metric: participation_ratio}
    statistic: relative_change
    expect: {op: "<=", value: -0.2}
    partial: {op: "<", value: -0.05}
  - id: event-mid
    claim: l1 changes abruptly in the middle of training
    target: {layer: l1, metric: participation_ratio}
    window: {fraction: [0.4, 0.6]}
    statistic: first_event_step
    expect: {between: [450, 550]}
  - id: l0-stable
    claim: l0 stays where it is
    target: {layer: l0, metric: participation_ratio}
    statistic: relative_change
    expect: {between: [-0.02, 0.02]}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def fill(run: Run, *, jump: float, seed: int = 0, scalars: bool = True) -> Run:
    """Metrics of l0 and l1 (l1 with a planted step of ``jump`` at step 500), and scalars."""
    jumps = {"l1": {JUMP: jump}} if jump else {}
    table = planted_metrics(n_samples=N, layers=["l0", "l1"], jumps=jumps, noise=0.01, seed=seed)
    run.append_metrics(table[["step", "layer", "metric", "value"]].itertuples(index=False))
    if scalars:
        for step in range(0, N * EVERY, EVERY):
            run.append_scalars(
                step, {"loss": 2.0 - step / 1000, "probe_accuracy": 0.1 + step / 1250}
            )
    run.finish()
    return run


def new_run(path: Path, **config: object) -> Run:
    return Run.create(path, config={"total_steps": (N - 1) * EVERY, **config}, handle_signals=False)


@pytest.fixture
def pfile(tmp_path: Path) -> Path:
    return write(tmp_path / "predictions.yaml", PREDICTIONS)


def verdicts(result: P.PredictionCheck) -> dict[str, str]:
    return dict(zip(result.table["id"], result.table["verdict"], strict=True))


# --------------------------------------------------------------------------- done-when


def test_locked_predictions_are_judged_on_a_planted_run_and_a_null_run(
    tmp_path: Path, pfile: Path
) -> None:
    planted, null = tmp_path / "planted", tmp_path / "null"
    for path in (planted, null):
        got = P.lock(pfile, run=path)  # before the runs exist: a pending lock
        assert got.pending == path / "predictions.lock.json"
        assert got.runs == ()
    fill(new_run(planted), jump=-3.0)
    fill(new_run(null), jump=0.0)

    for path in (planted, null):
        manifest = open_run(path).manifest
        assert manifest.predictions is not None
        assert not manifest.predictions.late
        assert manifest.predictions.locked_at <= manifest.created_at
        assert manifest.predictions.content == pfile.read_text()
        assert not (path / "predictions.lock.json").exists()  # moved into run.json

    on_planted = P.check(planted)
    assert verdicts(on_planted) == {
        "pr-drops": "SUPPORTED",
        "event-mid": "SUPPORTED",
        "l0-stable": "SUPPORTED",
    }
    drop = on_planted.table.set_index("id").loc["pr-drops"]
    assert drop["value"] == pytest.approx(-0.3, abs=0.01)  # 10 -> 7
    assert re.search(
        r"planted/l1: (9\.9|10\.0)\d* -> (6\.9|7\.0)\d* = -(29|30)\.\d%", drop["detail"]
    )
    event = on_planted.table.set_index("id").loc["event-mid", "value"]
    assert abs(event - 500) <= 2 * EVERY

    on_null = P.check(null)
    assert verdicts(on_null) == {
        "pr-drops": "NOT SUPPORTED",
        "event-mid": "NOT SUPPORTED",  # no surviving event: the prediction failed
        "l0-stable": "SUPPORTED",
    }
    assert not on_null.late
    assert not on_null.edited
    # the verdicts are stored where the report looks for them
    stored = open_run(null).read_analysis("predictions")
    assert list(stored["verdict"]) == list(on_null.table["verdict"])


def test_an_edit_after_the_lock_is_caught_and_the_locked_text_is_judged(
    tmp_path: Path, pfile: Path
) -> None:
    P.lock(pfile, run=tmp_path / "run")
    fill(new_run(tmp_path / "run"), jump=-1.0)  # a 10% drop: the -20% claim fails
    assert verdicts(P.check(tmp_path / "run"))["pr-drops"] == "PARTIALLY SUPPORTED"

    # moving the goalposts after seeing the data
    write(pfile, PREDICTIONS.replace("value: -0.2}", "value: -0.05}"))
    result = P.check(tmp_path / "run")
    assert result.edited
    assert result.changes == ("pr-drops changed",)
    assert any(n.startswith("EDITED AFTER LOCK") for n in result.notes)
    assert verdicts(result)["pr-drops"] == "PARTIALLY SUPPORTED"  # the locked claim
    assert result.table["edited"].all()

    other = write(tmp_path / "other.yaml", PREDICTIONS + PREDICTIONS.split("\n", 1)[1].replace(
        "id: pr-drops", "id: new-one").replace("id: event-mid", "id: e2").replace(
        "id: l0-stable", "id: e3"))  # fmt: skip
    assert set(P.check(tmp_path / "run", file=other).changes) == {
        "new-one added",
        "e2 added",
        "e3 added",
    }


def test_locking_a_run_with_data_needs_late_and_is_shown(tmp_path: Path, pfile: Path) -> None:
    fill(new_run(tmp_path / "run"), jump=-3.0)
    with pytest.raises(ConfigError, match=r"already hold\(s\) data.*--late"):
        P.lock(pfile, run=tmp_path / "run")
    assert open_run(tmp_path / "run").manifest.predictions is None  # nothing was written

    got = P.lock(pfile, run=tmp_path / "run", late=True)
    assert got.late == (tmp_path / "run",)
    lock = open_run(tmp_path / "run").manifest.predictions
    assert lock is not None
    assert lock.late
    assert lock.rows_at_lock == 2 * N + 2 * N  # 400 metric rows + 400 scalar rows
    assert lock.last_step_at_lock == (N - 1) * EVERY
    result = P.check(tmp_path / "run")
    assert result.late
    assert result.table["late"].all()
    assert result.notes[0].startswith("LATE: locked at")


def test_a_lock_is_never_replaced(tmp_path: Path, pfile: Path) -> None:
    P.lock(pfile, run=tmp_path / "run")
    other = write(tmp_path / "other.yaml", PREDICTIONS.replace("-0.2", "-0.5"))
    with pytest.raises(StoreError, match="never replaced"):
        P.lock(other, run=tmp_path / "run")  # the pending lock
    fill(new_run(tmp_path / "run"), jump=-3.0)
    with pytest.raises(StoreError, match="never replaced"):
        P.lock(other, run=tmp_path / "run", late=True)
    P.lock(pfile, run=tmp_path / "run", late=True)  # the same file again is a no-op
    lock = open_run(tmp_path / "run").manifest.predictions
    assert lock is not None
    assert not lock.late


def test_a_run_being_written_cannot_be_locked(tmp_path: Path, pfile: Path) -> None:
    run = new_run(tmp_path / "run")
    try:
        with pytest.raises(StoreError, match="being written by pid"):
            P.lock(pfile, run=tmp_path / "run", late=True)
    finally:
        run.finish()


def test_a_suite_lock_reaches_every_run_created_in_it(tmp_path: Path, pfile: Path) -> None:
    suite = tmp_path / "suite"
    got = P.lock(pfile, suite=suite)
    assert got.pending == suite / "predictions.lock.json"
    for seed in (0, 1):
        fill(new_run(suite / f"mlp-seed{seed}"), jump=-3.0, seed=seed)
    fill(new_run(suite / "cnn-seed0"), jump=0.0)
    for name in ("mlp-seed0", "mlp-seed1", "cnn-seed0"):
        lock = open_run(suite / name).manifest.predictions
        assert lock is not None
        assert lock.sha256 == got.lock.sha256
    result = P.check(suite)
    assert not result.late
    # the pooled mean over 3 runs: -0.3, -0.3 and 0 -> -0.2
    row = result.table.set_index("id").loc["pr-drops"]
    assert row["value"] == pytest.approx(-0.2, abs=0.01)
    assert row["n_series"] == 3
    assert (suite / "analysis" / "predictions.parquet").is_file()


# --------------------------------------------------------------------------- statistics


def linear_run(path: Path, *, phases: list[dict[str, object]] | None = None) -> Run:
    """l0: 2 + 0.5 * step over steps 0..100 every 10; scalar acc = step / 100."""
    run = Run.create(
        path,
        config={"total_steps": 100, "experiment": {"phases": phases or []}},
        handle_signals=False,
    )
    for step in range(0, 101, 10):
        run.append_metrics([(step, "l0", "participation_ratio", 2 + 0.5 * step, None)])
        run.append_scalars(step, {"acc": step / 100})
    run.finish()
    return run


def judge(run: Run, body: str) -> dict[str, object]:
    text = "predictions:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    table = P.evaluate(P.parse(text), [run])
    return table.iloc[0].to_dict()


PR = "target: {layer: l0, metric: participation_ratio}"


@pytest.mark.parametrize(
    ("statistic", "window", "expected"),
    [
        ("final", "{}", 52.0),
        ("mean", "{}", 27.0),  # mean of 2 + 0.5 * (0, 10, ..., 100)
        ("change", "{steps: [20, 60]}", 20.0),  # 32 - 12
        ("relative_change", "{steps: [20, 60]}", 20.0 / 12.0),
        ("slope", "{}", 0.5),
        ("final", "{fraction: [0, 0.3]}", 17.0),  # step 30
        ("mean", "{phase: warmup}", 7.0),  # steps 0..20 inclusive: 2, 7, 12
    ],
)
def test_statistics_match_their_closed_form(
    tmp_path: Path, statistic: str, window: str, expected: float
) -> None:
    run = linear_run(tmp_path / "r", phases=[{"name": "warmup", "start": 0, "end": 20}])
    row = judge(
        run,
        f"""\
        - id: p
          claim: c
          {PR}
          window: {window}
          statistic: {statistic}
          expect: {{op: ">", value: -1000}}
        """,
    )
    assert row["value"] == pytest.approx(expected)
    assert row["verdict"] == "SUPPORTED"


def test_verdict_thresholds_and_the_partial_rule(tmp_path: Path) -> None:
    run = linear_run(tmp_path / "r")

    def verdict(expect: str, partial: str | None = None) -> object:
        rule = f"\n  partial: {partial}" if partial else ""
        body = f"- id: p\n  claim: c\n  {PR}\n  statistic: final\n  expect: {expect}{rule}\n"
        return judge(run, body)["verdict"]

    assert verdict('{op: ">=", value: 52}') == "SUPPORTED"  # the boundary is inclusive
    assert verdict('{op: ">", value: 52}') == "NOT SUPPORTED"
    assert verdict('{op: ">", value: 60}', '{op: ">", value: 50}') == "PARTIALLY SUPPORTED"
    assert verdict("{between: [50, 52]}") == "SUPPORTED"
    assert verdict("{between: [52.1, 60]}") == "NOT SUPPORTED"


def test_a_difference_between_groups_of_runs(tmp_path: Path) -> None:
    runs = {}
    for name, level in (("a-0", 1.0), ("a-1", 3.0), ("b-0", 0.5)):
        run = Run.create(tmp_path / name, handle_signals=False)
        run.append_scalars(0, {"acc": level})
        run.append_scalars(10, {"acc": level})
        run.finish()
        runs[name] = run
    text = """\
predictions:
  - id: d
    claim: group a ends above group b
    target: {runs: "a-*", scalar: acc}
    versus: {runs: "b-*"}
    statistic: difference
    of: final
    expect: {op: ">", value: 1}
"""
    row = P.evaluate(P.parse(text), list(runs.values())).iloc[0]
    assert row["value"] == pytest.approx((1.0 + 3.0) / 2 - 0.5)
    assert row["verdict"] == "SUPPORTED"
    assert row["n_series"] == 3


def test_across_all_judges_every_series(tmp_path: Path) -> None:
    run = Run.create(tmp_path / "r", handle_signals=False)
    for step in (0, 10):
        run.append_metrics(
            [
                (step, "l0", "pr", 1.0 + step, None),  # rises by 10
                (step, "l1", "pr", 1.0 + step / 2, None),  # rises by 5
            ]
        )
    run.finish()
    body = """\
    - id: p
      claim: every layer rises by more than 6
      target: {layer: "l*", metric: pr}
      statistic: change
      across: all
      expect: {op: ">", value: 6}
    """
    row = judge(run, body)
    assert row["verdict"] == "PARTIALLY SUPPORTED"
    assert row["detail"].startswith("1 of 2 series meet the expectation")
    mean = judge(run, body.replace("across: all", "across: mean"))
    assert mean["value"] == pytest.approx(7.5)
    assert mean["verdict"] == "SUPPORTED"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("target: {scalar: nope}\n  statistic: mean", "no scalar 'nope'"),
        ("target: {layer: l9, metric: participation_ratio}\n  statistic: mean", "no layer"),
        ("target: {runs: other, scalar: acc}\n  statistic: mean", "no run matches"),
        (f"{PR}\n  window: {{steps: [200, 300]}}\n  statistic: final", "0 finite sample"),
        (f"{PR}\n  window: {{steps: [0, 5]}}\n  statistic: change", "change needs 2"),
        (f"{PR}\n  window: {{phase: late}}\n  statistic: mean", "no phase 'late'"),
        ("target: {scalar: acc}\n  statistic: relative_change", "starts at 0"),
    ],
)
def test_untestable_predictions_say_why(tmp_path: Path, body: str, reason: str) -> None:
    run = linear_run(tmp_path / "r")
    row = judge(run, f'- id: p\n  claim: c\n  {body}\n  expect: {{op: ">", value: 0}}\n')
    assert row["verdict"] == "UNTESTABLE"
    assert np.isnan(row["value"])
    assert reason in row["detail"]


# --------------------------------------------------------------------------- the file


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("target: {metric: pr}\n  statistic: mean\n  expect: {op: '>', value: 1}", "needs a layer"),
        ("target: {scalar: a}\n  statistic: mean\n  expect: {op: '=', value: 1}", "expect.op"),
        ("target: {scalar: a}\n  statistic: mean\n  expect: {between: [2, 1]}", "lo <= hi"),
        ("target: {scalar: a}\n  statistic: median\n  expect: {op: '>', value: 1}", "statistic"),
        (
            "target: {scalar: a}\n  window: {fraction: [0, 30]}\n  statistic: mean\n"
            "  expect: {op: '>', value: 1}",
            "30% is 0.3",
        ),
        ("target: {scalar: a}\n  statistic: difference\n  expect: {op: '>', value: 1}", "versus"),
        (
            "target: {scalar: a}\n  statistic: mean\n  expect: {op: '>', value: 1}\n  extra: 1",
            "extra",
        ),
    ],
)
def test_invalid_files_name_the_field(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path / "bad.yaml", f"predictions:\n- id: p\n  claim: c\n  {body}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml") as info:
        P.load(path)
    assert message in str(info.value)


def test_duplicate_ids_and_invalid_files_are_refused_before_anything_is_locked(
    tmp_path: Path, pfile: Path
) -> None:
    dup = write(tmp_path / "dup.yaml", PREDICTIONS + PREDICTIONS.split("\n", 1)[1])
    with pytest.raises(ConfigError, match="used twice"):
        P.lock(dup, run=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="not valid YAML"):
        P.parse("predictions: [", source="x.yaml")
    with pytest.raises(ConfigError, match=r"exactly one of run= .* or suite="):
        P.lock(pfile)


def test_checking_without_a_lock_evaluates_the_file_marked_unlocked(
    tmp_path: Path, pfile: Path
) -> None:
    fill(new_run(tmp_path / "run"), jump=-3.0)
    with pytest.raises(ConfigError, match="no predictions are locked"):
        P.check(tmp_path / "run")
    result = P.check(tmp_path / "run", file=pfile, write=False)
    assert result.lock is None
    assert not result.table["locked"].any()
    assert result.notes[0].startswith("NOT LOCKED")
    assert verdicts(result)["pr-drops"] == "SUPPORTED"
    assert not (tmp_path / "run" / "analysis" / "predictions.parquet").exists()


def test_the_lock_lives_in_run_json(tmp_path: Path, pfile: Path) -> None:
    P.lock(pfile, run=tmp_path / "run")
    fill(new_run(tmp_path / "run"), jump=-3.0)
    raw = json.loads((tmp_path / "run" / "run.json").read_text())
    import hashlib

    assert raw["predictions"]["sha256"] == hashlib.sha256(pfile.read_bytes()).hexdigest()
    assert raw["predictions"]["source"] == str(pfile.resolve())


def test_a_change_inside_the_noise_is_unresolved_with_beyond_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    run = Run.create(tmp_path / "r", handle_signals=False)
    values = 10 + 0.01 * rng.standard_normal(400)
    values[-1] = values[0] + 0.005  # a "change" of half the per-sample noise
    run.append_metrics([(5 * i, "l0", "pr", float(v), None) for i, v in enumerate(values)])
    run.finish()
    body = """\
    - id: p
      claim: l0 rises
      target: {layer: l0, metric: pr}
      statistic: change
      expect: {op: ">", value: 0}
    """
    plain = judge(run, body)
    assert plain["verdict"] == "SUPPORTED"
    assert plain["value"] == pytest.approx(0.005)
    noise = float(re.search(r"noise ±([0-9.e-]+)", str(plain["detail"])).group(1))  # type: ignore[union-attr]
    # the sd of a two-sample difference: sqrt(2) x the trajectory noise (true 0.01 here)
    assert noise == pytest.approx(np.sqrt(2) * trajectory_noise(values), rel=0.05)
    assert noise == pytest.approx(np.sqrt(2) * 0.01, rel=0.25)
    strict = judge(run, body + "  beyond_noise: 3\n")
    assert strict["verdict"] == "UNTESTABLE"
    assert "within 3x the noise" in str(strict["detail"])
    with pytest.raises(ConfigError, match="beyond_noise applies to change"):
        P.parse(
            "predictions:\n- {id: p, claim: c, target: {scalar: a}, statistic: mean, "
            "expect: {op: '>', value: 0}, beyond_noise: 3}\n"
        )
