"""The HTML report and the live view (issue 6) on a phase1-shaped suite.

Input (not timed):

- ``--dir PATH``: an existing suite (e.g. a finished and analysed ``phase1``). It is
  copied to a temporary directory first (without checkpoints, figures and report.html)
  so that the benchmark writes nothing into it; it is analysed only if it has no suite
  analysis. With ``--quick``, 6 evenly spaced runs are copied and analysed afresh.
- default: a synthetic suite with phase1's shape, written in a temporary directory with
  the store API (``Run.create(path, config=...)``, ``append_metrics`` of ``(step,
  layer, metric, value)`` tuples from ``td.analysis.synthetic.planted_metrics``,
  ``append_scalars``, ``flush`` every 500 steps, ``finish``), then
  ``traindyn.analysis.analyze(root, workers=None)`` (its time is printed). The shape was
  read once from a real ``phase1`` suite (33 runs, 2026-12-02) and is hard-coded below:
  11 architectures (cnn and vit on digits and mnist1d; mlp and transformer also on
  sequences), 2-6 layers per run (113 layers in all), 5 metrics at 401 samples (every 5
  of steps 0..2000), 9 scalars (loss, lr, batch_* and grad_norm at every step, probe_*
  at the samples), ``total_steps: 2000``, no phases, seed 0 only (so no seed bands).
  Each series has an early decay, noise and 2 planted jumps per run (2 layers, every
  metric), so the analysis finds ~10 surviving events per run (the real phase1: 310 in
  all). ``--quick``: 6 of the 33 runs, one round.

Timed:

1. Building the page: ``report(root, figures=False, analyse=False)`` in-process (warm:
   after a first call, which is printed), ``traindyn report ROOT --no-figures
   --no-analyze`` as a subprocess (cold: wall clock including interpreter start-up and
   imports), ``report(root, figures=True)`` (the suite's own PNGs) and the default
   ``traindyn report ROOT`` as a subprocess; interleaved, ``--repeats`` rounds (default
   3), medians. Then once, reported only: ``report(root, run_figures=True)`` (every
   run's PNGs too, what ``traindyn run`` does; a spawn pool of 2).
   Target (issue 6): the report of the phase1 suite in at most 10 s on 2 cores.
2. Size of report.html: total, and its parts: plotly.js (``get_plotlyjs()``), the JSON
   payload (``<script id="td-data">``, broken down by what it holds), report.js and
   report.css, and the rest (tables and markup); zip-deflated size (what a zipped
   attachment would be). Target: it can be e-mailed; checked as "fits a 25 MB e-mail
   limit" on the attachment as sent, i.e. base64-encoded (x 4/3), unzipped.
3. Browser, if ``/usr/bin/chromium``, ``/usr/bin/chromedriver`` and selenium are there
   (otherwise a skip line): headless Chromium through selenium opens the file; timed
   from ``driver.get`` to ``window.tdReady`` resolving (every visible plot drawn), per
   page load (``--repeats`` loads); then, per load, switching ``select.td-run`` to a run
   not shown yet and ``select.td-metric`` inside the visible ``.td-run-block`` to the
   next metric, each timed in the page (``performance.now()``) from the ``change``
   event to the new ``window.tdReady`` resolving. Medians.
4. Live view: ``make_server(root, port=0)`` on a thread; ``GET /api/run/<one run>``
   (median of 20, after one warm-up). Writer not blocked: a new run under ``root``
   (mlp_deep's shape) written one sample at a time (``append_scalars`` for 5 steps,
   ``append_metrics`` for one sample, ``flush()``), ``--flushes`` flushes (default 200)
   per condition: no reader; 3 reader threads polling its ``/api/run/...`` continuously
   from a server in another process (as ``traindyn serve`` runs beside a training
   process); the same against the in-process server (a notebook's ``server.start()``,
   which shares the writer's GIL). Conditions alternate in blocks of 25 flushes; median
   and p95 of ``flush()``. Readers take no lock (parts are renamed into place), so a
   ratio above 1 is CPU (and GIL) contention on 2 cores, not blocking. Checked: no
   failed read during the writes and the final payload holds every sample written.

Run: ``.venv/bin/python benchmarks/report.py [--dir /tmp/td/phase1] [--quick]``. In
``--quick`` mode (6 runs) the times are printed but no target is checked, and nothing
is extrapolated.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import urlopen

import numpy as np
from _common import (
    add_common_arguments,
    format_table,
    gc_quiet,
    interleaved_times,
    median,
    planted_suite_table,
    print_header,
    setup_threads,
    verdict,
)

import traindyn as td
from traindyn.analysis import analyze
from traindyn.report.build import report
from traindyn.report.serve import make_server
from traindyn.store import Run
from traindyn.store.run import MANIFEST_NAME, find_run_dirs

TARGET_S = 10.0
MAIL_LIMIT = 25_000_000  # bytes of the message as sent (base64-encoded attachment)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)
N_READERS = 3
BLOCK = 25  # flushes per condition block in the writer test

# ---------------------------------------------------------------- phase1's shape
# Read once from the real phase1 suite (/tmp/td/phase1, 33 finished and analysed runs,
# 2026-12-02); hard-coded so that the benchmark does not need it.
EVERY = 5
N_SAMPLES = 401  # steps 0, 5, ..., 2000
TOTAL_STEPS = 2000
METRICS = (
    "participation_ratio",
    "effective_rank",
    "stable_rank",
    "energy_rank",
    "nuclear_norm_ratio",
)
# Typical level of each metric in phase1 (planted_metrics draws around 10; values are
# scaled by level / 10, energy_rank is rounded to integers as it is in the real runs).
LEVELS = {
    "participation_ratio": 7.0,
    "effective_rank": 22.0,
    "stable_rank": 4.8,
    "energy_rank": 7.5,
    "nuclear_norm_ratio": 8.0,
}


def _blocks(n: int) -> list[str]:
    return [f"blocks.{i}" for i in range(n)]


def _mlp(n: int) -> list[str]:
    return [f"layers.{i}" for i in range(n)]


def _encoder(n: int) -> list[str]:
    return [f"encoder.layers.{i}" for i in range(n)] + ["pool"]


ARCHS: dict[str, list[str]] = {
    "cnn_deep": _blocks(4),
    "cnn_medium": _blocks(3),
    "cnn_shallow": _blocks(2),
    "mlp_deep": _mlp(6),
    "mlp_medium": _mlp(3),
    "mlp_narrow": _mlp(3),
    "mlp_wide": _mlp(3),
    "transformer_deep": _encoder(4),
    "transformer_medium": _encoder(2),
    "transformer_shallow": _encoder(1),
    "vit_deep": _encoder(4),
    "vit_medium": _encoder(2),
    "vit_shallow": _encoder(1),
}
DATASETS = {"cnn": ("digits", "mnist1d"), "vit": ("digits", "mnist1d")}
ALL_DATASETS = ("digits", "mnist1d", "sequences")
PHASE1 = [
    (arch, dataset)
    for arch in sorted(ARCHS)
    for dataset in DATASETS.get(arch.split("_")[0], ALL_DATASETS)
]
assert len(PHASE1) == 33
assert sum(len(ARCHS[a]) for a, _ in PHASE1) == 113


def spread(n_items: int, n: int) -> list[int]:
    """``n`` evenly spaced indices of ``n_items`` (every architecture family in --quick)."""
    return sorted({int(i) for i in np.linspace(0, n_items - 1, min(n, n_items)).round()})


# ----------------------------------------------------------------------------- setup


def run_config(arch: str, dataset: str) -> dict[str, Any]:
    return {
        "total_steps": TOTAL_STEPS,
        "experiment": {
            "name": f"{arch}_{dataset}_s0",
            "arch": arch,
            "dataset": dataset,
            "seed": 0,
            "phases": [],
        },
        "tracker": {"layers": ARCHS[arch], "metrics": list(METRICS), "mode": "probe"},
    }


def sample_values(layers: list[str], seed: int) -> np.ndarray:
    """Values of one run, shape (N_SAMPLES, len(layers), len(METRICS))."""
    rng = np.random.default_rng(seed)
    table = planted_suite_table(rng, layers, METRICS, N_SAMPLES, EVERY, seed)
    wide = table.pivot_table(index="step", columns=["layer", "metric"], values="value")
    out = np.empty((N_SAMPLES, len(layers), len(METRICS)))
    for j, layer in enumerate(layers):
        for k, metric in enumerate(METRICS):
            v = wide[(layer, metric)].to_numpy() * LEVELS[metric] / 10.0
            out[:, j, k] = np.round(v) if metric == "energy_rank" else v
    return out


def step_scalars(step: int, rng: np.random.Generator, tau: float) -> dict[str, float]:
    """phase1's scalars at one step: loss, lr, batch_* and grad_norm; probe_* at samples."""
    decay = float(np.exp(-step / tau))
    loss = 0.02 + 2.3 * decay + abs(float(rng.normal(0, 0.03)))
    values = {
        "loss": loss,
        "batch_loss": loss,
        "batch_accuracy": min(1.0, 1.0 - 0.9 * decay + float(rng.normal(0, 0.02))),
        "batch_confidence": min(1.0, 1.0 - 0.9 * decay + float(rng.normal(0, 0.02))),
        "lr": 0.001,
    }
    if step < TOTAL_STEPS:
        values["grad_norm"] = 0.3 + 5 * decay + abs(float(rng.normal(0, 0.2)))
    if step % EVERY == 0:
        values["probe_loss"] = 0.2 + 2.2 * decay + float(rng.normal(0, 0.005))
        values["probe_accuracy"] = 0.95 - 0.85 * decay + float(rng.normal(0, 0.005))
        values["probe_confidence"] = 0.93 - 0.83 * decay + float(rng.normal(0, 0.005))
    return values


def write_run(path: Path, arch: str, dataset: str, seed: int) -> None:
    layers = ARCHS[arch]
    values = sample_values(layers, seed)
    rng = np.random.default_rng(seed + 1)
    tau = float(rng.uniform(100, 300))
    run = Run.create(path, config=run_config(arch, dataset), handle_signals=False)
    for step in range(TOTAL_STEPS + 1):
        run.append_scalars(step, step_scalars(step, rng, tau))
        if step % EVERY == 0:
            sample = values[step // EVERY]
            run.append_metrics(
                (step, layer, metric, float(sample[j, k]))
                for j, layer in enumerate(layers)
                for k, metric in enumerate(METRICS)
            )
        if (step + 1) % 500 == 0:
            run.flush()
    run.finish()


def synthetic_suite(root: Path, n_runs: int) -> None:
    chosen = spread(len(PHASE1), n_runs)
    for i in chosen:
        arch, dataset = PHASE1[i]
        write_run(root / f"{arch}_{dataset}_s0", arch, dataset, seed=1000 + i)


def copy_suite(source: Path, root: Path, n_runs: int | None) -> bool:
    """Copy ``source`` to ``root``; True when the suite analysis came with it."""
    dirs = find_run_dirs(source)
    if not dirs:
        raise SystemExit(f"{source} holds no run (no {MANIFEST_NAME}).")
    ignore = shutil.ignore_patterns("checkpoints", "figures", "report.html", "compare.html")
    if n_runs is None or n_runs >= len(dirs):
        shutil.copytree(source, root, ignore=ignore)
        return (root / "analysis" / "summary.json").is_file()
    root.mkdir(parents=True)
    for i in spread(len(dirs), n_runs):
        shutil.copytree(dirs[i], root / dirs[i].relative_to(source), ignore=ignore)
    return False


# ----------------------------------------------------------------------------- helpers


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def traindyn_cli() -> Path:
    return Path(sys.executable).parent / "traindyn"


def cli_report(root: Path, *flags: str) -> Callable[[], None]:
    command = [str(traindyn_cli()), "report", str(root), *flags]

    def call() -> None:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    return call


# ----------------------------------------------------------------------------- size


def size_breakdown(page: Path) -> tuple[list[list[Any]], list[list[Any]], dict[str, int]]:
    from plotly.offline import get_plotlyjs

    data = page.read_bytes()
    total = len(data)
    plotly = get_plotlyjs().encode()
    if plotly not in data:
        raise RuntimeError("plotly.js is not inlined verbatim in the page")
    found = re.search(rb'<script id="td-data"[^>]*>(.*?)</script>', data, re.S)
    if found is None:
        raise RuntimeError('no <script id="td-data"> in the page')
    payload = found.group(1)
    assets = b"".join(
        resources.files("traindyn.report").joinpath("assets", name).read_bytes()
        for name in ("report.js", "report.css")
    )
    # The tables and markup: the page without plotly.js, the payload and the assets.
    rest = data.replace(plotly, b"", 1).replace(payload, b"", 1)
    for name in ("report.js", "report.css"):
        rest = rest.replace(
            resources.files("traindyn.report").joinpath("assets", name).read_bytes(), b"", 1
        )

    def deflated(blob: bytes) -> float:
        return len(gzip.compress(blob, compresslevel=6)) / 1e6

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.html", data)
    zipped = len(buffer.getvalue())
    parts = [
        [name, len(blob) / 1e6, 100 * len(blob) / total, deflated(blob)]
        for name, blob in (
            ("plotly.js (inlined)", plotly),
            ("JSON payload (td-data)", payload),
            ("report.js + report.css", assets),
            ("tables and markup (the rest)", rest),
            ("report.html", data),
        )
    ]
    # What the payload holds (re-serialised compactly, as html._script_json does).
    decoded = json.loads(payload.decode("utf-8"))

    def size(obj: Any) -> int:
        return len(json.dumps(obj, separators=(",", ":"), allow_nan=False).encode())

    runs = (
        decoded.get("runs", {"run": decoded}) if decoded.get("kind") != "run" else {"run": decoded}
    )
    keys: dict[str, int] = {}
    for entry in runs.values():
        for key, value in entry.items():
            keys[key] = keys.get(key, 0) + size(value)
    suite = {k: size(v) for k, v in decoded.items() if k != "runs"} if "runs" in decoded else {}
    inner = [
        [f"runs: {k}", v / 1e6, 100 * v / len(payload)]
        for k, v in sorted(keys.items(), key=lambda kv: -kv[1])
        if v >= 1000
    ]
    small = sum(v for v in keys.values() if v < 1000)
    inner.append(["runs: everything else", small / 1e6, 100 * small / len(payload)])
    for k, v in sorted(suite.items(), key=lambda kv: -kv[1]):
        inner.append([f"suite: {k}", v / 1e6, 100 * v / len(payload)])
    info = {
        "total": total,
        "zip": zipped,
        "base64": len(base64.b64encode(data)),
        "zip_base64": 4 * ((zipped + 2) // 3),
        "payload": len(payload),
        "plotly": len(plotly),
    }
    return parts, inner, info


# ----------------------------------------------------------------------------- browser

WAIT_READY = """
var done = arguments[arguments.length - 1];
Promise.resolve(window.tdReady).then(
  function (n) { done({n: n, t: performance.now()}); },
  function (e) { done({error: String(e)}); });
"""
SWITCH_RUN = """
var value = arguments[0], done = arguments[arguments.length - 1];
var select = document.querySelector("select.td-run");
var t0 = performance.now();
select.value = value;
select.dispatchEvent(new Event("change", {bubbles: true}));
window.tdReady.then(
  function (n) { done({n: n, ms: performance.now() - t0}); },
  function (e) { done({error: String(e)}); });
"""
SWITCH_METRIC = """
var done = arguments[arguments.length - 1];
var block = Array.prototype.find.call(
  document.querySelectorAll(".td-run-block"), function (b) { return !b.hidden; });
var select = (block || document).querySelector("select.td-metric");
var t0 = performance.now();
select.selectedIndex = (select.selectedIndex + 1) % select.options.length;
select.dispatchEvent(new Event("change", {bubbles: true}));
window.tdReady.then(
  function (n) { done({n: n, ms: performance.now() - t0, metric: select.value}); },
  function (e) { done({error: String(e)}); });
"""


def browser_unavailable() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (python package)")
    return ", ".join(missing) or None


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        raise RuntimeError(f"window.tdReady rejected: {result['error']}")
    return result


def browser_times(page: Path, loads: int, switches: int) -> dict[str, Any]:
    """Page loads and selector switches in headless Chromium (see the docstring)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out: dict[str, Any] = {
        "load_wall": [],
        "load_nav": [],
        "load_event": [],
        "run": [],
        "metric": [],
    }
    with tempfile.TemporaryDirectory(prefix="traindyn-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        t0 = time.perf_counter()
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        out["start"] = time.perf_counter() - t0
        try:
            driver.set_page_load_timeout(180)
            driver.set_script_timeout(180)
            out["version"] = driver.capabilities.get("browserVersion", "?")
            url = page.resolve().as_uri()
            for _ in range(loads):
                driver.get("about:blank")
                t0 = time.perf_counter()
                driver.get(url)
                ready = _checked(driver.execute_async_script(WAIT_READY))
                out["load_wall"].append(time.perf_counter() - t0)
                out["load_nav"].append(ready["t"] / 1e3)
                out["load_event"].append(
                    driver.execute_script(
                        "var e = performance.getEntriesByType('navigation')[0];"
                        "return e ? e.loadEventEnd : null;"
                    )
                    / 1e3
                )
                out["plots_at_load"] = ready["n"]
                options_ = driver.execute_script(
                    "var s = document.querySelector('select.td-run');"
                    "return s ? Array.prototype.map.call(s.options, o => o.value) : [];"
                )
                for value in options_[1 : 1 + switches]:
                    switched = _checked(driver.execute_async_script(SWITCH_RUN, value))
                    out["run"].append(switched["ms"] / 1e3)
                    out["plots_per_run"] = switched["n"]
                    metric = _checked(driver.execute_async_script(SWITCH_METRIC))
                    out["metric"].append(metric["ms"] / 1e3)
                    out["plots_per_metric"] = metric["n"]
                if not options_:  # a single run's page: the metric selector only
                    for _ in range(switches):
                        metric = _checked(driver.execute_async_script(SWITCH_METRIC))
                        out["metric"].append(metric["ms"] / 1e3)
        finally:
            driver.quit()
    return out


def browser_table(browser: dict[str, Any], markdown: bool) -> str:
    def spread_of(values: list[float]) -> str:
        return f"{min(values):.3f}..{max(values):.3f}" if values else ""

    rows: list[list[Any]] = [
        ["open the file: driver.get -> window.tdReady (wall, from Python)", "load_wall"],
        ["  navigation start -> tdReady (in the page)", "load_nav"],
        ["  navigation start -> load event (in the page)", "load_event"],
        [f"switch run (select.td-run; {browser.get('plots_per_run')} plots)", "run"],
        [f"switch metric (select.td-metric; {browser.get('plots_per_metric')} plots)", "metric"],
    ]
    table = [
        [name, len(browser[key]), median(browser[key]), spread_of(browser[key])]
        for name, key in rows
        if browser[key]
    ]
    table.insert(1, ["  the first load alone (fresh browser)", 1, browser["load_wall"][0], ""])
    return format_table(
        [f"headless Chromium {browser.get('version')}", "n", "median s", "min..max s"],
        table,
        title=f"Rendering in the browser ({browser.get('plots_at_load')} plots drawn at "
        f"load; driver start {browser['start']:.1f} s; switches timed in the page)",
        markdown=markdown,
    )


# ----------------------------------------------------------------------------- live view

SERVE_IN_CHILD = """
import sys
from traindyn.report.serve import make_server
server = make_server(sys.argv[1], port=0)
print(server.url, flush=True)
server.serve_forever()
"""


def get(url: str) -> bytes:
    with urlopen(url, timeout=60) as response:
        return response.read()


class Readers:
    """``n`` threads polling ``url`` back to back while active (no sleep between)."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.active = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.inflight = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.last: bytes | None = None
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]
        for thread in self.threads:
            thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            if not self.active.wait(0.05):
                continue
            with self.lock:
                self.inflight += 1
            t0 = time.perf_counter()
            try:
                body: bytes | None = get(self.url)
                error = None
            except HTTPError as e:
                body, error = None, f"HTTP {e.code}: {e.read()[:200]!r}"
            except (URLError, OSError) as e:
                body, error = None, f"{type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            with self.lock:
                self.inflight -= 1
                if body is not None:
                    self.latencies.append(dt)
                    self.last = body
                elif error is not None:
                    self.errors.append(error)

    def resume(self) -> None:
        self.active.set()
        time.sleep(0.1)  # let every reader have a request in flight

    def pause(self) -> None:
        self.active.clear()
        while True:  # wait for the requests in flight, so none spills into the next block
            with self.lock:
                if self.inflight == 0:
                    return
            time.sleep(0.002)

    def close(self) -> None:
        self.pause()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)


def writer_test(root: Path, inproc_url: str, child_url: str, flushes: int) -> dict[str, Any]:
    """Flush times of a run being written, with and without readers of its payload."""
    arch = "mlp_deep"
    layers = ARCHS[arch]
    rel = "live_writer_s0"
    run = Run.create(root / rel, config=run_config(arch, "digits"), handle_signals=False)
    rng = np.random.default_rng(7)
    api = f"api/run/{quote(rel)}"
    readers = {
        "3 readers, server in another process": Readers(child_url + api, N_READERS),
        "3 readers, server in this process": Readers(inproc_url + api, N_READERS),
    }
    conditions = ["no reader", *readers]
    times: dict[str, list[float]] = {c: [] for c in conditions}
    sample = 0

    def tick() -> float:
        nonlocal sample
        for step in range(sample * EVERY, sample * EVERY + EVERY):
            run.append_scalars(step, step_scalars(step, rng, 200.0))
        run.append_metrics(
            (sample * EVERY, layer, metric, 10.0 + float(rng.normal(0, 0.05)))
            for layer in layers
            for metric in METRICS
        )
        sample += 1
        t0 = time.perf_counter()
        run.flush()
        return time.perf_counter() - t0

    for _ in range(3):  # warm-up: the first parts of a run (directories, schema)
        tick()
    n_blocks = max(1, flushes // BLOCK)
    for b in range(n_blocks):
        for i in range(len(conditions)):
            condition = conditions[(i + b) % len(conditions)]
            group = readers.get(condition)
            if group is not None:
                group.resume()
            gc_quiet()
            times[condition].extend(tick() for _ in range(BLOCK))
            if group is not None:
                group.pause()
    for group in readers.values():
        group.close()
    run.finish()
    final = json.loads(get(inproc_url + api))
    gets = [timed(lambda: get(inproc_url + api))[0] for _ in range(5)]
    return {
        "times": times,
        "readers": readers,
        "written": sample,
        "final_samples": final["downsample"]["n_samples"],
        "parts": len(list((root / rel / "metrics").glob("part-*.parquet"))),
        "final_get": median(gets),
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--dir", type=Path, default=None, help="an existing suite (copied)")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 33; --quick 6)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3)")
    parser.add_argument(
        "--flushes", type=int, default=None, help="writer flushes per condition (default 200)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="build the suite here (kept)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timing")
    args = parser.parse_args(argv)
    setup_threads(args.threads, args.cpus)
    n_runs = args.runs or (6 if args.quick else len(PHASE1))
    repeats = args.repeats or (1 if args.quick else 3)
    flushes = args.flushes or (50 if args.quick else 200)
    switches = 2 if args.quick else 4
    source = f"copy of {args.dir}" if args.dir else "synthetic, phase1-shaped"
    print_header(
        "HTML report and live view (issue 6)",
        [
            f"traindyn {td.__version__}; input: {source}; "
            + (f"{n_runs} runs" if not args.dir or args.quick else "all runs"),
            f"{repeats} round(s); writer test {flushes} flushes per condition; "
            "the report does not use torch (its thread setting is moot)",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="traindyn-report-bench-") as tmp:
        root = args.keep or Path(tmp) / "phase1"
        t_setup = time.perf_counter()
        if args.dir:
            analysed = copy_suite(args.dir, root, n_runs if args.quick or args.runs else None)
        else:
            synthetic_suite(root, n_runs)
            analysed = False
        t_setup = time.perf_counter() - t_setup
        runs = [Run(d) for d in find_run_dirs(root)]
        n_rows = sum(len(r.metrics) for r in runs)
        n_layers = sum(len(r.manifest.config["tracker"]["layers"]) for r in runs)
        print(
            f"setup (not timed): {len(runs)} runs, {n_layers} layers, {n_rows:,} metric rows "
            f"in {t_setup:.1f} s under {root}"
        )
        if analysed:
            print("analysis: the copied suite's own (not rerun)")
        else:
            t_an, result = timed(lambda: analyze(root, workers=None))
            n_surv = sum(len(r.surviving) for r in result.runs)
            print(
                f"analysis (not timed): analyze(root, workers=None) {t_an:.1f} s; "
                f"{sum(len(r.events) for r in result.runs)} candidate events, {n_surv} "
                f"surviving; failed: {dict(result.failed) or 'none'}"
            )
        print()

        # ---- 1. building the page
        warm = {
            "report(root, figures=False) in-process, warm": lambda: report(
                root, figures=False, analyse=False
            ),
            "report(root, figures=True) in-process, warm": lambda: report(
                root, figures=True, analyse=False
            ),
        }
        cold = {
            "traindyn report ROOT --no-figures --no-analyze (cold)": cli_report(
                root, "--no-figures", "--no-analyze"
            ),
            "traindyn report ROOT (cold, default: figures)": cli_report(root),
        }
        firsts = []
        for name, fn in warm.items():
            gc_quiet()
            firsts.append([name.replace(", warm", ""), timed(fn)[0]])
        if not args.quick:
            for name, fn in cold.items():
                firsts.append([name.split(" (cold")[0], timed(fn)[0]])
        print(
            "first calls (warm-up, not in the medians): "
            + "; ".join(f"{n} {t:.2f} s" for n, t in firsts)
        )
        contenders = {**warm, **cold}
        times = interleaved_times(contenders, repeats=repeats, warmup=0)
        rows = [
            [
                name,
                len(ts),
                median(ts),
                f"{min(ts):.2f}..{max(ts):.2f}",
                median(ts) / len(runs) * 1e3,
            ]
            for name, ts in times.items()
        ]
        t_runfig: float | None = None
        if not args.quick:  # ~2.5 s per run: too slow for a smoke test
            gc_quiet()
            t_runfig, every = timed(lambda: report(root, run_figures=True, analyse=False))
            rows.append(
                [
                    f"report(root, run_figures=True) once ({len(every.figures)} PNGs)",
                    1,
                    t_runfig,
                    "",
                    t_runfig / len(runs) * 1e3,
                ]
            )
        print(
            format_table(
                ["call", "rounds", "median s", "min..max s", "ms/run"],
                rows,
                title=f"Building report.html for {len(runs)} runs (interleaved rounds)",
                markdown=args.markdown,
            )
        )
        print()

        # the page itself, rebuilt without figures (what the rest measures)
        page = report(root, figures=False, analyse=False).path

        # ---- 2. size
        parts, inner, size = size_breakdown(page)
        print(
            format_table(
                ["part", "MB", "% of file", "MB deflated"],
                parts,
                title="Size of report.html",
                markdown=args.markdown,
            )
        )
        print(
            f"  zipped: {mb(size['zip'])}; as an e-mail attachment (base64): "
            f"{mb(size['base64'])} unzipped, {mb(size['zip_base64'])} zipped"
        )
        print()
        print(
            format_table(
                ["payload part", "MB", "% of payload"],
                inner,
                title="What the JSON payload holds (per key, summed over runs)",
                markdown=args.markdown,
            )
        )
        print()

        # ---- 3. browser
        browser: dict[str, Any] | None = None
        if args.no_browser:
            print("browser: skipped (--no-browser)")
        elif missing := browser_unavailable():
            print(f"browser: skipped ({missing} not available)")
        else:
            try:
                browser = browser_times(page, repeats, switches)
            except Exception as error:  # a finding, not a crash: report and go on
                print(f"browser: failed ({type(error).__name__}: {error})")
        if browser is not None:
            print(browser_table(browser, args.markdown))
            print()

        # ---- 4. live view
        first_rel = runs[0].path.relative_to(root).as_posix()
        server = make_server(root, port=0)
        server.start()
        child = subprocess.Popen(
            [sys.executable, "-c", SERVE_IN_CHILD, str(root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            child_url = child.stdout.readline().strip()
            if not child_url.startswith("http"):
                raise RuntimeError(f"the serving child printed {child_url!r}")
            api = server.url + f"api/run/{quote(first_rel)}"
            body = get(api)
            json.loads(body)
            gets = []
            for _ in range(20):
                gets.append(timed(lambda: get(api))[0])
            live = writer_test(root, server.url, child_url, flushes)
        finally:
            server.shutdown()
            server.server_close()
            child.terminate()
            child.wait(timeout=10)
        base = live["times"]["no reader"]
        lrows = []
        for condition, ts in live["times"].items():
            group = live["readers"].get(condition)
            lrows.append(
                [
                    condition,
                    len(ts),
                    median(ts) * 1e3,
                    p95(ts) * 1e3,
                    median(ts) / median(base),
                    p95(ts) / p95(base),
                    len(group.latencies) if group else "",
                    median(group.latencies) * 1e3 if group and group.latencies else "",
                    len(group.errors) if group else "",
                ]
            )
        print(
            f"GET /api/run/{first_rel} (in-process server, finished and analysed run, "
            f"{len(body) / 1e3:.0f} kB): median {median(gets) * 1e3:.1f} ms, p95 "
            f"{p95(gets) * 1e3:.1f} ms (20 requests)"
        )
        print(
            format_table(
                [
                    "condition",
                    "flushes",
                    "flush median ms",
                    "flush p95 ms",
                    "x median",
                    "x p95",
                    "reads",
                    "read median ms",
                    "failed reads",
                ],
                lrows,
                title=f"Writer not blocked: flush() of a run written one sample at a time "
                f"({len(ARCHS['mlp_deep']) * len(METRICS)} metric rows + 5 steps of scalars "
                f"per flush; blocks of {BLOCK} alternate)",
                markdown=args.markdown,
            )
        )
        print(
            f"  the run ended with {live['written']} samples in {live['parts']} parquet parts; "
            f"its final payload shows {live['final_samples']} samples; GET of that payload "
            f"(no writer, no other reader): median {live['final_get'] * 1e3:.0f} ms of 5"
        )
        errors = [e for g in live["readers"].values() for e in g.errors]
        if errors:
            print(f"  failed reads, first: {errors[0]}")
        print()

        # ---- verdicts
        check = not args.quick and len(runs) == len(PHASE1)  # the 10 s target is phase1's
        label = "phase1 suite" if check else f"{len(runs)} runs"
        t_warm = median(times["report(root, figures=False) in-process, warm"])
        t_cold = median(times["traindyn report ROOT --no-figures --no-analyze (cold)"])
        t_fig = median(times["report(root, figures=True) in-process, warm"])
        t_cli = median(times["traindyn report ROOT (cold, default: figures)"])
        mail_ok = size["base64"] <= MAIL_LIMIT
        live_ok = not errors and live["final_samples"] == live["written"]
        n_reads = sum(len(g.latencies) for g in live["readers"].values())
        sep = live["times"]["3 readers, server in another process"]
        same = live["times"]["3 readers, server in this process"]
        ten = "<= 10 s"
        summary: list[tuple[str, str, str, bool | None]] = [
            ("report(), in-process, no figures", f"{t_warm:.2f} s", ten, t_warm <= TARGET_S),
            (
                "traindyn report --no-figures --no-analyze, cold",
                f"{t_cold:.2f} s",
                ten,
                t_cold <= TARGET_S,
            ),
            ("report(figures=True), in-process", f"{t_fig:.2f} s", ten, t_fig <= TARGET_S),
            ("traindyn report (default: figures), cold", f"{t_cli:.2f} s", ten, t_cli <= TARGET_S),
            (
                "report(run_figures=True), once",
                "skipped (--quick)" if t_runfig is None else f"{t_runfig:.2f} s",
                "reported",
                None,
            ),
            ("report.html size", mb(size["total"]), "", None),
            ("  as an attachment (base64)", mb(size["base64"]), "<= 25 MB", mail_ok),
            ("  zipped", mb(size["zip"]), "", None),
        ]
        if browser is not None:
            summary.append(
                (
                    "browser: open -> drawn",
                    f"{median(browser['load_wall']):.2f} s",
                    "reported",
                    None,
                )
            )
            for key, name in (("run", "switch run"), ("metric", "switch metric")):
                if browser[key]:
                    value = f"{median(browser[key]) * 1e3:.0f} ms"
                    summary.append((f"browser: {name}", value, "reported", None))
        summary += [
            ("live: GET /api/run/<run>", f"{median(gets) * 1e3:.1f} ms", "reported", None),
            (
                "live: flush, readers (other process) / none",
                f"{median(sep) / median(base):.2f}x",
                "no lock",
                None,
            ),
            (
                "live: flush, readers (same process) / none",
                f"{median(same) / median(base):.2f}x",
                "no lock",
                None,
            ),
            (
                "live: failed reads; final payload",
                f"{len(errors)}; {live['final_samples']}/{live['written']}",
                "0; all",
                live_ok,
            ),
        ]

        def mark(target: str, ok: bool | None) -> str:
            if ok is None:
                return ""
            if target == ten and not check:
                return "n/c"  # not checked: not the 33 runs of phase1
            return "PASS" if ok else "MISS"

        print(
            format_table(
                ["measure", "value", "target", "verdict"],
                [[m, v, t, mark(t, ok)] for m, v, t, ok in summary],
                title=f"Results ({len(runs)} runs, {source}; n/c: not checked)",
                markdown=args.markdown,
            )
        )
        print()
        print("Targets:")
        lines: list[tuple[bool, str]] = [
            (t_warm <= TARGET_S, f"report({label}, figures=False) in-process = {t_warm:.2f} s"),
            (
                t_cold <= TARGET_S,
                f"traindyn report {label} --no-figures --no-analyze, cold (wall clock, "
                f"interpreter start-up and imports included) = {t_cold:.2f} s",
            ),
            (t_fig <= TARGET_S, f"report({label}, figures=True) in-process = {t_fig:.2f} s"),
            (
                t_cli <= TARGET_S,
                f"traindyn report {label} (default: figures), cold = {t_cli:.2f} s",
            ),
        ]
        if check:
            for ok, text in lines:
                print(verdict(ok, f"{text} <= {TARGET_S:.0f} s (median of {repeats})"))
        else:
            print(
                f"(not checked: {len(runs)} runs, not phase1's {len(PHASE1)}; report "
                f"{t_warm:.2f} s warm, {t_cold:.2f} s cold; nothing extrapolated)"
            )
        print(
            verdict(
                mail_ok,
                f"report.html {mb(size['total'])} ({mb(size['base64'])} base64-encoded) fits a "
                f"25 MB e-mail limit; zipped {mb(size['zip'])}",
            )
        )
        print(
            verdict(
                live_ok,
                f"live view follows a run being written: {len(errors)} of {n_reads} reads "
                f"failed during {live['written']} flushes; the final payload has "
                f"{live['final_samples']} of {live['written']} samples",
            )
        )
        print(
            f"info  writer flush() with {N_READERS} readers polling: median "
            f"x{median(sep) / median(base):.2f}, p95 x{p95(sep) / p95(base):.2f} (server in "
            f"another process), median x{median(same) / median(base):.2f}, p95 "
            f"x{p95(same) / p95(base):.2f} (server in the writer's process); readers take no "
            "lock: this is CPU (and GIL) contention on 2 cores"
        )
        print(
            f"info  payload {mb(size['payload'])} for {len(runs)} runs "
            f"({size['payload'] / len(runs) / 1e3:.0f} kB per run); plotly.js {mb(size['plotly'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
