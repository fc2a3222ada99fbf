"""What a report shows, as plain JSON-ready data; nothing here draws or computes a metric.

:func:`run_data` gathers one run's tables (its metrics and scalars, and whatever
``analysis/`` holds: surviving events, critical periods, phases, convergence, temporal
distribution, checkpoint CKA) into the payload that ``report.js`` draws in the browser.
:func:`directory_data` adds what a suite has beyond its runs (architecture comparison,
pooled temporal distribution, seed bands) and :func:`compare_data` puts two runs side by
side. The same payloads feed the static report and the live view (``traindyn serve``),
which fetches a fresh payload as rows land.

Display downsampling
--------------------
A series with more than ``max_points`` samples is drawn from every k-th sample, with
``k = ceil(n / max_points)``, always keeping the first and the last: displayed values
are measured values, never averages. Events, critical periods and phases are drawn at
their exact steps; every table and PNG figure uses the full data. The rule is stated
on the page (:func:`downsample_rule`).

Payload schema (version :data:`PAYLOAD_VERSION`)
------------------------------------------------
A run payload is a dict with ``kind="run"``, ``id``, ``status``, ``token`` (changes
whenever the run's files change: the live view redraws when it does), ``downsample``
(``n_samples``, ``stride``, ``max_points``), ``metrics`` (metric -> ``{"steps": [...],
"layers": [...], "z": [[value per step] per layer]}``), ``scalars`` (name -> ``{"steps",
"values"}``), ``events`` (surviving events: ``layer, metric, step, shape, type, snr,
q_value``), ``critical`` (``{"layer": [...], "metric": [...], "start": [...], "end": [...]}``, one
list per column), ``phases`` (``name, start,
end``), ``convergence`` (metric -> ``{"layers", "depth", "step"}``, step None when the
layer never stabilised), ``temporal`` (metric -> ``{"layers", "windows", "share"}``) and
``chance`` (metric -> a list of null-control bands ``{"control", "layer", "steps",
"lo", "hi"}``, from ``analyze --controls``) and ``cka`` (a list of ``{"title",
"labels", "z"}`` square matrices). Missing values are
``None`` (JSON ``null``). Floats carry :data:`SIGNIFICANT_DIGITS` significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from traindyn.exceptions import ConfigError, StoreError
from traindyn.store import Run

__all__ = [
    "DEFAULT_MAX_POINTS",
    "PAYLOAD_VERSION",
    "SIGNIFICANT_DIGITS",
    "compare_data",
    "directory_data",
    "downsample_rule",
    "run_data",
    "run_keys",
    "run_token",
    "stride",
]

PAYLOAD_VERSION = 1
DEFAULT_MAX_POINTS = 250  # phase1 (401 samples) is drawn at stride 2: 201 points per series
SIGNIFICANT_DIGITS = 5  # display precision; tables and PNGs keep full precision
# Scalar panels beside the trajectories, and the names that go in each (first match wins).
SCALAR_PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss",),
    "accuracy": ("accuracy", "match_rate"),
    "confidence": ("confidence",),
}


def stride(n_samples: int, max_points: int) -> int:
    """Display stride of a series of ``n_samples`` shown with at most ``max_points``.

    Examples
    --------
    >>> stride(401, 250), stride(250, 250), stride(0, 250)
    (2, 1, 1)
    """
    if max_points < 2:
        raise ConfigError(f"max_points must be at least 2; got {max_points!r}.")
    return max(1, math.ceil(n_samples / max_points))


def downsample_rule(max_points: int) -> str:
    """The downsampling rule in words, as the report states it."""
    return (
        f"Series with more than {max_points} samples are drawn from every k-th sample "
        f"(k = ceil(n / {max_points})), keeping the first and the last; drawn values are "
        "measured values, not averages. Events, critical periods and phases are drawn at "
        "their exact steps, and tables and PNG figures use every sample."
    )


def _kept(n: int, k: int) -> NDArrayInt:
    """Indices kept at stride ``k`` out of ``n``: every k-th and the last."""
    idx = np.arange(0, n, k)
    if n and idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


NDArrayInt = np.ndarray


def _round(values: np.ndarray) -> list[float | None]:
    """Values to ``SIGNIFICANT_DIGITS`` significant digits, NaN/Inf as None."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.zeros_like(x)
    # Rounded as round(x * 10^s) / 10^s, whose shortest repr is the rounded decimal;
    # magnitudes so small or large that 10^s would overflow are kept as they are.
    out[finite] = x[finite]
    nz = finite & (x != 0) & (np.abs(x) > 1e-280) & (np.abs(x) < 1e280)
    if nz.any():
        exponent = np.floor(np.log10(np.abs(x[nz])))
        scale = 10.0 ** (SIGNIFICANT_DIGITS - 1 - exponent)
        out[nz] = np.round(x[nz] * scale) / scale
    listed: list[float | None] = out.tolist()
    for i in np.flatnonzero(~finite):
        listed[i] = None
    return listed


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return _round(np.array([x]))[0]


def run_token(path: Path) -> str:
    """A string that changes whenever a run's tables or manifest change.

    Built from the names, sizes and modification times of ``run.json`` and of the
    parquet parts, so it costs a directory listing, not a read.
    """
    parts: list[str] = []
    for sub in ("", "metrics", "scalars", "analysis"):
        directory = path / sub if sub else path
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                stat = entry.stat()
                parts.append(f"{sub}/{entry.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return str(hash(tuple(parts)) & 0xFFFFFFFFFFFF)


def analysis_table(run: Run, name: str) -> pd.DataFrame | None:
    """A stored analysis table, or None when the run has none (not analysed yet)."""
    try:
        table = run.read_analysis(name)
    except StoreError:
        return None
    return table if isinstance(table, pd.DataFrame) else None


def analysis_json(run: Run, name: str) -> dict[str, Any] | None:
    """A stored analysis JSON document (``summary``), or None."""
    try:
        value = run.read_analysis(name)
    except StoreError:
        return None
    return value if isinstance(value, dict) else None


def _metrics_payload(metrics: pd.DataFrame, max_points: int) -> tuple[dict[str, Any], int, int]:
    out: dict[str, Any] = {}
    n_max, k_max = 0, 1
    if metrics.empty:
        return out, n_max, k_max
    table = metrics.drop_duplicates(["step", "layer", "metric"], keep="last")
    layers_all = [str(v) for v in pd.unique(table["layer"])]
    for metric, rows in table.groupby("metric", sort=False):
        wide = rows.pivot(index="layer", columns="step", values="value")
        layers = [layer for layer in layers_all if layer in wide.index]
        wide = wide.reindex(index=layers).sort_index(axis=1)
        steps = wide.columns.to_numpy(dtype=np.int64)
        k = stride(len(steps), max_points)
        keep = _kept(len(steps), k)
        values = wide.to_numpy(dtype=np.float64, na_value=np.nan)[:, keep]
        out[str(metric)] = {
            "steps": steps[keep].tolist(),
            "layers": layers,
            "z": [_round(row) for row in values],
        }
        n_max, k_max = max(n_max, len(steps)), max(k_max, k)
    return out, n_max, k_max


def _scalars_payload(scalars: pd.DataFrame, max_points: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scalars.empty:
        return out
    table = scalars.drop_duplicates(["step", "name"], keep="last")
    for name, rows in table.groupby("name", sort=False):
        rows = rows.sort_values("step")
        keep = _kept(len(rows), stride(len(rows), max_points))
        out[str(name)] = {
            "steps": rows["step"].to_numpy(dtype=np.int64)[keep].tolist(),
            "values": _round(rows["value"].to_numpy(dtype=np.float64)[keep]),
        }
    return out


def _records(table: pd.DataFrame | None, columns: Sequence[str]) -> list[dict[str, Any]]:
    if table is None or table.empty:
        return []
    present = [c for c in columns if c in table.columns]
    out = []
    for row in table[present].itertuples(index=False):
        record: dict[str, Any] = {}
        for column, value in zip(present, row, strict=True):
            if isinstance(value, (bool, np.bool_)):
                record[column] = bool(value)
            elif isinstance(value, (int, np.integer)):
                record[column] = int(value)
            elif isinstance(value, (float, np.floating)):
                record[column] = _num(value)
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                record[column] = None
            else:
                record[column] = str(value)
        out.append(record)
    return out


def _columns(table: pd.DataFrame | None, columns: Sequence[str]) -> dict[str, list[Any]]:
    """A table as one list per column (no repeated keys: critical periods are many)."""
    if table is None or table.empty:
        return {c: [] for c in columns}
    out: dict[str, list[Any]] = {}
    for column in columns:
        values = table[column]
        if pd.api.types.is_integer_dtype(values):
            out[column] = [int(v) for v in values]
        elif pd.api.types.is_float_dtype(values):
            out[column] = _round(values.to_numpy(dtype=np.float64))
        else:
            out[column] = [str(v) for v in values]
    return out


def _surviving(events: pd.DataFrame | None) -> pd.DataFrame | None:
    if events is None or events.empty:
        return events
    if "survives" in events.columns:
        return events.loc[events["survives"].fillna(False).astype(bool)]
    if "below_floor" in events.columns:  # analyses written without the evidence columns
        return events.loc[~events["below_floor"].fillna(True).astype(bool)]
    return events


def _phases(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    if table is None or table.empty or not {"phase", "start", "end"} <= set(table.columns):
        return []
    unique = table[["phase", "start", "end"]].drop_duplicates().sort_values("start")
    return [
        {"name": str(p), "start": int(s), "end": int(e)} for p, s, e in unique.itertuples(False)
    ]


def _convergence(table: pd.DataFrame | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if table is None or table.empty:
        return out
    for metric, rows in table.groupby("metric", sort=True):
        rows = rows.sort_values("depth")
        stabilised = rows["stabilized"].fillna(False).astype(bool).to_numpy()
        steps = rows["stabilization_step"].to_numpy(dtype=np.float64)
        out[str(metric)] = {
            "layers": [str(v) for v in rows["layer"]],
            "depth": [int(v) for v in rows["depth"]],
            "step": [
                _num(s) if ok and np.isfinite(s) else None
                for s, ok in zip(steps, stabilised, strict=True)
            ],
        }
    return out


def _temporal(table: pd.DataFrame | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if table is None or table.empty or "layer" not in table.columns:
        return out
    windows = [str(w) for w in pd.unique(table["window"])]
    for metric, rows in table.groupby("metric", sort=True):
        wide = rows.pivot_table(index="layer", columns="window", values="share", sort=False)
        layers = [str(v) for v in pd.unique(rows["layer"])]
        wide = wide.reindex(index=layers, columns=windows)
        out[str(metric)] = {
            "layers": layers,
            "windows": windows,
            "share": [_round(r) for r in wide.to_numpy(dtype=np.float64, na_value=np.nan)],
        }
    return out


def _chance(table: pd.DataFrame | None, max_points: int) -> dict[str, Any]:
    """Null-control bands (``analyze --controls``) per metric: ``lo``..``hi`` by step."""
    out: dict[str, Any] = {}
    needed = {"control", "layer", "metric", "step", "lo", "hi"}
    if table is None or table.empty or not needed <= set(table.columns):
        return out
    keys = ["metric", "control", "layer"]
    for (metric, control, layer), rows in table.groupby(keys, sort=False):
        rows = rows.drop_duplicates("step").sort_values("step")
        keep = _kept(len(rows), stride(len(rows), max_points))
        out.setdefault(str(metric), []).append(
            {
                "control": str(control),
                "layer": str(layer),
                "steps": rows["step"].to_numpy(dtype=np.int64)[keep].tolist(),
                "lo": _round(rows["lo"].to_numpy(dtype=np.float64)[keep]),
                "hi": _round(rows["hi"].to_numpy(dtype=np.float64)[keep]),
            }
        )
    return out


def _cka(run: Run) -> list[dict[str, Any]]:
    """Square CKA matrices from ``analyze --checkpoints`` (across steps, across layers)."""
    out: list[dict[str, Any]] = []
    across_steps = analysis_table(run, "checkpoint_comparison_across_steps")
    if across_steps is not None and not across_steps.empty:
        for layer, rows in across_steps.groupby("layer", sort=False):
            wide = rows.pivot_table(index="step_a", columns="step_b", values="cka", sort=True)
            labels = sorted(set(wide.index) | set(wide.columns))
            wide = wide.reindex(index=labels, columns=labels)
            out.append(
                {
                    "title": f"{layer}: CKA between checkpoints",
                    "labels": [f"step {s}" for s in labels],
                    "z": [_round(r) for r in wide.to_numpy(dtype=np.float64, na_value=np.nan)],
                }
            )
    across_layers = analysis_table(run, "checkpoint_comparison_across_layers")
    if across_layers is not None and not across_layers.empty:
        for step, rows in across_layers.groupby("step", sort=True):
            order = [str(v) for v in pd.unique(rows["layer_a"])]
            wide = rows.pivot_table(index="layer_a", columns="layer_b", values="cka")
            wide = wide.reindex(index=order, columns=order)
            out.append(
                {
                    "title": f"step {step}: CKA between layers",
                    "labels": order,
                    "z": [_round(r) for r in wide.to_numpy(dtype=np.float64, na_value=np.nan)],
                }
            )
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def header(run: Run) -> dict[str, Any]:
    """What was run and how long it took, from ``run.json``, as labelled strings.

    Returns
    -------
    dict
        ``config``, ``model``, ``probe``, ``versions`` (each a mapping of label to
        text), ``created``, ``finished`` (ISO 8601, UTC) and ``duration_s`` (wall clock
        from creation to the last heartbeat, seconds).
    """
    manifest = run.manifest
    config = manifest.config if isinstance(manifest.config, Mapping) else {}
    experiment = config.get("experiment")
    tracker = config.get("tracker")
    summary: dict[str, str] = {}
    if isinstance(experiment, Mapping):
        train = experiment.get("train") if isinstance(experiment.get("train"), Mapping) else {}
        assert isinstance(train, Mapping)
        schedule = train.get("schedule")
        for label, value in (
            ("architecture", experiment.get("arch")),
            ("dataset", experiment.get("dataset")),
            ("seed", experiment.get("seed")),
            ("steps", config.get("total_steps", train.get("steps"))),
            ("optimizer", train.get("optimizer")),
            ("learning rate", train.get("lr")),
            ("weight decay", train.get("weight_decay")),
            ("batch size", train.get("batch_size")),
            ("lr schedule", schedule.get("kind") if isinstance(schedule, Mapping) else None),
            ("early stopping", experiment.get("early_stopping")),
            ("phases", _phase_names(experiment.get("phases"))),
            ("shuffled labels", experiment.get("shuffle_labels") or None),
        ):
            if value is not None:
                summary[label] = _text(value)
    if isinstance(tracker, Mapping):
        for label, key in (
            ("sampling", "schedule"),
            ("capture mode", "mode"),
            ("reduction", "reduce"),
            ("metrics", "metrics"),
            ("layers", "layers"),
            ("checkpoints", "checkpoint_schedule"),
        ):
            if tracker.get(key) is not None:
                summary[label] = _text(tracker.get(key))
    for key, value in config.items():
        if key not in ("experiment", "tracker", "total_steps", "model", "probe"):
            summary[str(key)] = _text(value)

    model: dict[str, str] = {}
    fingerprint = manifest.model_fingerprint
    if fingerprint is not None:
        n_params = sum(int(np.prod(t.shape)) for t in fingerprint.tensors)
        model["class"] = str(fingerprint.model_class)
        model["parameters"] = f"{n_params:,}"
        model["tensors"] = str(len(fingerprint.tensors))
    model_config = config.get("model")
    if isinstance(model_config, Mapping):
        for key, value in model_config.items():
            if value is not None:
                model[str(key)] = _text(value)
    probe = manifest.probe if isinstance(manifest.probe, Mapping) else {}
    versions = {k: str(v) for k, v in manifest.versions.model_dump().items() if v is not None}
    end = manifest.finished_at or manifest.updated_at
    return {
        "config": summary,
        "model": model,
        "probe": {str(k): _text(v) for k, v in probe.items()},
        "versions": versions,
        "created": _iso(manifest.created_at),
        "finished": _iso(manifest.finished_at),
        "duration_s": round((end - manifest.created_at).total_seconds(), 1),
        "host": manifest.hostname,
        "error": manifest.error,
    }


def _phase_names(phases: Any) -> str | None:
    if not isinstance(phases, list) or not phases:
        return None
    return ", ".join(str(p.get("name")) if isinstance(p, Mapping) else str(p) for p in phases)


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, (list, tuple)):
        text = ", ".join(_text(v) for v in value)
        return text if len(text) <= 160 else f"{text[:150]}... ({len(value)} items)"
    return str(value)


def run_data(run: Run | str | Path, *, max_points: int = DEFAULT_MAX_POINTS) -> dict[str, Any]:
    """One run's report payload (see the module docstring for its schema).

    Works on a run that is still being written (its parts so far, no analysis yet) and
    on one that was never analysed; the analysis parts of the payload are then empty.

    Parameters
    ----------
    run : Run, str or Path
    max_points : int, default=250
        At most this many samples per drawn series (see *Display downsampling*).

    Returns
    -------
    dict
        JSON-ready payload.

    Examples
    --------
    >>> import tempfile
    >>> import traindyn as td
    >>> with tempfile.TemporaryDirectory() as tmp, td.store.Run.create(f"{tmp}/r") as r:
    ...     r.append_metrics([(s, "fc", "participation_ratio", 1.0 + s) for s in range(0, 9)])
    ...     r.flush()
    ...     data = run_data(r, max_points=4)
    9
    >>> data["metrics"]["participation_ratio"]["steps"], data["downsample"]["stride"]
    ([0, 3, 6, 8], 3)
    """
    run_ = run if isinstance(run, Run) else Run(run)
    metrics, n_samples, k = _metrics_payload(run_.metrics, max_points)
    events = _surviving(analysis_table(run_, "events"))
    summary = analysis_json(run_, "summary")
    return {
        "kind": "run",
        "version": PAYLOAD_VERSION,
        "id": run_.id,
        "status": run_.status,
        "stale": bool(run_.is_stale),
        "token": run_token(run_.path),
        "analysed": summary is not None,
        "downsample": {"n_samples": n_samples, "stride": k, "max_points": max_points},
        "metrics": metrics,
        "scalars": _scalars_payload(run_.scalars, max_points),
        "scalar_panels": {k_: list(v) for k_, v in SCALAR_PANELS.items()},
        "events": _records(
            events, ("layer", "metric", "step", "shape", "type", "snr", "q_value", "delta")
        ),
        "critical": _columns(
            analysis_table(run_, "critical_periods"), ("layer", "metric", "start", "end")
        ),
        "phases": _phases(analysis_table(run_, "phases")),
        "convergence": _convergence(analysis_table(run_, "convergence")),
        "temporal": _temporal(analysis_table(run_, "temporal")),
        "chance": _chance(analysis_table(run_, "chance"), max_points),
        "cka": _cka(run_),
    }


def _bands(runs: Mapping[str, Run], groups: Mapping[str, str], max_points: int) -> dict[str, Any]:
    """Seed bands (mean and range over the runs of each group of two or more seeds)."""
    from traindyn.analysis import seed_bands

    members: dict[str, list[str]] = {}
    for run_id, group in groups.items():
        members.setdefault(group, []).append(run_id)
    multi = {g: ids for g, ids in members.items() if len(ids) >= 2}
    if not multi:
        return {}
    frames = [runs[i].metrics.assign(run=i) for ids in multi.values() for i in ids]
    table = pd.concat(frames, ignore_index=True)
    bands = seed_bands(table, {i: g for g, ids in multi.items() for i in ids})
    out: dict[str, Any] = {}
    for group_name, by_group in bands.groupby("group", sort=True):
        group = str(group_name)
        entry: dict[str, Any] = {"runs": sorted(multi[group]), "metrics": {}}
        for metric, rows in by_group.groupby("metric", sort=False):
            layers = [str(v) for v in pd.unique(rows["layer"])]
            steps = np.sort(rows["step"].unique())
            keep = _kept(len(steps), stride(len(steps), max_points))
            shown = steps[keep]
            series: dict[str, Any] = {"steps": shown.tolist(), "layers": layers}
            for column in ("mean", "min", "max"):
                wide = rows.pivot(index="layer", columns="step", values=column)
                wide = wide.reindex(index=layers, columns=shown)
                series[column] = [
                    _round(r) for r in wide.to_numpy(dtype=np.float64, na_value=np.nan)
                ]
            series["n"] = int(rows["n"].max())
            entry["metrics"][str(metric)] = series
        out[group] = entry
    return out


def _wide_table(table: pd.DataFrame | None, index: str, columns: Iterable[str]) -> dict[str, Any]:
    if table is None or table.empty:
        return {}
    present = [c for c in columns if c in table.columns]
    return {
        "index": [str(v) for v in table[index]],
        "columns": present,
        "values": [_round(table[c].to_numpy(dtype=np.float64)) for c in present],
    }


def directory_data(
    root: str | Path,
    runs: Sequence[Run],
    *,
    max_points: int = DEFAULT_MAX_POINTS,
) -> dict[str, Any]:
    """A suite's report payload: every run's payload plus what the suite adds.

    Parameters
    ----------
    root : str or Path
        The suite directory (its ``analysis/`` holds the pooled tables, if analysed).
    runs : sequence of Run
        The runs to include, in display order.
    max_points : int, default=250
        As in :func:`run_data`.

    Returns
    -------
    dict
        ``kind="directory"``, ``runs`` (id -> run payload), ``order`` (ids),
        ``groups`` (id -> seed group), ``bands`` (group -> ``{"runs", "metrics": metric
        -> {"steps", "layers", "mean", "min", "max", "n"}}``), ``by_arch`` and
        ``temporal`` (``{"index", "columns", "values"}``: one list of values per column).
    """
    from traindyn.analysis import seed_group

    base = Path(root)
    keys = run_keys(base, runs)
    by_id = {keys[i]: r for i, r in enumerate(runs)}
    groups = {keys[i]: seed_group(r)[0] for i, r in enumerate(runs)}
    by_arch = directory_table(base, "by_arch")
    temporal = directory_table(base, "temporal")
    pooled: dict[str, Any] = {}
    if temporal is not None and not temporal.empty:
        wide = temporal.pivot_table(index="metric", columns="window", values="share", sort=False)
        windows = [str(w) for w in pd.unique(temporal["window"])]
        wide = wide.reindex(columns=windows)
        pooled = {
            "index": [str(v) for v in wide.index],
            "columns": windows,
            "values": [_round(wide[w].to_numpy(dtype=np.float64)) for w in windows],
        }
    return {
        "kind": "directory",
        "version": PAYLOAD_VERSION,
        "root": str(base),
        "order": keys,
        "runs": {keys[i]: run_data(r, max_points=max_points) for i, r in enumerate(runs)},
        "groups": groups,
        "bands": _bands(by_id, groups, max_points),
        "by_arch": _wide_table(
            by_arch,
            "arch",
            ("events_surviving", "share_early", "share_mid", "share_late", "mean_coordination"),
        ),
        "temporal": pooled,
    }


def run_keys(root: Path, runs: Sequence[Run]) -> list[str]:
    """How a suite page names its runs: the id, or the path under ``root`` when two
    runs share an id (``a/mlp_s0`` and ``b/mlp_s0``).

    Examples
    --------
    >>> class R:
    ...     def __init__(self, p): self.path, self.id = Path(p), Path(p).name
    >>> run_keys(Path("/x"), [R("/x/a/m"), R("/x/b/m"), R("/x/c")])
    ['a/m', 'b/m', 'c']
    """
    ids = [r.id for r in runs]
    out = []
    for run in runs:
        if ids.count(run.id) > 1:
            try:
                out.append(run.path.relative_to(root).as_posix())
            except ValueError:
                out.append(str(run.path))
        else:
            out.append(run.id)
    return out


def directory_table(root: Path, name: str) -> pd.DataFrame | None:
    """A suite's pooled analysis table (``DIR/analysis/<name>.parquet``), or None."""
    path = root / "analysis" / f"{name}.parquet"
    if not path.is_file():
        return None
    return pd.read_parquet(path)


def compare_data(a: Run, b: Run, *, max_points: int = DEFAULT_MAX_POINTS) -> dict[str, Any]:
    """Two runs side by side: both payloads, and the metrics both share.

    Returns
    -------
    dict
        ``kind="compare"``, ``a`` and ``b`` (run payloads) and ``metrics`` (the metrics
        both runs have, in A's order).
    """
    data_a = run_data(a, max_points=max_points)
    data_b = run_data(b, max_points=max_points)
    shared = [m for m in data_a["metrics"] if m in data_b["metrics"]]
    return {
        "kind": "compare",
        "version": PAYLOAD_VERSION,
        "a": data_a,
        "b": data_b,
        "metrics": shared,
    }
