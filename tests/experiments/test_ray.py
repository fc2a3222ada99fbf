from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import traindyn as td
from traindyn.exceptions import ConfigError, TraindynWarning
from traindyn.experiments.executors import (
    TaskFailed,
    WorkerDied,
    map_ray,
    run_experiments,
    run_local,
    run_ray,
)
from traindyn.experiments.suite import ExperimentSpec


def spec(**fields: Any) -> ExperimentSpec:
    base: dict[str, Any] = {
        "arch": "mlp_medium",
        "dataset": "digits",
        "train": {"steps": 15},
        "tracking": {"every": 5, "probe_per_class": 3},
    }
    return ExperimentSpec.model_validate({**base, **fields})


# The first three run before the module's Ray fixture starts Ray (module order).
def test_run_ray_stops_the_ray_it_started(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    (result,) = run_ray([spec(train={"steps": 2})], tmp_path, num_cpus=1, show_progress=False)
    assert result.status == "finished" and result.run_dir == tmp_path / result.name
    assert not ray.is_initialized()


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'traindyn\[ray\]'"):
        run_ray([spec()], tmp_path)
    with pytest.raises(ConfigError, match=r"pip install 'traindyn\[ray\]'"):
        run_experiments([spec()], tmp_path, executor="ray")
    assert not any(tmp_path.iterdir())


def test_dispatcher_checks_its_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="executor must be one of 'local', 'ray'; got 'dask'"):
        run_experiments([spec()], tmp_path, executor="dask")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="address is a Ray cluster address"):
        run_experiments([spec()], tmp_path, address="auto")
    with pytest.raises(ConfigError, match="workers must be >= 1 with executor='ray'"):
        run_experiments([spec()], tmp_path, executor="ray", workers=0)
    with pytest.raises(ConfigError, match="Drop workers"):
        run_experiments([spec()], tmp_path, executor="ray", workers=2, address="auto")
    with pytest.raises(ConfigError, match="unique"):
        run_ray([spec(), spec()], tmp_path)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    # Ray takes seconds to start: one instance serves every test of the module
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


def test_same_seeds_give_identical_metrics_on_ray_and_local(
    ray_instance: Any, tmp_path: Path
) -> None:
    specs = [spec(seed=0), spec(seed=1)]
    on_ray = run_ray(specs, tmp_path / "ray", show_progress=False)
    on_pool = run_local(specs, tmp_path / "local", workers=1, show_progress=False)
    assert [r.status for r in on_ray] == ["finished", "finished"]
    assert [r.run_dir for r in on_ray] == [tmp_path / "ray" / s.run_name for s in specs]
    values = []
    for a_result, b_result in zip(on_ray, on_pool, strict=True):
        assert repr(a_result.outcome) == repr(b_result.outcome)  # repr: NaN != NaN
        a, b = td.open_run(a_result.run_dir), td.open_run(b_result.run_dir)
        assert a.is_finished and b.is_finished and len(a.metrics) > 0
        assert a.scalars.equals(b.scalars)
        keys = ["step", "layer", "metric"]
        assert a.metrics[keys].equals(b.metrics[keys])
        assert a.metrics["value"].tolist() == b.metrics["value"].tolist()
        values.append(a.metrics["value"].tolist())
    assert values[0] != values[1]  # the seed matters, so the equality is not vacuous


def test_a_failing_experiment_does_not_stop_the_others(ray_instance: Any, tmp_path: Path) -> None:
    good, bad = spec(seed=2), spec(seed=3, tracking={"probe_per_class": 99})
    with pytest.warns(TraindynWarning, match="already initialised"):
        results = run_ray([bad, good], tmp_path, num_cpus=8, show_progress=False)
    assert [r.status for r in results] == ["failed", "finished"]
    assert "per_class" in (results[0].error or "")
    assert td.open_run(tmp_path / good.run_name).is_finished
    assert ray_instance.is_initialized()  # not ours to shut down


def test_a_task_that_kills_its_worker_is_reported(ray_instance: Any) -> None:
    retried: list[int] = []
    # os._exit kills the worker like a segfault or an OOM kill would
    outcomes = map_ray(divmod, [(7, 2), (1, 0)], before_retry=retried.append)
    assert outcomes[0] == (3, 1)
    assert isinstance(outcomes[1], TaskFailed) and "ZeroDivisionError" in str(outcomes[1])
    (crashed,) = map_ray(os._exit, [(3,)], before_retry=retried.append)
    assert isinstance(crashed, WorkerDied)
    assert "WorkerCrashedError" in str(crashed)
    assert retried == [0]  # retried once, after the caller could clean up
