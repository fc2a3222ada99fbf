"""The store: the only code that knows file formats.

A run is a directory (``run.json``, ``metrics/`` and ``scalars/`` parquet parts,
``checkpoints/`` safetensors); see ``DESIGN.md``, "The run on disk". Write with
:meth:`Run.create`, read with :func:`open_run` and :func:`open_runs`, save and load
weights with :func:`save_checkpoint` and :func:`load_checkpoint`.
"""

from __future__ import annotations

from traindyn.store.checkpoints import (
    CheckpointDiff,
    CheckpointInfo,
    CheckpointMeta,
    PartialLoadWarning,
    diff_checkpoint,
    fingerprint,
    inspect_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from traindyn.store.run import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    ExportedFiles,
    MetricRow,
    Run,
    StoreWarning,
    flush_on_signals,
    open_run,
)
from traindyn.store.runs import Runs, open_runs
from traindyn.store.schema import (
    METRICS_SCHEMA,
    SCALARS_SCHEMA,
    SCHEMA_VERSION,
    ModelFingerprint,
    RunManifest,
    RunStatus,
    TensorSpec,
    Versions,
    to_json_value,
)

__all__ = [
    "HEARTBEAT_S",
    "METRICS_SCHEMA",
    "SCALARS_SCHEMA",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "CheckpointDiff",
    "CheckpointInfo",
    "CheckpointMeta",
    "ExportedFiles",
    "MetricRow",
    "ModelFingerprint",
    "PartialLoadWarning",
    "Run",
    "RunManifest",
    "RunStatus",
    "Runs",
    "StoreWarning",
    "TensorSpec",
    "Versions",
    "diff_checkpoint",
    "fingerprint",
    "flush_on_signals",
    "inspect_checkpoint",
    "load_checkpoint",
    "open_run",
    "open_runs",
    "save_checkpoint",
    "to_json_value",
]
