"""Send recorded values to a :class:`~traindyn.capture.Mirror`: live keys and old runs.

A mirror receives flat mappings of ``key -> value``. The key of a layer metric is
``"<layer>/<metric>"`` (``"encoder.0/effective_rank"``, ``"(model)/stable_rank"``); any
other key is a scalar (``"loss"``, ``"probe_accuracy"``, or a name of your own such as
``"train/loss"``). :func:`split_key` tells the two apart and :func:`mirror_tag` turns a key
into the tag that :class:`~traindyn.integrations.TensorBoardMirror` and
:class:`~traindyn.integrations.WandbMirror` write, so both tools show the same names.

:func:`replay` sends a stored run to any mirror after the fact::

    from traindyn.integrations.replay import replay
    from traindyn.integrations.tensorboard import TensorBoardMirror

    replay("runs/old-run", TensorBoardMirror("tb/old-run"))
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from traindyn.exceptions import ConfigError
from traindyn.metrics import METRICS
from traindyn.store import Run, open_run

if TYPE_CHECKING:
    from traindyn.capture import Mirror

__all__ = ["check_prefix", "mirror_tag", "mirror_values", "replay", "split_key"]


def split_key(key: str) -> tuple[str, str] | None:
    """Split a mirror key into ``(layer, metric)``; None when the key is a scalar.

    A key is a layer metric when the part after its last ``/`` is a registered metric name
    (:data:`traindyn.metrics.METRICS`), so layer names may contain ``/`` and scalars
    named like ``"train/loss"`` stay scalars.

    Examples
    --------
    >>> split_key("encoder.0/attn/effective_rank")
    ('encoder.0/attn', 'effective_rank')
    >>> split_key("train/loss") is None, split_key("probe_accuracy") is None
    (True, True)
    """
    layer, sep, metric = key.rpartition("/")
    if sep and layer and metric in METRICS:
        return layer, metric
    return None


def mirror_tag(key: str, *, prefix: str = "traindyn") -> str:
    """The tag a mirror writes for ``key``: ``"<prefix>/<metric>/<layer>"`` or
    ``"<prefix>/scalars/<name>"``.

    The metric comes before the layer so that tools which sort or group tags by their
    leading parts (TensorBoard, W&B) show one metric's layers side by side. An empty
    ``prefix`` drops the first part (TensorBoard then makes one section per metric).

    Examples
    --------
    >>> mirror_tag("fc1/participation_ratio")
    'traindyn/participation_ratio/fc1'
    >>> mirror_tag("loss"), mirror_tag("loss", prefix="")
    ('traindyn/scalars/loss', 'scalars/loss')
    """
    parts = split_key(key)
    tail = f"scalars/{key}" if parts is None else f"{parts[1]}/{parts[0]}"
    return f"{prefix}/{tail}" if prefix else tail


def check_prefix(prefix: str, *, allow_empty: bool = True) -> str:
    """Validate a mirror's tag prefix; return it unchanged.

    Raises
    ------
    ConfigError
        If ``prefix`` is not a string, starts or ends with ``/``, or is empty when
        ``allow_empty`` is False.
    """
    if (
        not isinstance(prefix, str)
        or prefix != prefix.strip("/")
        or (not prefix and not allow_empty)
    ):
        expected = "a string" if allow_empty else "a non-empty string"
        raise ConfigError(
            f"prefix must be {expected} that neither starts nor ends with '/'; got "
            f"{prefix!r}. Use e.g. prefix='traindyn' or prefix='traindyn/seed0'."
        )
    return prefix


def mirror_values(run: str | os.PathLike[str] | Run) -> Iterator[tuple[int, dict[str, float]]]:
    """Yield ``(step, values)`` for every step of a stored run, in increasing step order.

    ``values`` holds every layer metric of the step under ``"<layer>/<metric>"`` and every
    scalar under its name, NaN included (as the tracker sends them live). When a step has
    several values for one name (``tracker.step`` called twice), the last recorded wins.

    Parameters
    ----------
    run : str, PathLike or Run
        A run directory (or its ``run.json``), or an opened :class:`traindyn.store.Run`.
        Only flushed rows are read.
    """
    opened = run if isinstance(run, Run) else open_run(run)
    by_step: defaultdict[int, dict[str, float]] = defaultdict(dict)
    metrics = opened.metrics
    for step, layer, metric, value in zip(
        metrics["step"], metrics["layer"], metrics["metric"], metrics["value"], strict=True
    ):
        by_step[int(step)][f"{layer}/{metric}"] = float(value)
    scalars = opened.scalars
    for step, name, value in zip(scalars["step"], scalars["name"], scalars["value"], strict=True):
        by_step[int(step)][str(name)] = float(value)
    for step in sorted(by_step):
        yield step, by_step[step]


def replay(run: str | os.PathLike[str] | Run, mirror: Mirror) -> int:
    """Send a stored run to ``mirror`` in step order, then close the mirror.

    Mirror old runs into TensorBoard or W&B, or a run recorded without mirrors. Each
    step is one ``mirror.log(step, values)`` call holding its layer metrics and scalars
    (see :func:`mirror_values`), so steps strictly increase. ``mirror.close()`` is called
    even when a ``log`` call raises.

    Parameters
    ----------
    run : str, PathLike or Run
        The run to send (a directory or an opened run).
    mirror : Mirror
        Anything with ``log(step, values)`` and ``close()``, e.g.
        :class:`~traindyn.integrations.TensorBoardMirror`.

    Returns
    -------
    int
        The number of steps sent.

    Raises
    ------
    RunNotFound
        If ``run`` is not a run directory.
    """
    n = 0
    try:
        for step, values in mirror_values(run):
            mirror.log(step, values)
            n += 1
    finally:
        mirror.close()
    return n
