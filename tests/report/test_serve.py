"""The live view's server over HTTP: routes, refusals, and a writer that is never blocked."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.report.planted import planted_run

from traindyn.exceptions import ConfigError, RunNotFound
from traindyn.report.serve import LiveServer, make_server
from traindyn.store import Run


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    planted_run(tmp_path / "suite" / "done_s0", seed=0, n_samples=60)
    server = make_server(tmp_path / "suite", port=0, interval_s=0.2)
    server.start()
    yield server, tmp_path / "suite"
    server.shutdown()
    server.server_close()


def test_loopback_by_default_and_bad_arguments(tmp_path: Path) -> None:
    server = make_server(tmp_path, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.server_close()
    with pytest.raises(RunNotFound, match="is not a directory"):
        make_server(tmp_path / "missing")
    with pytest.raises(ConfigError, match="interval_s must be positive"):
        make_server(tmp_path, interval_s=0)


def test_index_run_page_and_payload(served: tuple[LiveServer, Path]) -> None:
    server, _ = served
    status, body = _get(server.url)
    assert status == 200 and b'href="/run/done_s0"' in body and b"finished" in body
    status, body = _get(server.url + "run/done_s0")
    assert status == 200
    text = body.decode()
    assert '<script src="/static/plotly.js">' in text  # served once, not inlined per page
    assert '"live":{"url":"/api/run/done_s0","interval_ms":200}' in text
    status, body = _get(server.url + "api/run/done_s0")
    payload = json.loads(body)
    assert status == 200 and payload["id"] == "done_s0"
    assert payload["downsample"]["n_samples"] == 60
    status, js = _get(server.url + "static/plotly.js")
    assert status == 200 and len(js) > 1_000_000


def test_paths_outside_the_directory_and_unknown_runs_are_refused(
    served: tuple[LiveServer, Path],
) -> None:
    server, root = served
    (root.parent / "outside").mkdir()
    for path in ("api/run/..%2Foutside", "api/run/../outside", "run/nope", "api/run/"):
        status, body = _get(server.url + path)
        assert status == 404, path
        assert "error" in json.loads(body)
    assert _get(server.url + "nothing-here")[0] == 404


def test_payload_follows_a_running_run_and_the_writer_is_never_blocked(
    served: tuple[LiveServer, Path],
) -> None:
    server, root = served
    run = Run.create(root / "live_s0", config={"total_steps": 400})
    seen: dict[int, list[int]] = {i: [] for i in range(3)}
    errors: list[str] = []
    stop = threading.Event()

    def reader(i: int) -> None:
        while not stop.is_set():
            status, body = _get(server.url + "api/run/live_s0")
            if status != 200:
                errors.append(body.decode())
                continue
            seen[i].append(json.loads(body)["downsample"]["n_samples"])

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in readers:
        t.start()
    flush_times = []
    try:
        for step in range(0, 400, 5):
            run.append_metrics([(step, "l0", "participation_ratio", 1.0 + step / 100)])
            run.append_scalars(step, {"loss": 1.0 / (1 + step)})
            start = time.perf_counter()
            run.flush()
            flush_times.append(time.perf_counter() - start)
            time.sleep(0.005)
        run.finish()
        time.sleep(0.3)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
    # Each reader saw the run grow, never shrink, and saw it whole at the end.
    for polls in seen.values():
        assert polls == sorted(polls)
        assert polls[-1] == 80 and len(set(polls)) > 3
    # Every flush completed: readers take no lock the writer waits on.
    assert len(flush_times) == 80
    assert Run(root / "live_s0").status == "finished"
