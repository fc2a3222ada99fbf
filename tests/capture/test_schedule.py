from __future__ import annotations

import pytest

from traindyn.capture import AtSteps, Every, LogSpaced, as_schedule
from traindyn.exceptions import ConfigError


@pytest.mark.parametrize(
    ("n", "start", "expected"), [(1, 0, [0, 1, 2, 3]), (5, 0, [0]), (2, 1, [1, 3])]
)
def test_every(n: int, start: int, expected: list[int]) -> None:
    assert [s for s in range(4) if Every(n, start).is_due(s)] == expected


def test_at_steps_matches_the_seeds_checkpoint_plan() -> None:
    sched = as_schedule([100, 1000, 2000])
    assert [s for s in range(2500) if sched.is_due(s)] == [100, 1000, 2000]


@pytest.mark.parametrize("per_decade", [1, 3, 10, 25])
def test_log_spaced_equals_rounded_geometric_grid(per_decade: int) -> None:
    sched = LogSpaced(per_decade=per_decade)
    expected = {0} | {round(10 ** (k / per_decade)) for k in range(0, 5 * per_decade + 1)}
    expected = {s for s in expected if s <= 100_000}
    assert {s for s in range(100_001) if sched.is_due(s)} == expected


def test_log_spaced_is_dense_early_and_sparse_late() -> None:
    sched = LogSpaced(per_decade=10)
    early = sum(sched.is_due(s) for s in range(100))
    late = sum(sched.is_due(s) for s in range(9000, 10000))
    assert early > 10 * late


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, "every must be >= 1"),
        (-3, "every must be >= 1"),
        ("5", "every must be an int"),
        (True, "every must be an int"),
        ([], "steps must not be empty"),
        ([1, -2], "non-negative"),
    ],
)
def test_bad_schedules_are_named(value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        as_schedule(value)  # type: ignore[arg-type]


def test_schedules_pass_through_and_reject_bad_fields() -> None:
    sched = Every(3)
    assert as_schedule(sched) is sched
    with pytest.raises(ConfigError, match="positive integer"):
        Every(0)
    with pytest.raises(ConfigError, match="per_decade"):
        LogSpaced(per_decade=0)
    assert AtSteps.of(range(3)).steps == frozenset({0, 1, 2})
