"""Exceptions raised by traindyn.

Every exception subclasses :class:`TraindynError` and a built-in, so callers can catch
either the traindyn type or the familiar built-in::

    TraindynError (Exception)
    ├── ConfigError (ValueError)            a config, suite file or option is invalid
    ├── ProbeError (ValueError)             probe data cannot be used (shape, NaN, 1 sample)
    ├── MetricError (ValueError)            a metric cannot be computed on this input
    ├── RunNotFound (FileNotFoundError)     no run directory / run.json at the given path
    ├── StoreError (OSError)                a run directory is unreadable or corrupt
    └── CheckpointMismatch (ValueError)     a checkpoint does not fit; lists every difference

Warnings are deliberate and raised once per cause::

    TraindynWarning (UserWarning)
    ├── TrackerWarning                      a measurement failed (value recorded as NaN + reason)
    ├── DuplicatePointsWarning              duplicate rows dropped before a k-NN estimate
    ├── StoreWarning                        something in a run directory was skipped
    └── PartialLoadWarning                  load_checkpoint(strict=False) skipped keys
"""

from __future__ import annotations

__all__ = [
    "CheckpointMismatch",
    "ConfigError",
    "DuplicatePointsWarning",
    "MetricError",
    "PartialLoadWarning",
    "ProbeError",
    "RunNotFound",
    "StoreError",
    "StoreWarning",
    "TrackerWarning",
    "TraindynError",
    "TraindynWarning",
]


class TraindynError(Exception):
    """Base class of every error raised by traindyn."""


class ConfigError(TraindynError, ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


class ProbeError(TraindynError, ValueError):
    """Probe data cannot be used for measurement."""


class MetricError(TraindynError, ValueError):
    """A metric cannot be computed on the given input (too few samples, non-finite values)."""


class RunNotFound(TraindynError, FileNotFoundError):
    """No run exists at the given path."""


class StoreError(TraindynError, OSError):
    """A run directory exists but cannot be read or written as a run."""


class CheckpointMismatch(TraindynError, ValueError):
    """A checkpoint does not fit a model.

    Parameters
    ----------
    message : str
        Human-readable summary.
    missing : list of str
        Keys the model expects that the checkpoint lacks.
    unexpected : list of str
        Keys in the checkpoint that the model does not have.
    shape_mismatch : list of str
        ``"key: checkpoint (a, b) float32 vs model (c, d) float32"`` lines.
    config_diff : list of str
        ``"field: checkpoint X vs model Y"`` lines.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        shape_mismatch: list[str] | None = None,
        config_diff: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.shape_mismatch = list(shape_mismatch or [])
        self.config_diff = list(config_diff or [])


class TraindynWarning(UserWarning):
    """Base class of every warning traindyn emits."""


class TrackerWarning(TraindynWarning):
    """A measurement failed or the tracker was used in a way that records nothing."""


class DuplicatePointsWarning(TraindynWarning):
    """Exact duplicate rows were dropped before a nearest-neighbour estimate."""


class StoreWarning(TraindynWarning):
    """Something in a run directory was skipped (a corrupt part, an unreadable run)."""


class PartialLoadWarning(TraindynWarning):
    """``load_checkpoint(strict=False)`` skipped keys; the message lists every one."""
