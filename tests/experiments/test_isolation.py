from __future__ import annotations

import os

from traindyn.experiments.executors import WorkerDied, map_isolated


def test_a_task_that_kills_its_worker_is_reported() -> None:
    # os._exit kills the worker like a segfault or an OOM kill would
    (outcome,) = map_isolated(os._exit, [(3,)], workers=1)
    assert isinstance(outcome, WorkerDied)
    assert "other tasks were not affected" in str(outcome)


def test_collateral_tasks_in_a_broken_pool_are_rerun() -> None:
    outcomes = map_isolated(divmod_or_exit, [(7, 2), (-1, 0), (9, 4)], workers=2)
    assert outcomes[0] == (3, 1)
    assert isinstance(outcomes[1], WorkerDied)
    assert outcomes[2] == (2, 1)


def divmod_or_exit(a: int, b: int) -> tuple[int, int]:
    if b == 0:
        os._exit(1)
    return divmod(a, b)
