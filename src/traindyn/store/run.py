"""One run directory: append-only parquet parts, an atomic ``run.json``, flush on signal.

Layout (the store contract of ``DESIGN.md``)::

    <run>/
      run.json                    RunManifest (see traindyn.store.schema)
      metrics/part-*.parquet      METRICS_SCHEMA
      scalars/part-*.parquet      SCALARS_SCHEMA
      checkpoints/step-<N>.safetensors + step-<N>.json

Crash safety. Rows are buffered in memory and written by :meth:`Run.flush` as a *new*
part: the file is written under a temporary name starting with a dot (which never matches
``part-*.parquet``), fsynced, then renamed with :func:`os.replace`. Parts are never
rewritten, so a run killed at any moment is readable up to its last flush. ``run.json`` is
rewritten the same way (temporary file + replace) and its ``updated_at`` is the heartbeat.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import operator
import os
import platform
import re
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import JsonValue, ValidationError

from traindyn._validation import check_in, check_positive
from traindyn._version import __version__
from traindyn.exceptions import ConfigError, RunNotFound, StoreError, StoreWarning
from traindyn.store.schema import (
    METRICS_SCHEMA,
    SCALARS_SCHEMA,
    SCHEMA_VERSION,
    ModelFingerprint,
    PredictionLock,
    RunManifest,
    RunStatus,
    Versions,
    describe_validation_error,
    to_json_value,
)

__all__ = [
    "HEARTBEAT_S",
    "STALE_AFTER_S",
    "ExportedFiles",
    "MetricRow",
    "Run",
    "StoreWarning",
    "flush_on_signals",
    "lock_predictions",
    "open_run",
    "pending_predictions",
    "write_pending_predictions",
]

MANIFEST_NAME = "run.json"
METRICS_DIR = "metrics"
SCALARS_DIR = "scalars"
CHECKPOINTS_DIR = "checkpoints"
ANALYSIS_DIR = "analysis"
PENDING_PREDICTIONS = "predictions.lock.json"
"""A lock waiting for its run: in a run directory not created yet, or in a suite's
directory (then every run created directly inside it takes the lock)."""
PART_GLOB = "part-*.parquet"
_PART_RE = re.compile(r"^part-(\d+)-[0-9a-f]+\.parquet$")
_CHECKPOINT_RE = re.compile(r"^step-(\d+)\.safetensors$")

HEARTBEAT_S = 60.0
""":meth:`Run.maybe_flush` rewrites ``updated_at`` at least this often, even with no rows."""

STALE_AFTER_S = 900.0
"""A running run on another host is stale when its heartbeat is older than this (15 min,
fifteen missed heartbeats: long enough for an evaluation pass between two steps)."""

# Above this many buffered rows maybe_flush writes even before its interval is due, so a
# fast loop cannot grow the buffer without bound (100k rows is a few MB).
_MAX_BUFFERED_ROWS = 100_000

_STRING_DTYPE = pd.StringDtype()
_TYPES_MAPPER: Callable[[pa.DataType], Any] = {
    pa.string(): _STRING_DTYPE,
    pa.large_string(): _STRING_DTYPE,
}.get


class MetricRow(NamedTuple):
    """One row of the metrics table.

    A plain tuple ``(step, layer, metric, value, reason)`` is accepted wherever a
    ``MetricRow`` is, and so is ``(step, layer, metric, value)`` (no reason).

    Parameters
    ----------
    step : int
        Training step (int64).
    layer : str
        ``named_modules()`` path, stored verbatim (``"/"`` and ``"."`` are fine).
    metric : str
        Metric name, a key of the metric registry.
    value : float
        The measurement; NaN when it could not be computed.
    reason : str or None
        Why ``value`` is NaN; None otherwise.

    Examples
    --------
    >>> MetricRow(10, "encoder.0/attn", "effective_rank", 3.5)
    MetricRow(step=10, layer='encoder.0/attn', metric='effective_rank', value=3.5, reason=None)
    """

    step: int
    layer: str
    metric: str
    value: float
    reason: str | None = None


MetricRowLike: TypeAlias = MetricRow | tuple[Any, ...]


@dataclass(frozen=True)
class ExportedFiles:
    """Files written by :meth:`Run.export`."""

    metrics: Path
    scalars: Path


# --------------------------------------------------------------------------- file helpers


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network filesystems refuse fsync on directories
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    # A leading dot keeps temporaries out of ``part-*.parquet`` and ``step-*`` globs.
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(final: Path, write: Callable[[Any], None], *, exclusive: bool = False) -> None:
    """Write ``final`` through ``write(fileobj)`` under a temporary name, fsync, rename.

    With ``exclusive`` the rename fails with :class:`FileExistsError` if ``final`` exists.
    """

    def to_path(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    atomic_write_path(final, to_path, exclusive=exclusive)


def atomic_write_path(
    final: Path, write: Callable[[Path], None], *, exclusive: bool = False
) -> None:
    """Like :func:`atomic_write`, for writers that take a path (``safetensors.save_file``).

    The temporary file sits next to ``final`` (same filesystem, so the rename is atomic)
    and starts with a dot, so it never matches ``part-*.parquet`` or ``step-*``. With
    ``exclusive`` a hard link replaces the rename: it is atomic too and refuses to
    overwrite (filesystems without hard links fall back to check-then-rename).
    """
    tmp = _tmp_name(final)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise
            except OSError:
                if final.exists():
                    raise FileExistsError(final) from None
                os.replace(tmp, final)
        else:
            os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(final.parent)


def _write_bytes(final: Path, data: bytes) -> None:
    def write(f: Any) -> None:
        f.write(data)

    atomic_write(final, write)


def _write_part(directory: Path, seq: int, table: pa.Table) -> Path:
    final = directory / f"part-{seq:06d}-{uuid.uuid4().hex[:8]}.parquet"
    atomic_write(final, lambda f: pq.write_table(table, f))
    return final


def read_manifest(path: Path) -> RunManifest:
    """Read and validate ``run.json`` at ``path``.

    Raises
    ------
    RunNotFound
        If the file does not exist.
    StoreError
        If it is not JSON, was written by a newer traindyn, or fails validation; the
        message names the file and every bad field.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunNotFound(f"no run at {path.parent}: {path} does not exist.") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}. Check its permissions.") from exc
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"{path} is not valid JSON ({exc}); the manifest is corrupt. "
            "Restore it from a backup or recreate the run."
        ) from None
    if not isinstance(data, dict):
        raise StoreError(
            f"{path} must hold a JSON object; got {type(data).__name__}. "
            "Restore it from a backup or recreate the run."
        )
    version = data.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: field 'schema_version' is {version}, newer than this traindyn "
            f"understands ({SCHEMA_VERSION}). Upgrade traindyn to read this run."
        )
    try:
        return RunManifest.model_validate(data)
    except ValidationError as exc:
        raise StoreError(
            describe_validation_error(exc, str(path))
            + "\nFix the field(s) in run.json or recreate the run."
        ) from None


def _write_manifest(path: Path, manifest: RunManifest, *, exclusive: bool = False) -> None:
    data = manifest.model_dump_json(indent=2).encode() + b"\n"
    atomic_write(path, lambda f: f.write(data), exclusive=exclusive)


def list_parts(directory: Path) -> list[Path]:
    """Return the parquet parts of one table directory in write order."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(PART_GLOB) if _PART_RE.match(p.name))


def _next_seq(run_dir: Path) -> int:
    seqs = [
        int(m.group(1))
        for sub in (METRICS_DIR, SCALARS_DIR)
        for p in list_parts(run_dir / sub)
        if (m := _PART_RE.match(p.name))
    ]
    return max(seqs, default=-1) + 1


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """Guts of the part reader: select and cast ``table`` to ``schema`` (no file I/O)."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise StoreError(f"{path} has no column {field.name!r}")
    return pa.Table.from_arrays(columns, schema=schema)


def read_table(directory: Path, schema: pa.Schema) -> pa.Table:
    """Read every part of one table directory as a single table with ``schema``.

    A part that cannot be read (truncated, corrupt, wrong columns) is skipped with a
    :class:`StoreWarning` naming the file.
    """
    tables = []
    for part in list_parts(directory):
        try:
            tables.append(_conform(pq.read_table(part), schema, part))
        except (pa.ArrowException, OSError, ValueError) as exc:
            warnings.warn(
                f"skipping {part}: not a readable {directory.name} part ({exc}). It is "
                "probably left over from an interrupted write; delete it to silence "
                "this warning.",
                StoreWarning,
                stacklevel=4,
            )
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Return ``table`` as pandas with string columns as ``pd.StringDtype()`` (NA = null)."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=_TYPES_MAPPER)
    return frame


ROW_KEYS: dict[str, tuple[str, ...]] = {
    METRICS_DIR: ("step", "layer", "metric"),
    SCALARS_DIR: ("step", "name"),
}
"""One value per key: a later part replaces an earlier one, which is how a resumed run
overwrites the steps it replays after restarting from an older checkpoint."""


def _read_frame(directory: Path, schema: pa.Schema) -> pd.DataFrame:
    df = to_frame(read_table(directory, schema))  # parts in write order
    df = df.drop_duplicates(subset=list(ROW_KEYS[directory.name]), keep="last")
    return df.sort_values("step", kind="stable", ignore_index=True)


def write_analysis_file(directory: Path, name: str, data: Mapping[str, Any] | pd.DataFrame) -> Path:
    """Write ``directory/<name>.json`` (a mapping) or ``.parquet`` (a table), atomically.

    The writer behind :meth:`Run.write_analysis`; also used for tables pooled over many
    runs, which live in ``DIR/analysis/`` beside the runs.

    Raises
    ------
    ConfigError
        If ``name`` is not a plain file stem or ``data`` is not JSON-serialisable.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise ConfigError(
            f"analysis name must be a plain file stem (letters, digits, _ . -); got {name!r}."
        )
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, pd.DataFrame):
        final = directory / f"{name}.parquet"
        table = pa.Table.from_pandas(data, preserve_index=False)
        atomic_write_path(final, lambda tmp: pq.write_table(table, tmp))
    else:
        final = directory / f"{name}.json"
        text = json.dumps(to_json_value(data, name=name), indent=2, sort_keys=True)
        atomic_write(final, lambda f: f.write(text.encode()))
    return final


def _frame_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows ``(step, layer, metric, value[, reason])`` of a metrics-like DataFrame."""
    needed = ["step", "layer", "metric", "value"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"a metrics DataFrame needs columns {needed} (+ optional 'reason'); {missing} "
            f"missing (columns: {list(frame.columns)})."
        )
    columns = needed + (["reason"] if "reason" in frame.columns else [])
    for row in frame[columns].itertuples(index=False, name=None):
        yield tuple(v.item() if isinstance(v, np.generic) else v for v in row)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(pid, 0).
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state not in (["Z"], ["X"])


def manifest_is_stale(manifest: RunManifest, *, now: datetime | None = None) -> bool:
    """Guts of :attr:`Run.is_stale` for an already-read manifest."""
    if manifest.status != "running":
        return False
    if (
        manifest.pid is not None
        and manifest.hostname == socket.gethostname()
        and sys.platform != "win32"  # os.kill(pid, 0) terminates the process on Windows
    ):
        return not _pid_alive(manifest.pid)
    age = ((now or _utcnow()) - manifest.updated_at).total_seconds()
    return age > STALE_AFTER_S


def find_run_dirs(root: Path, *, limit: int | None = None) -> list[Path]:
    """Directories under ``root`` (``root`` included) that hold a ``run.json``, sorted.

    Does not descend into a run directory nor into hidden directories.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if MANIFEST_NAME in filenames:
            found.append(Path(dirpath))
            dirnames.clear()
            if limit is not None and len(found) >= limit:
                break
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def predictions_conflict(where: Path, old: PredictionLock, advice: str) -> StoreError:
    """The error for a lock that would replace ``old`` (a lock is never replaced)."""
    return StoreError(
        f"{where} already holds predictions locked at {old.locked_at.isoformat()} (sha256 "
        f"{old.sha256[:12]}); a lock is never replaced. {advice}"
    )


def pending_predictions(directory: Path) -> PredictionLock | None:
    """The lock waiting in ``directory`` (:data:`PENDING_PREDICTIONS`), or None.

    Raises
    ------
    StoreError
        If the file exists but is not a valid lock; the message names it.
    """
    path = Path(directory) / PENDING_PREDICTIONS
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return PredictionLock.model_validate_json(raw)
    except ValidationError as exc:
        raise StoreError(
            describe_validation_error(exc, str(path))
            + "\nDelete the file and lock the predictions again."
        ) from None


def write_pending_predictions(directory: Path, lock: PredictionLock) -> Path:
    """Write ``lock`` as the pending lock of ``directory`` (created if missing).

    Raises
    ------
    StoreError
        If ``directory`` already has a pending lock with other content (a lock is never
        replaced), or is a file.
    """
    directory = Path(directory)
    old = pending_predictions(directory)
    if old is not None and old.sha256 != lock.sha256:
        raise predictions_conflict(
            directory / PENDING_PREDICTIONS,
            old,
            "Use a new run or suite directory for new predictions.",
        )
    if old is not None:
        return directory / PENDING_PREDICTIONS
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {directory}: {exc}") from exc
    data = lock.model_dump_json(indent=2).encode() + b"\n"
    atomic_write(directory / PENDING_PREDICTIONS, lambda f: f.write(data))
    return directory / PENDING_PREDICTIONS


def lock_predictions(path: str | os.PathLike[str], lock: PredictionLock) -> RunManifest:
    """Write ``lock`` into the ``run.json`` of the existing, idle run at ``path``.

    The caller decides whether the lock is late (:func:`traindyn.analysis.predictions.lock`
    measures what the run holds). Returns the new manifest.

    Raises
    ------
    RunNotFound
        If ``path`` holds no run.
    StoreError
        If the run already holds a lock (never replaced), or a live process is writing it
        (its writer would overwrite ``run.json``): lock before training, e.g.
        ``Tracker(predictions=...)``.
    """
    root = Path(os.path.abspath(path))
    manifest_path = root / MANIFEST_NAME
    manifest = read_manifest(manifest_path)
    if manifest.predictions is not None:
        if manifest.predictions.sha256 == lock.sha256:
            return manifest
        raise predictions_conflict(
            root, manifest.predictions, "Record new predictions in a new run."
        )
    if manifest.status == "running" and not manifest_is_stale(manifest):
        raise StoreError(
            f"{root} is being written by pid {manifest.pid} on {manifest.hostname}; its "
            "writer rewrites run.json, so a lock cannot be added now. Lock before training "
            "starts (Tracker(predictions=...), or `traindyn predictions lock` on the run "
            "directory before it exists), or after the run ends with --late."
        )
    manifest = manifest.model_copy(update={"predictions": lock})
    _write_manifest(manifest_path, manifest)
    return manifest


def _versions() -> Versions:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return Versions(
        python=platform.python_version(),
        torch=version("torch"),
        numpy=version("numpy"),
        traindyn=__version__,
    )


def _as_fingerprint(value: ModelFingerprint | Mapping[str, Any] | None) -> ModelFingerprint | None:
    if value is None or isinstance(value, ModelFingerprint):
        return value
    try:
        return ModelFingerprint.model_validate(value)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, "model_fingerprint")
            + "\nBuild it with traindyn.store.fingerprint(model)."
        ) from None


# ------------------------------------------------------------------------- row checking


def _as_step(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where} step must be an integer; got {value!r}.")
    try:
        step = operator.index(value)
    except TypeError:
        raise ConfigError(
            f"{where} step must be an integer; got {value!r} ({type(value).__name__})."
        ) from None
    if not -(2**63) <= step < 2**63:
        raise ConfigError(f"{where} step must fit in int64; got {step}.")
    return step


def _as_value(value: Any, where: str) -> float:
    if isinstance(value, str | bytes):
        raise ConfigError(f"{where} value must be a number; got {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where} value must be a number (NaN with a reason when it could not be "
            f"computed); got {value!r} ({type(value).__name__})."
        ) from None


def _as_name(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} {field} must be a non-empty string; got {value!r}.")
    return value


# -------------------------------------------------------------------- signals and writers


SignalPolicy: TypeAlias = Literal["close", "flush"]
_Handler: TypeAlias = Callable[[int, FrameType | None], Any] | int | None


class _SignalState:
    """Process-wide registry behind :func:`flush_on_signals` (signals are process-wide)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.RLock()
        self.local = threading.local()  # .depth: nesting of store writes in this thread
        self.pending: list[tuple[int, FrameType | None]] = []
        self.previous: dict[int, _Handler] = {}
        self.open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


_SIGNALS = _SignalState()
_HANDLED = (signal.SIGTERM, signal.SIGINT)


def _forget_runs_after_fork() -> None:
    """In a forked child, the parent's runs are not ours to flush, fail or finalise."""
    for run in list(_SIGNALS.open_runs):
        if run._finalizer is not None:
            run._finalizer.detach()
    previous = _SIGNALS.previous
    _SIGNALS.reset()  # fresh locks: the parent's may have been held at fork time
    _SIGNALS.previous = previous


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_runs_after_fork)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _critical(lock: threading.RLock) -> Iterator[None]:
    """Hold ``lock``; a SIGTERM/SIGINT arriving meanwhile is handled once it is released.

    Python runs signal handlers in the main thread between two bytecodes. Handling one in
    the middle of a flush would write a second part while the first is half written and
    then unwind through it; instead the handler queues the signal, and the outermost
    critical section of the main thread handles it on exit.
    """
    local = _SIGNALS.local
    try:
        with lock:
            local.depth = getattr(local, "depth", 0) + 1
            try:
                yield
            finally:
                local.depth -= 1
    finally:
        if local.depth == 0 and _SIGNALS.pending and _in_main_thread():
            signum, frame = _SIGNALS.pending[0]
            _SIGNALS.pending.clear()
            _interrupt(signum, frame)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if getattr(_SIGNALS.local, "depth", 0) > 0:
        _SIGNALS.pending.append((signum, frame))
        return
    _interrupt(signum, frame)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Flush and fail every open run, then do what the previous handler would have done."""
    name = signal.Signals(signum).name
    previous = _SIGNALS.previous.get(signum, signal.SIG_DFL)
    for run in list(_SIGNALS.open_runs):
        try:
            run.interrupted_by = name
            if run._signal_policy == "flush":
                run.flush()  # its owner closes it when the exception below reaches it
            else:
                run._close(status="failed", error=f"interrupted by {name}")
        except Exception as exc:  # one unwritable run must not keep the others open
            print(f"traindyn: could not flush {run.path} on {name}: {exc}", file=sys.stderr)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        raise SystemExit(128 + signum)


def flush_on_signals() -> bool:
    """Flush every open run on SIGTERM and SIGINT, mark it failed, then chain.

    Installs handlers (idempotent) that flush each open :class:`Run`, record status
    ``"failed"`` with error ``"interrupted by SIGTERM"`` (or ``SIGINT``) and then call the
    handler that was installed before. Without one, SIGINT raises
    :class:`KeyboardInterrupt` and SIGTERM raises ``SystemExit(143)`` (128 + 15, the
    shell's code for death by SIGTERM), so ``finally`` blocks still run. A signal the
    process ignores (``SIG_IGN``) stays ignored. The previous handlers are restored when
    the last open run closes. :meth:`Run.create` calls this unless ``handle_signals=False``.

    Returns
    -------
    bool
        True if the handlers are installed. Python only lets the main thread install
        signal handlers, so elsewhere this is a no-op that returns False.
    """
    if not _in_main_thread():
        return False
    with _critical(_SIGNALS.lock):
        for sig in _HANDLED:
            current = signal.getsignal(sig)
            if current is _on_signal or current == signal.SIG_IGN:
                continue
            _SIGNALS.previous[sig] = current
            signal.signal(sig, _on_signal)
    return True


def _restore_signal_handlers() -> None:
    if not _in_main_thread():
        return  # signal.signal() is main-thread only; the handler just chains meanwhile
    with _critical(_SIGNALS.lock):
        if len(_SIGNALS.open_runs) > 0:
            return
        for sig, previous in list(_SIGNALS.previous.items()):
            if signal.getsignal(sig) is _on_signal:  # never undo someone else's handler
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            del _SIGNALS.previous[sig]


class _Writer:
    """Buffers and writes one run's rows.

    Holds no reference to its :class:`Run`, so a finaliser can flush it when the Run is
    garbage collected or the interpreter exits.
    """

    def __init__(self, path: Path, manifest: RunManifest, next_seq: int) -> None:
        self.path = path
        self.manifest = manifest
        self.next_seq = next_seq
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.closed = False
        self.last_flush = time.monotonic()
        self.last_manifest_write = self.last_flush
        self.metrics: tuple[list[int], list[str], list[str], list[float], list[str | None]]
        self.metrics = ([], [], [], [], [])
        self.scalars: tuple[list[int], list[str], list[float]] = ([], [], [])

    @property
    def n_buffered(self) -> int:
        return len(self.metrics[0]) + len(self.scalars[0])

    def _check_process(self) -> None:
        # A forked child holds a copy of the buffer: writing it would duplicate rows and
        # two processes would race on run.json.
        if os.getpid() != self.pid:
            raise StoreError(
                f"run at {self.path} is written by process {self.pid}; this process "
                f"({os.getpid()}) is a fork of it and cannot write it. Create a run per "
                "process (e.g. one run directory per worker)."
            )

    def _check_open(self) -> None:
        self._check_process()
        if self.closed:
            raise StoreError(
                f"run at {self.path} is closed (status {self.manifest.status!r}); rows "
                "cannot be appended after finish(). Resume it with "
                f"Run.create({str(self.path)!r}, exist_ok=True)."
            )

    def append_metrics(
        self,
        columns: tuple[list[int], list[str], list[str], list[float], list[str | None]],
    ) -> None:
        with _critical(self.lock):
            self._check_open()
            for buffer, new in zip(self.metrics, columns, strict=True):
                buffer.extend(new)  # type: ignore[attr-defined]

    def append_scalars(self, columns: tuple[list[int], list[str], list[float]]) -> None:
        with _critical(self.lock):
            self._check_open()
            for buffer, new in zip(self.scalars, columns, strict=True):
                buffer.extend(new)  # type: ignore[attr-defined]

    def flush(self) -> int:
        self._check_process()
        with _critical(self.lock):
            metrics, scalars = self.metrics, self.scalars
            n_metrics, n_scalars = len(metrics[0]), len(scalars[0])
            if n_metrics == 0 and n_scalars == 0:
                return 0
            self.metrics, self.scalars = ([], [], [], [], []), ([], [], [])
            seq, self.next_seq = self.next_seq, self.next_seq + 1
            try:
                if n_metrics:
                    table = pa.Table.from_arrays(list(metrics), schema=METRICS_SCHEMA)
                    _write_part(self.path / METRICS_DIR, seq, table)
                    metrics = ([], [], [], [], [])
                if n_scalars:
                    table = pa.Table.from_arrays(list(scalars), schema=SCALARS_SCHEMA)
                    _write_part(self.path / SCALARS_DIR, seq, table)
                    scalars = ([], [], [])
            except BaseException:
                # Put back whatever was not written, ahead of rows appended since.
                for old, new in zip(metrics, self.metrics, strict=True):
                    old.extend(new)  # type: ignore[attr-defined]
                for old, new in zip(scalars, self.scalars, strict=True):
                    old.extend(new)  # type: ignore[attr-defined]
                self.metrics, self.scalars = metrics, scalars
                raise
            self.last_flush = time.monotonic()
            self.write_manifest(updated_at=_utcnow())
            return n_metrics + n_scalars

    def write_manifest(self, **updates: Any) -> None:
        self._check_process()
        with _critical(self.lock):
            manifest = self.manifest.model_copy(update=updates)
            _write_manifest(self.path / MANIFEST_NAME, manifest)
            self.manifest = manifest
            self.last_manifest_write = time.monotonic()

    def close(self, status: RunStatus, error: str | None) -> bool:
        self._check_process()
        with _critical(self.lock):
            if self.closed:
                return False
            self.flush()
            now = _utcnow()
            self.write_manifest(status=status, error=error, finished_at=now, updated_at=now)
            self.closed = True
            return True

    def flush_at_exit(self) -> None:
        """Finaliser: write what is buffered; the status stays ``"running"``."""
        if os.getpid() != self.pid:
            return
        try:
            self.flush()
        finally:
            _restore_signal_handlers()


# ----------------------------------------------------------------------------------- Run


class Run:
    """A run directory: append rows while training, read them back as DataFrames.

    Get one with :meth:`Run.create` (to write) or :func:`open_run` (to read). The
    constructor only stores the path.

    Parameters
    ----------
    path : str or os.PathLike
        The run directory, holding ``run.json``.

    Examples
    --------
    >>> import tempfile, math
    >>> with Run.create(tempfile.mkdtemp() + "/demo", handle_signals=False) as run:
    ...     run.append_metrics([(0, "encoder.0/attn", "effective_rank", 3.5, None),
    ...                         (0, "head", "effective_rank", math.nan, "1 sample")])
    ...     run.append_scalars(0, {"loss": 2.25})
    >>> run.status
    'finished'
    >>> run.metrics[["step", "layer", "value", "reason"]]
       step           layer  value    reason
    0     0  encoder.0/attn    3.5      <NA>
    1     0            head    NaN  1 sample
    >>> run.scalars
       step  name  value
    0     0  loss   2.25
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(os.path.abspath(path))
        self._writer: _Writer | None = None
        self._finalizer: weakref.finalize[[], Run] | None = None
        self._signal_policy: SignalPolicy = "close"
        self.interrupted_by: str | None = None

    # ------------------------------------------------------------------ creating / writing

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        config: Any = None,
        model_fingerprint: ModelFingerprint | Mapping[str, Any] | None = None,
        probe: Any = None,
        predictions: PredictionLock | None = None,
        exist_ok: bool = False,
        handle_signals: bool = True,
    ) -> Run:
        """Create the run directory and its ``run.json`` (status ``"running"``).

        Parameters
        ----------
        path : str or os.PathLike
            New run directory; its name becomes the run id. Parents are created.
        config : dataclass, pydantic model, mapping or None
            Experiment config, stored as JSON (see :func:`to_json_value`).
        model_fingerprint : ModelFingerprint, mapping or None
            From :func:`traindyn.store.fingerprint`.
        probe : JSON-like or None
            Description of the probe set (size, source, reduction rule).
        predictions : PredictionLock or None
            Pre-registered predictions to lock into ``run.json`` (see
            :func:`traindyn.analysis.predictions.lock`). A new run without one takes the
            pending lock (:data:`PENDING_PREDICTIONS`) of its own directory or, failing
            that, of its parent (a suite directory locked before the suite ran). A lock
            is never replaced: resuming with a different one raises.
        exist_ok : bool
            Append to the run already at ``path`` (resume): new parts are numbered after
            the existing ones, the status goes back to ``"running"``, and the fields
            passed here replace the stored ones (those left None are kept).
        handle_signals : bool
            Call :func:`flush_on_signals` (a no-op outside the main thread).

        Returns
        -------
        Run
            Writable; close it with :meth:`finish` or use it as a context manager.

        Raises
        ------
        StoreError
            If ``path`` already holds a run and ``exist_ok`` is False, if the run is
            being written by a live process, or if ``path`` is a file or a non-empty
            directory that is not a run.
        ConfigError
            If ``config`` or ``probe`` is not JSON-serialisable.
        """
        run = cls(path)
        root = run._path
        manifest_path = root / MANIFEST_NAME
        config_json = to_json_value(config, name="config")
        probe_json = to_json_value(probe, name="probe")
        fingerprint = _as_fingerprint(model_fingerprint)
        now = _utcnow()
        identity: dict[str, Any] = {
            "status": "running",
            "error": None,
            "finished_at": None,
            "updated_at": now,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "versions": _versions(),
        }
        if manifest_path.exists():
            if not exist_ok:
                raise StoreError(
                    f"{root} already holds a run (run.json exists). Choose a new run name, "
                    "or pass exist_ok=True to append to it (resume)."
                )
            old = read_manifest(manifest_path)
            if (
                predictions is not None
                and old.predictions is not None
                and old.predictions.sha256 != predictions.sha256
            ):
                raise predictions_conflict(
                    root,
                    old.predictions,
                    "Resume without predictions=, or record the new predictions in a new run.",
                )
            if old.status == "running" and not manifest_is_stale(old):
                raise StoreError(
                    f"{root} is still being written by pid {old.pid} on {old.hostname} "
                    f"(status 'running', last heartbeat {old.updated_at.isoformat()}). "
                    "Wait for it to finish, or finish the Run object that holds it."
                )
            given = {"config": config, "model_fingerprint": fingerprint, "probe": probe}
            json_values = {"config": config_json, "probe": probe_json}
            for field, value in given.items():
                if value is not None:
                    identity[field] = json_values.get(field, value)
            if predictions is not None and old.predictions is None:
                identity["predictions"] = predictions
            manifest = old.model_copy(update=identity)
            _write_manifest(manifest_path, manifest)
        else:
            pending = root / PENDING_PREDICTIONS
            if predictions is None:
                predictions = pending_predictions(root) or pending_predictions(root.parent)
            cls._prepare_new_dir(root)
            manifest = RunManifest(
                schema_version=SCHEMA_VERSION,
                id=root.name,
                config=config_json,
                model_fingerprint=fingerprint,
                probe=probe_json,
                created_at=now,
                predictions=predictions,
                **identity,
            )
            try:
                _write_manifest(manifest_path, manifest, exclusive=True)
            except FileExistsError:
                raise StoreError(
                    f"{root} already holds a run (another process created it just now). "
                    "Choose a new run name."
                ) from None
            pending.unlink(missing_ok=True)  # the manifest holds the lock now
        for sub in (METRICS_DIR, SCALARS_DIR):
            (root / sub).mkdir(exist_ok=True)
        writer = _Writer(root, manifest, _next_seq(root))
        run._writer = writer
        run._finalizer = weakref.finalize(run, writer.flush_at_exit)
        with _critical(_SIGNALS.lock):
            _SIGNALS.open_runs.add(run)
        if handle_signals:
            flush_on_signals()
        return run

    @staticmethod
    def _prepare_new_dir(root: Path) -> None:
        if root.exists() and not root.is_dir():
            raise StoreError(
                f"{root} exists and is a file; a run is a directory. Choose another path."
            )
        if root.is_dir() and any(p.name != PENDING_PREDICTIONS for p in root.iterdir()):
            children = find_run_dirs(root, limit=3)
            hint = (
                f" It holds runs ({', '.join(str(c.relative_to(root)) for c in children)});"
                " create the new run inside it instead."
                if children
                else ""
            )
            raise StoreError(
                f"{root} exists, is not empty and has no run.json, so it is not a run "
                f"directory.{hint} Choose a new run name (a missing or empty directory)."
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create run directory {root}: {exc}") from exc

    def _require_writer(self) -> _Writer:
        if self._writer is None:
            raise StoreError(
                f"run at {self._path} was opened read-only with open_run(); to append, "
                f"resume it with Run.create({str(self._path)!r}, exist_ok=True)."
            )
        return self._writer

    def append_metrics(self, rows: Iterable[MetricRowLike] | pd.DataFrame) -> None:
        """Buffer metric rows; they reach disk at the next flush.

        Parameters
        ----------
        rows : iterable of MetricRow or tuple, or DataFrame
            ``(step, layer, metric, value, reason)`` or ``(step, layer, metric, value)``.
            ``value`` may be NaN; ``reason`` then says why (None or ``pd.NA``
            otherwise). A DataFrame with columns ``step, layer, metric, value`` (and
            optionally ``reason``), e.g. from
            :func:`~traindyn.capture.measure_checkpoints`, is appended row by row.

        Raises
        ------
        ConfigError
            If a row has the wrong length or a field of the wrong type (nothing is
            buffered then).
        StoreError
            If the run is read-only or closed.

        Notes
        -----
        Thread-safe: rows appended from several threads all reach disk.
        """
        writer = self._require_writer()
        if isinstance(rows, pd.DataFrame):
            rows = _frame_rows(rows)
        columns: tuple[list[int], list[str], list[str], list[float], list[str | None]]
        columns = ([], [], [], [], [])
        for i, row in enumerate(rows):
            where = f"metrics row {i}"
            if not isinstance(row, tuple) or len(row) not in (4, 5):
                raise ConfigError(
                    f"{where} must be a tuple (step, layer, metric, value, reason) or a "
                    f"MetricRow; got {row!r}."
                )
            reason = row[4] if len(row) == 5 else None
            if reason is pd.NA:
                reason = None
            if reason is not None and not isinstance(reason, str):
                raise ConfigError(f"{where} reason must be a string or None; got {reason!r}.")
            columns[0].append(_as_step(row[0], where))
            columns[1].append(_as_name(row[1], where, "layer"))
            columns[2].append(_as_name(row[2], where, "metric"))
            columns[3].append(_as_value(row[3], where))
            columns[4].append(reason)
        writer.append_metrics(columns)

    def append_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Buffer one scalar per name (loss, accuracy, learning rate) at ``step``.

        Parameters
        ----------
        step : int
            Training step.
        values : mapping of str to float
            Scalar name to value; NaN is allowed.

        Raises
        ------
        ConfigError
            If a name is not a non-empty string or a value is not a number.
        StoreError
            If the run is read-only or closed.
        """
        writer = self._require_writer()
        where = f"scalars at step {step!r}:"
        step_ = _as_step(step, where)
        names = [_as_name(name, where, "name") for name in values]
        floats = [_as_value(values[name], f"{where} {name!r}") for name in names]
        writer.append_scalars(([step_] * len(names), names, floats))

    def flush(self) -> int:
        """Write the buffered rows as new parquet parts and refresh ``updated_at``.

        Each table with buffered rows gets one new ``part-<seq>-<uuid>.parquet``, written
        under a temporary name, fsynced and renamed. Nothing is written when nothing is
        buffered.

        Returns
        -------
        int
            Number of rows written (metrics + scalars).
        """
        return self._require_writer().flush()

    def maybe_flush(self, interval_s: float = 5.0) -> int:
        """Flush if at least ``interval_s`` seconds have passed since the last flush.

        Cheap when not due (one clock read). When due with nothing buffered, refreshes the
        heartbeat (``updated_at``) at most every :data:`HEARTBEAT_S` seconds. Also flushes
        early once 100 000 rows are buffered.

        Returns
        -------
        int
            Number of rows written; 0 when not due.
        """
        writer = self._require_writer()
        now = time.monotonic()
        if now - writer.last_flush < interval_s and writer.n_buffered < _MAX_BUFFERED_ROWS:
            return 0
        check_positive(interval_s, name="interval_s", allow_zero=True)
        n = writer.flush()
        if n == 0:
            writer.last_flush = now
            if now - writer.last_manifest_write >= HEARTBEAT_S:
                writer.write_manifest(updated_at=_utcnow())
        return n

    def finish(
        self, status: Literal["finished", "failed"] = "finished", error: str | None = None
    ) -> None:
        """Flush, record ``status`` (and ``error``) and ``finished_at``, and close the run.

        Calling it again on a closed run does nothing, so an explicit ``finish`` inside a
        ``with`` block is fine, and a run already failed by a signal stays failed.

        Raises
        ------
        ConfigError
            If ``status`` is not "finished" or "failed", or ``error`` is given with
            "finished".
        StoreError
            If the run is read-only.
        """
        check_in(status, ("finished", "failed"), name="status")
        if error is not None and status != "failed":
            raise ConfigError(f"error is only recorded with status='failed'; got {status=!r}.")
        self._require_writer()
        self._close(status=status, error=error)

    def set_signal_policy(self, policy: SignalPolicy) -> None:
        """Choose what SIGTERM/SIGINT do to this run before the previous handler runs.

        ``"close"`` (default) flushes and marks the run failed ("interrupted by SIGTERM").
        ``"flush"`` only flushes and sets :attr:`interrupted_by`, leaving the run open for
        its owner (the :class:`~traindyn.capture.Tracker`) to drain and close when the
        ``KeyboardInterrupt``/``SystemExit`` reaches it, or to carry on if a user handler
        chose to continue.
        """
        check_in(policy, ("close", "flush"), name="policy")
        self._signal_policy = policy

    def _close(self, *, status: RunStatus, error: str | None) -> None:
        writer = self._require_writer()
        writer.close(status, error)
        if self._finalizer is not None:
            self._finalizer.detach()
        with _critical(_SIGNALS.lock):
            _SIGNALS.open_runs.discard(self)
        _restore_signal_handlers()

    def update_manifest(self, **fields: Any) -> None:
        """Replace ``config``, ``model_fingerprint`` and/or ``probe`` in ``run.json``.

        Raises
        ------
        ConfigError
            If another field is named (the rest are managed by the store) or a value is
            not JSON-serialisable.
        """
        writer = self._require_writer()
        allowed = ("config", "model_fingerprint", "probe")
        updates: dict[str, Any] = {}
        for name, value in fields.items():
            check_in(name, allowed, name="update_manifest field")
            if name == "model_fingerprint":
                updates[name] = _as_fingerprint(value)
            else:
                updates[name] = to_json_value(value, name=name)
        writer.write_manifest(**updates, updated_at=_utcnow())

    def __enter__(self) -> Run:
        self._require_writer()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is None or self._writer.closed:
            return
        if exc is None:
            self.finish()
        else:
            self.finish("failed", error=f"{type(exc).__name__}: {exc}")

    # --------------------------------------------------------------------------- reading

    @property
    def path(self) -> Path:
        """Absolute path of the run directory."""
        return self._path

    @property
    def manifest(self) -> RunManifest:
        """The validated ``run.json`` (re-read from disk unless this process writes it)."""
        if self._writer is not None:
            return self._writer.manifest
        return read_manifest(self._path / MANIFEST_NAME)

    @property
    def id(self) -> str:
        """Run id recorded in ``run.json`` (the directory name at creation)."""
        return self.manifest.id

    @property
    def status(self) -> RunStatus:
        """``"running"``, ``"finished"`` or ``"failed"``."""
        return self.manifest.status

    @property
    def is_finished(self) -> bool:
        """True only if the run finished normally (status ``"finished"``).

        A failed run and a killed run (status still ``"running"``) are not finished.
        """
        return self.status == "finished"

    @property
    def is_stale(self) -> bool:
        """True if the run says ``"running"`` but nothing writes it any more.

        On the host that wrote it: its pid is gone (killed, e.g. by SIGKILL or the OOM
        killer, without a chance to record it). On another host, where the pid cannot be
        checked: its heartbeat (``updated_at``, refreshed at each flush and at least every
        :data:`HEARTBEAT_S` s by :meth:`maybe_flush`) is older than :data:`STALE_AFTER_S`.
        A pid reused by an unrelated process makes a dead run look alive until then.
        """
        return manifest_is_stale(self.manifest)

    @property
    def metrics(self) -> pd.DataFrame:
        """Every flushed metrics row, sorted by step (stable).

        Columns and dtypes: ``step`` int64, ``layer`` string, ``metric`` string,
        ``value`` float64, ``reason`` string (``<NA>`` when null). Rows still buffered
        are not included. Unreadable parts are skipped with a :class:`StoreWarning`.
        """
        return _read_frame(self._path / METRICS_DIR, METRICS_SCHEMA)

    @property
    def scalars(self) -> pd.DataFrame:
        """Every flushed scalar row, sorted by step: ``step`` int64, ``name`` string,
        ``value`` float64."""
        return _read_frame(self._path / SCALARS_DIR, SCALARS_SCHEMA)

    def write_analysis(self, name: str, data: Mapping[str, Any] | pd.DataFrame) -> Path:
        """Write ``analysis/<name>.json`` (a mapping) or ``.parquet`` (a table), atomically.

        Works on finished and read-only runs too: analysis is written after training.

        Raises
        ------
        ConfigError
            If ``name`` is not a plain file stem or ``data`` is not JSON-serialisable.
        """
        return write_analysis_file(self._path / ANALYSIS_DIR, name, data)

    def read_analysis(self, name: str) -> dict[str, Any] | pd.DataFrame:
        """Read what :meth:`write_analysis` wrote under ``name``.

        Raises
        ------
        StoreError
            If there is no such analysis; the message lists the ones that exist.
        """
        directory = self._path / ANALYSIS_DIR
        for suffix in (".json", ".parquet"):
            path = directory / f"{name}{suffix}"
            if path.is_file():
                if suffix == ".json":
                    loaded: dict[str, Any] = json.loads(path.read_text())
                    return loaded
                return to_frame(pq.read_table(path))
        found = sorted(p.stem for p in directory.glob("*")) if directory.is_dir() else []
        raise StoreError(f"{self._path} has no analysis {name!r}; it has {found or 'none'}.")

    def delete_analysis(self, name: str) -> None:
        """Remove what :meth:`write_analysis` wrote under ``name``; none is no error."""
        for suffix in (".json", ".parquet"):
            (self._path / ANALYSIS_DIR / f"{name}{suffix}").unlink(missing_ok=True)

    def checkpoints(self) -> list[int]:
        """Steps with a ``checkpoints/step-<N>.safetensors`` file, ascending."""
        directory = self._path / CHECKPOINTS_DIR
        if not directory.is_dir():
            return []
        return sorted(
            int(m.group(1)) for p in directory.iterdir() if (m := _CHECKPOINT_RE.match(p.name))
        )

    def delete_checkpoint(self, step: int) -> None:
        """Remove the checkpoint of ``step`` (both files); a missing one is no error."""
        for suffix in (".safetensors", ".json"):
            (self._path / CHECKPOINTS_DIR / f"step-{step}{suffix}").unlink(missing_ok=True)

    def checkpoint_path(self, step: int) -> Path:
        """Path of the checkpoint saved at ``step``.

        Raises
        ------
        StoreError
            If there is none; the message lists the steps that exist.
        """
        path = self._path / CHECKPOINTS_DIR / f"step-{step}.safetensors"
        if not path.is_file():
            steps = self.checkpoints()
            shown = ", ".join(map(str, steps[:20])) + (" ..." if len(steps) > 20 else "")
            raise StoreError(
                f"no checkpoint for step {step} in {path.parent}; available steps: "
                f"{shown or 'none'}."
            )
        return path

    def export(
        self, dest: str | os.PathLike[str], *, format: Literal["csv", "json"]
    ) -> ExportedFiles:
        """Write the metrics and scalars tables to ``dest/metrics.<format>`` and
        ``dest/scalars.<format>``.

        CSV has a header row; NaN values and null reasons are empty fields. JSON is an
        array of row objects, with NaN values and null reasons as ``null`` (JSON has no
        NaN). Floats are written with enough digits to round-trip exactly.

        Raises
        ------
        ConfigError
            If ``format`` is not "csv" or "json".
        """
        check_in(format, ("csv", "json"), name="format")
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
        paths = ExportedFiles(out / f"metrics.{format}", out / f"scalars.{format}")
        for frame, path in ((self.metrics, paths.metrics), (self.scalars, paths.scalars)):
            if format == "csv":
                text = frame.to_csv(index=False)
            else:
                text = json.dumps(_records(frame), allow_nan=False)
            _write_bytes(path, text.encode())
        return paths

    def __repr__(self) -> str:
        try:
            status: str = self.status
        except (StoreError, RunNotFound):
            status = "unreadable"
        return f"Run({str(self._path)!r}, status={status!r})"


def _records(frame: pd.DataFrame) -> list[dict[str, JsonValue]]:
    def clean(value: Any) -> JsonValue:
        if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        if hasattr(value, "item"):
            return value.item()  # type: ignore[no-any-return]
        return value  # type: ignore[no-any-return]

    columns = list(frame.columns)
    return [
        {str(c): clean(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open an existing run for reading.

    Parameters
    ----------
    path : str or os.PathLike
        The run directory (or its ``run.json``).

    Returns
    -------
    Run
        Read-only: ``metrics``, ``scalars``, ``manifest``, ``status``, ``is_finished``,
        ``is_stale``, ``checkpoints()``, ``export()``. A run killed with SIGKILL reads up
        to its last flush and reports ``is_finished`` False.

    Raises
    ------
    RunNotFound
        If there is no ``run.json`` at ``path``; hints at :func:`open_runs` if ``path``
        holds run directories.
    StoreError
        If ``run.json`` is corrupt or invalid (the message names the file and field).
    """
    root = Path(path)
    if root.name == MANIFEST_NAME and root.is_file():
        root = root.parent
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        if not root.exists():
            raise RunNotFound(
                f"no run at {root}: the directory does not exist. Check the path; a run "
                "is a directory holding run.json."
            )
        children = find_run_dirs(root, limit=3) if root.is_dir() else []
        if children:
            names = ", ".join(str(c.relative_to(root)) for c in children)
            hint = f" It holds run directories ({names}); did you mean open_runs({str(root)!r})?"
        else:
            hint = " Create a run with Run.create(path)."
        raise RunNotFound(f"no run at {root}: {manifest_path} does not exist.{hint}")
    read_manifest(manifest_path)
    return Run(root)
