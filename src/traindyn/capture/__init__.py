"""Capture: every forward pass that produces measurements (hooks, schedules, the Tracker)."""

from traindyn.capture.controls import CONTROLS, Control, null_controls
from traindyn.capture.hooks import (
    Capture,
    capture_activations,
    default_layers,
    infer_layout,
    resolve_layers,
    select_output,
)
from traindyn.capture.posthoc import (
    CheckpointComparison,
    checkpoint_representations,
    compare_checkpoints,
    measure_checkpoints,
    probe_noise,
    write_checkpoint_comparison,
)
from traindyn.capture.schedule import AtSteps, Every, LogSpaced, Schedule, as_schedule
from traindyn.capture.tracker import DEFAULT_MILESTONES, Mirror, Tracker, TrackerWarning

__all__ = [
    "CONTROLS",
    "DEFAULT_MILESTONES",
    "AtSteps",
    "Capture",
    "CheckpointComparison",
    "Control",
    "Every",
    "LogSpaced",
    "Mirror",
    "Schedule",
    "Tracker",
    "TrackerWarning",
    "as_schedule",
    "capture_activations",
    "checkpoint_representations",
    "compare_checkpoints",
    "default_layers",
    "infer_layout",
    "measure_checkpoints",
    "null_controls",
    "probe_noise",
    "resolve_layers",
    "select_output",
    "write_checkpoint_comparison",
]
