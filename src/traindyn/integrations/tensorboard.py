"""Mirror what a :class:`~traindyn.Tracker` records into TensorBoard event files.

::

    from traindyn.integrations import TensorBoardMirror

    tracker = td.Tracker(model, probe=probe, run="runs/a", mirrors=[TensorBoardMirror("tb/a")])
    # then: tensorboard --logdir tb

Needs the ``tensorboard`` package (``pip install traindyn[tensorboard]``); it is imported
only when a :class:`TensorBoardMirror` is created. The run directory stays the record:
TensorBoard is a view of it, and :func:`traindyn.integrations.replay.replay` rebuilds
the view of any stored run.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from traindyn.exceptions import ConfigError
from traindyn.integrations.replay import check_prefix, mirror_tag

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["TensorBoardMirror"]

_FLUSH_SECS = 5
"""Seconds between flushes of a writer the mirror creates: the Tracker's flush interval,
so TensorBoard is as fresh as the run (SummaryWriter's default of 120 s lags training)."""


def _summary_writer_class() -> type[SummaryWriter]:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises this when the tensorboard package is missing
        raise ImportError(
            "TensorBoardMirror needs the tensorboard package; install it with "
            f"`pip install traindyn[tensorboard]` (import failed: {exc})."
        ) from exc
    return SummaryWriter


class TensorBoardMirror:
    """Write every metric and scalar a Tracker records as TensorBoard scalars.

    Pass it to ``Tracker(..., mirrors=[TensorBoardMirror("tb")])``; the tracker calls
    :meth:`log` on its worker thread and :meth:`close` when it closes.

    Parameters
    ----------
    log_dir : str or PathLike, optional
        Directory of the event files. Default: ``SummaryWriter``'s own,
        ``runs/<date>_<host>``. Not with ``writer``.
    writer : SummaryWriter, optional
        Your own ``torch.utils.tensorboard.SummaryWriter``, to put traindyn's tags beside
        the ones you write. :meth:`close` then flushes it but leaves it open.
    prefix : str
        First part of every tag (default ``"traindyn"``, so the tags never collide with
        yours); ``""`` for none.

    Notes
    -----
    Tags (see :func:`~traindyn.integrations.replay.mirror_tag`):

    - a layer metric is ``"<prefix>/<metric>/<layer>"``, e.g.
      ``"traindyn/effective_rank/encoder.0"``. TensorBoard sections tags by their first
      part and sorts them, so each metric's layers sit together in the ``traindyn``
      section; type a metric name in the tag filter to see only it. With ``prefix=""``
      every metric gets a section of its own.
    - a scalar is ``"<prefix>/scalars/<name>"``: the training scalars given to
      ``tracker.step`` (``loss``, ``lr``, ``grad_norm``, ``batch_*``, your own) and the
      probe scalars (``probe_accuracy``, ``probe_loss``, ...).

    The x-axis is the traindyn step (optimiser updates done). Values are stored as
    float32 (TensorBoard's scalar type). NaN values (a metric that could not be computed;
    the run records why) are skipped, so a chart shows a gap instead of breaking its
    y-axis; infinities are written. The tracker sends a sample's values after the
    scalars of later steps; TensorBoard keeps out-of-order steps across tags (event files
    from ``SummaryWriter`` carry no restart marker that would purge them).

    :meth:`log` and :meth:`close` hold a lock, so the mirror may be shared between
    threads. The writer is created on the first :meth:`log` (or by :meth:`start`), so
    a mirror that never receives a value leaves no empty event file.

    Raises
    ------
    ImportError
        If the tensorboard package is missing (the message says what to install).
    ConfigError
        If both ``log_dir`` and ``writer`` are given, or ``prefix`` starts or ends with
        ``/``.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        *,
        writer: SummaryWriter | None = None,
        prefix: str = "traindyn",
    ) -> None:
        if log_dir is not None and writer is not None:
            raise ConfigError(
                "pass log_dir or writer to TensorBoardMirror, not both; the writer already "
                f"has a log directory ({writer.log_dir!r})."
            )
        self.log_dir = log_dir
        self.writer = writer
        self.prefix = check_prefix(prefix)
        self._writer_class = _summary_writer_class() if writer is None else None
        self.writer_: SummaryWriter | None = writer
        self._tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> SummaryWriter:
        """Create the writer now (``log`` does it on first use); return it."""
        with self._lock:
            return self._start()

    def _start(self) -> SummaryWriter:
        if self._closed:
            raise ConfigError("this TensorBoardMirror is closed; create a new one to write more.")
        if self.writer_ is None:
            assert self._writer_class is not None  # set whenever no writer was given
            log_dir = None if self.log_dir is None else os.fspath(self.log_dir)
            self.writer_ = self._writer_class(log_dir=log_dir, flush_secs=_FLUSH_SECS)
        return self.writer_

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Write ``values`` (``"<layer>/<metric>"`` or scalar names) at ``step``; skip NaN."""
        with self._lock:
            writer = self._start()
            for key, value in values.items():
                number = float(value)
                if math.isnan(number):
                    continue
                tag = self._tags.get(key)
                if tag is None:
                    tag = self._tags[key] = mirror_tag(key, prefix=self.prefix)
                writer.add_scalar(tag, number, global_step=step)

    def close(self) -> None:
        """Close the writer this mirror created, or flush the one you passed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.writer_ is None:
                return
            if self.writer is None:
                self.writer_.close()
            else:
                self.writer_.flush()

    @property
    def tags_(self) -> list[str]:
        """Every tag written so far, sorted."""
        with self._lock:
            return sorted(self._tags.values())

    def __repr__(self) -> str:
        where = self.writer_.log_dir if self.writer_ is not None else self.log_dir
        return f"TensorBoardMirror(log_dir={where!r}, prefix={self.prefix!r})"
