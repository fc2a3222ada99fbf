"""Phases: construction, the chaining boundary rule, window statistics, real runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.compare import compare_runs
from traindyn.analysis.phases import (
    PHASE_SUMMARY_COLUMNS,
    Phase,
    equal_phases,
    format_change,
    fraction_windows,
    phase_summary,
    phases_of,
)
from traindyn.exceptions import ConfigError
from traindyn.store import Run

# Seed 000's pedagogical dimensionality, checkpoints every 500 steps over 10 000 steps:
# 16.13 -> 9.61 in phase 1, 9.61 -> 8.09 in phase 2, 8.09 -> 8.70 in phase 3.
STEPS = np.arange(0, 10_001, 500)
ANCHORS = {0: 16.13, 3000: 9.61, 6500: 8.09, 10_000: 8.70}
DIMENSION = np.interp(STEPS, list(ANCHORS), list(ANCHORS.values()))


def metrics_table(steps: np.ndarray, values: np.ndarray, layer: str = "judge") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.asarray(steps, dtype=np.int64),
            "layer": layer,
            "metric": "mle_dimension",
            "value": np.asarray(values, dtype=np.float64),
            "reason": pd.NA,
        }
    )


@pytest.fixture(scope="module")
def seed000() -> pd.DataFrame:
    return phase_summary(metrics_table(STEPS, DIMENSION), equal_phases(10_000, 3))


# --------------------------------------------------------------------------- Phase


def test_phase_holds_a_half_open_range() -> None:
    p = Phase("warmup", np.int64(10), 20)
    assert (p.start, p.end, p.length) == (10, 20, 10)
    assert type(p.start) is int
    assert p.contains(10) and p.contains(19) and not p.contains(20) and not p.contains(9)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("a", 5, 5), r"Phase 'a' end must be > start \(5\); got end=5"),
        (("a", 5, 3), r"end must be > start \(5\); got end=3"),
        (("", 0, 3), "name must be a non-empty string; got ''"),
        (("a", 0.5, 3), r"Phase 'a' start must be an integer step; got 0\.5"),
        (("a", 0, True), "Phase 'a' end must be an integer step; got True"),
    ],
)
def test_phase_validation(args: tuple[object, object, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Phase(*args)  # type: ignore[arg-type]


def test_equal_phases_reproduce_seed_000_split() -> None:
    phases = equal_phases(10_000, 3, names=["heavy", "balanced", "drift"])
    assert [(p.name, p.start, p.end) for p in phases] == [
        ("heavy", 0, 3334),
        ("balanced", 3334, 6667),
        ("drift", 6667, 10_000),
    ]
    assert [p.length for p in equal_phases(10, 5)] == [2] * 5
    assert [p.end for p in equal_phases(3, 3)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, 0), "n must be an integer >= 1; got 0"),
        ((2, 3), r"total_steps must be >= n \(3\).*got 2"),
        ((10, 2, ["a"]), "names must hold 2 names, one per phase; got"),
        ((10.0, 2), "total_steps must be an integer step; got 10.0"),
    ],
)
def test_equal_phases_validation(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        equal_phases(*args)  # type: ignore[arg-type]


def test_fraction_windows() -> None:
    assert [(p.name, p.start, p.end) for p in fraction_windows(10_000)] == [
        ("early", 0, 1000),
        ("mid", 1000, 5000),
        ("late", 5000, 10_000),
    ]
    halves = fraction_windows(7, boundaries=[0.5], names=["first", "second"])
    assert [(p.start, p.end) for p in halves] == [(0, 4), (4, 7)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"boundaries": (0.5, 0.1)},
            r"strictly increasing fractions in \(0, 1\); got \(0\.5, 0\.1\)",
        ),
        ({"boundaries": (0.0, 0.5)}, "strictly increasing fractions"),
        ({"names": ("a", "b")}, "names must hold 3 names"),
        ({"total_steps": 3}, r"total_steps=3 is too small.*empty window"),
        ({"total_steps": 0}, "total_steps must be an integer >= 1; got 0"),
    ],
)
def test_fraction_windows_validation(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"total_steps": 1000, **kwargs}
    with pytest.raises(ConfigError, match=match):
        fraction_windows(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- phase_summary


def test_seed_000_phase_one_drop(seed000: pd.DataFrame) -> None:
    row = seed000.iloc[0]
    assert row["phase"] == "phase_1" and (row["start"], row["end"]) == (0, 3334)
    assert row["first"] == pytest.approx(16.13) and row["last"] == pytest.approx(9.61)
    assert row["change"] == pytest.approx(-6.52)
    assert row["percent_change"] == pytest.approx(-40.42, abs=0.005)
    assert format_change(row["first"], row["last"]) == "16.13 -> 9.61 (40.4% drop)"


def test_consecutive_phases_chain(seed000: pd.DataFrame) -> None:
    # The boundary rule: first = x(start), last = x(end), x = last finite value at or before.
    assert seed000["first"].round(2).tolist() == [16.13, 9.61, 8.09]
    assert seed000["last"].round(2).tolist() == [9.61, 8.09, 8.70]
    assert seed000["first_step"].tolist() == [0, 3000, 6500]
    assert seed000["last_step"].tolist() == [3000, 6500, 10_000]
    assert seed000["last"].iloc[:-1].tolist() == seed000["first"].iloc[1:].tolist()
    assert seed000["change"].sum() == pytest.approx(DIMENSION[-1] - DIMENSION[0])


def test_window_statistics_match_numpy_on_half_open_ranges(seed000: pd.DataFrame) -> None:
    for _, row in seed000.iterrows():
        start, end = int(row["start"]), int(row["end"])
        inside = DIMENSION[(start <= STEPS) & (end > STEPS)]
        assert row["n"] == inside.size
        assert row["mean"] == pytest.approx(inside.mean())
        assert row["std"] == pytest.approx(inside.std(ddof=1))
        assert (row["min"], row["max"]) == (
            pytest.approx(inside.min()),
            pytest.approx(inside.max()),
        )
    # The final measurement (step 10 000) is `last` of phase 3 but in no window.
    assert seed000["n"].sum() == STEPS.size - 1


def test_a_measurement_on_a_boundary_belongs_to_the_later_window() -> None:
    table = metrics_table(np.array([0, 5, 10]), np.array([1.0, 2.0, 4.0]))
    out = phase_summary(table, [Phase("a", 0, 5), Phase("b", 5, 10)])
    assert out["n"].tolist() == [1, 1]
    assert out["mean"].tolist() == [1.0, 2.0]
    assert out["last"].tolist() == [2.0, 4.0]
    assert out["first"].tolist() == [1.0, 2.0]


def test_schema_and_dtypes(seed000: pd.DataFrame) -> None:
    assert list(seed000.columns) == [
        "phase",
        "start",
        "end",
        "layer",
        "metric",
        *PHASE_SUMMARY_COLUMNS,
    ]
    assert seed000["start"].dtype == np.int64 and seed000["n"].dtype == np.int64
    assert str(seed000["first_step"].dtype) == "Int64"
    for column in ("first", "last", "change", "percent_change", "mean", "std", "min", "max"):
        assert seed000[column].dtype == np.float64


def test_nan_values_are_skipped_and_unobserved_phases_are_nan() -> None:
    table = metrics_table(np.array([0, 10, 20, 30]), np.array([np.nan, 4.0, np.inf, 2.0]))
    phases = [Phase("p", 0, 25), Phase("q", 25, 40), Phase("gap", 100, 200)]
    out = phase_summary(table, phases).set_index("phase")
    # the series begins inside "p": first is its first finite value
    assert (out.loc["p", "first_step"], out.loc["p", "first"]) == (10, 4.0)
    assert (out.loc["p", "last_step"], out.loc["p", "last"]) == (10, 4.0)
    assert out.loc["p", "n"] == 1 and math.isnan(out.loc["p", "std"])
    assert (out.loc["q", "first"], out.loc["q", "last"], out.loc["q", "change"]) == (4.0, 2.0, -2.0)
    assert out.loc["q", "percent_change"] == pytest.approx(-50.0)
    gap = out.loc["gap"]
    assert gap["n"] == 0 and pd.isna(gap["first_step"]) and pd.isna(gap["last_step"])
    assert all(math.isnan(gap[c]) for c in ("first", "last", "change", "mean", "min"))


def test_percent_change_is_nan_when_first_is_zero() -> None:
    out = phase_summary(metrics_table(np.array([0, 1]), np.array([0.0, 3.0])), [Phase("p", 0, 1)])
    assert out["change"].iloc[0] == 3.0 and math.isnan(out["percent_change"].iloc[0])


def test_scalars_and_explicit_groups() -> None:
    scalars = pd.DataFrame(
        {
            "step": [0, 1, 2, 0, 1, 2],
            "name": ["loss"] * 3 + ["acc"] * 3,
            "value": [2.0, 1.0, 0.5, 0.1, 0.5, 0.9],
        }
    )
    out = phase_summary(scalars, [Phase("all", 0, 2)])
    assert list(out.columns[:4]) == ["phase", "start", "end", "name"]
    assert out["name"].tolist() == ["acc", "loss"]
    assert out["change"].tolist() == pytest.approx([0.8, -1.5])

    metrics = pd.concat(
        [metrics_table(STEPS, DIMENSION, "a"), metrics_table(STEPS, DIMENSION, "b")]
    )
    pooled = phase_summary(metrics, [Phase("all", 0, 10_001)], by=["metric"])
    assert list(pooled["metric"]) == ["mle_dimension"] and pooled["n"].iloc[0] == 2 * STEPS.size


def test_empty_table_and_no_phases() -> None:
    empty = metrics_table(np.array([], dtype=np.int64), np.array([]))
    out = phase_summary(empty, equal_phases(10, 2))
    assert out.empty and "percent_change" in out.columns
    assert phase_summary(metrics_table(STEPS, DIMENSION), []).empty


@pytest.mark.parametrize(
    ("table", "phases", "kwargs", "match"),
    [
        (
            None,
            [Phase("a", 0, 1), Phase("a", 1, 2)],
            {},
            r"phase names must be unique; got \['a'\]",
        ),
        (None, [(0, 10)], {}, r"phases\[0\] must be a Phase; got \(0, 10\)"),
        (
            pd.DataFrame({"step": [0], "value": [1.0]}),
            [],
            {},
            "metrics table .* or a scalars table",
        ),
        (None, [], {"by": ["nope"]}, r"by must name columns of table.*missing \['nope'\]"),
    ],
)
def test_phase_summary_validation(
    table: pd.DataFrame | None, phases: list[Phase], kwargs: dict[str, object], match: str
) -> None:
    table = metrics_table(STEPS, DIMENSION) if table is None else table
    with pytest.raises(ConfigError, match=match):
        phase_summary(table, phases, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("first", "last", "kwargs", "expected"),
    [
        (5.7, 5.0, {"digits": 1, "percent_digits": 0}, "5.7 -> 5.0 (12% drop)"),
        (8.09, 8.70, {}, "8.09 -> 8.70 (7.5% rise)"),
        (2.0, 2.0, {}, "2.00 -> 2.00 (no change)"),
        (0.0, 1.0, {}, "0.00 -> 1.00"),
        (math.nan, 1.0, {}, "nan -> 1.00"),
        (-2.0, -1.0, {}, "-2.00 -> -1.00 (50.0% rise)"),
    ],
)
def test_format_change(first: float, last: float, kwargs: dict[str, int], expected: str) -> None:
    assert format_change(first, last, **kwargs) == expected


# --------------------------------------------------------------------------- real runs


def _run(path: Path, config: dict[str, object] | None, holes: np.ndarray) -> Run:
    run = Run.create(path, config=config, handle_signals=False)
    run.append_metrics(
        [
            (int(s), "judge", "mle_dimension", float(v))
            for s, v in zip(STEPS, DIMENSION, strict=True)
        ]
        + [(int(s), "judge", "betti_1", float(h)) for s, h in zip(STEPS, holes, strict=True)]
    )
    for s in STEPS:
        run.append_scalars(int(s), {"loss": 1.0 / (1.0 + s)})
    run.finish()
    return run


def test_phases_of_real_runs(tmp_path: Path) -> None:
    recorded = [
        {"name": "drift", "start": 6667, "end": 10_000, "lr": None},
        {"name": "heavy", "start": 0, "end": 3334, "freeze": []},
        {"name": "balanced", "start": 3334, "end": 6667},
    ]
    config = {"experiment": {"phases": recorded, "seed": 0}, "total_steps": 10_000}
    holes_ped = np.linspace(5.7, 4.4, STEPS.size)
    holes_adv = 7.19 + 0.5 * np.sin(STEPS)  # no phase structure
    holes_adv += 7.19 - holes_adv.mean()
    pedagogical = _run(tmp_path / "ped", config, holes_ped)
    adversarial = _run(tmp_path / "adv", {"lr": 0.1}, holes_adv)

    phases = phases_of(pedagogical)
    assert [p.name for p in phases] == ["heavy", "balanced", "drift"]
    assert phases == equal_phases(10_000, 3, names=["heavy", "balanced", "drift"])
    assert phases_of(adversarial) == []

    out = phase_summary(pedagogical.metrics, phases)
    dims = out[out["metric"] == "mle_dimension"]
    assert [format_change(f, la) for f, la in zip(dims["first"], dims["last"], strict=True)] == [
        "16.13 -> 9.61 (40.4% drop)",
        "9.61 -> 8.09 (15.8% drop)",
        "8.09 -> 8.70 (7.5% rise)",
    ]
    assert set(phase_summary(pedagogical.scalars, phases)["name"]) == {"loss"}

    holes = compare_runs(adversarial.metrics, pedagogical.metrics, metric="betti_1")
    assert holes.mean_b == pytest.approx(holes_ped.mean())
    assert holes.mean_a == pytest.approx(7.19)


def test_phases_of_rejects_a_malformed_manifest(tmp_path: Path) -> None:
    config = {"experiment": {"phases": [{"name": "x", "start": 5, "end": 2}]}}
    run = Run.create(tmp_path / "bad", config=config, handle_signals=False)
    run.finish()
    with pytest.raises(
        ConfigError, match=r"experiment\.phases\[0\] in .*bad/run\.json: .*end must be > start"
    ):
        phases_of(run)
    run2 = Run.create(
        tmp_path / "bad2", config={"experiment": {"phases": [{"name": "x"}]}}, handle_signals=False
    )
    run2.finish()
    with pytest.raises(ConfigError, match="must be a mapping with name, start, end"):
        phases_of(run2)
