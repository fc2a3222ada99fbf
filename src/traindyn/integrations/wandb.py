"""Mirror what a :class:`~traindyn.Tracker` records into a Weights & Biases run.

::

    from traindyn.integrations import WandbMirror

    tracker = td.Tracker(model, probe=probe, run="runs/a", mirrors=[WandbMirror(project="p")])
    # offline by default; later: wandb sync wandb/offline-run-*

Needs the ``wandb`` package (``pip install traindyn[wandb]``); it is imported only when a
:class:`WandbMirror` is created. Offline mode needs no network and no account.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from traindyn._validation import check_in
from traindyn.exceptions import ConfigError
from traindyn.integrations.replay import check_prefix, mirror_tag

if TYPE_CHECKING:
    from wandb.sdk.wandb_run import Run as WandbRun

__all__ = ["WandbMirror", "WandbMode", "wandb_key"]

WandbMode = Literal["offline", "online", "disabled"]
_MODES: tuple[WandbMode, ...] = ("offline", "online", "disabled")


def _import_wandb() -> ModuleType:
    try:
        import wandb
    except ImportError as exc:
        raise ImportError(
            "WandbMirror needs the wandb package; install it with `pip install "
            f"traindyn[wandb]` (import failed: {exc})."
        ) from exc
    return wandb


def wandb_key(key: str, *, prefix: str = "traindyn") -> str:
    """The W&B key of a mirror key: its :func:`~traindyn.integrations.replay.mirror_tag`
    with every ``.`` replaced by ``/`` (W&B reads dots as nesting).

    Examples
    --------
    >>> wandb_key("layer1.0.conv1/effective_rank")
    'traindyn/effective_rank/layer1/0/conv1'
    >>> wandb_key("probe_accuracy")
    'traindyn/scalars/probe_accuracy'
    """
    return mirror_tag(key, prefix=prefix).replace(".", "/")


class WandbMirror:
    """Log every metric and scalar a Tracker records to a W&B run.

    Pass it to ``Tracker(..., mirrors=[WandbMirror(project="my-project")])``; the tracker
    calls :meth:`log` on its worker thread and :meth:`close` when it closes.

    Parameters
    ----------
    run : wandb Run, optional
        The run to log into (e.g. the one ``wandb.init`` gave you). Default: when no
        option for a new run is given, the active ``wandb.run`` if there is one (such as
        the run of the Hugging Face or Lightning W&B integration); otherwise
        ``wandb.init(project=project, mode=mode, dir=dir, **init_kwargs)``, which by W&B's
        ``reinit`` setting may also hand back the active run. Only a run the mirror
        started is finished by :meth:`close` (see :attr:`owns_run_`).
    project : str, optional
        W&B project of a new run.
    mode : {"offline", "online", "disabled"}
        Mode of a new run. Default ``"offline"``: everything stays in
        ``<dir>/wandb/offline-run-*`` until you ``wandb sync`` it.
    dir : str or PathLike, optional
        Directory holding W&B's ``wandb/`` folder (default: the working directory).
    prefix : str
        First part of every key (default ``"traindyn"``); not empty, without ``.``.
    **init_kwargs
        Anything else for ``wandb.init`` (``name``, ``config``, ``tags``, ``settings``...).

    Notes
    -----
    Keys are the tags of :class:`~traindyn.integrations.TensorBoardMirror`
    (``"<prefix>/<metric>/<layer>"`` for layer metrics, ``"<prefix>/scalars/<name>"`` for
    scalars), except that every ``.`` becomes ``/`` (see :func:`wandb_key`): W&B reads a
    dot as nesting in metric definitions and the summary, and layer names such as
    ``layer1.0.conv1`` are full of them. W&B's ``traindyn`` section then lists each
    metric's layers together.

    Steps: W&B's own step (``_step``) must increase with every ``log`` call, but the
    tracker sends a sample's values after the scalars of later steps. So the mirror
    never passes ``step=``; it logs the traindyn step as ``"<prefix>/step"`` in every row
    and declares it the x-axis of each key with ``define_metric`` (what W&B documents
    for logging to past steps, and what the Lightning and Hugging Face integrations do
    with ``trainer/global_step`` and ``train/global_step``). Keys are declared one by
    one, not with a ``"<prefix>/*"`` glob: W&B gives an exact name precedence over globs
    but picks among matching globs in no fixed order, so a framework's ``"*"`` glob could
    otherwise win. Each ``log`` call is one W&B row. If you also log to the same run with
    an explicit ``wandb.log(..., step=n)``, W&B's counter moves with our rows too and may
    reject your next ``n``: give your values a step metric as well, or the mirror its own
    run.

    NaN values (a metric that could not be computed; the run records why) are not sent,
    so the run summary (the last value of each key) stays a number.

    The run is resolved on the first :meth:`log` (or by :meth:`start`), so a framework's
    run that starts with training is found, and is then in :attr:`run_`.

    Raises
    ------
    ImportError
        If the wandb package is missing (the message says what to install).
    ConfigError
        If ``mode`` or ``prefix`` is invalid (empty, or with a ``.`` or a leading or
        trailing ``/``), or ``run`` is given with options for a new run.
    """

    def __init__(
        self,
        run: WandbRun | None = None,
        *,
        project: str | None = None,
        mode: WandbMode = "offline",
        dir: str | os.PathLike[str] | None = None,
        prefix: str = "traindyn",
        **init_kwargs: Any,
    ) -> None:
        check_in(mode, _MODES, name="mode")
        self.prefix = check_prefix(prefix, allow_empty=False)
        if "." in prefix:
            raise ConfigError(
                f"prefix must not contain '.' (W&B reads it as nesting); got {prefix!r}. "
                "Use '/' or '_' instead."
            )
        options = {"project": project, "dir": dir, "mode": None if mode == "offline" else mode}
        if run is not None and (any(v is not None for v in options.values()) or init_kwargs):
            given = sorted([k for k, v in options.items() if v is not None] + list(init_kwargs))
            raise ConfigError(
                f"WandbMirror was given run= and options for a new run ({', '.join(given)}); "
                "pass either an existing run or the wandb.init options."
            )
        self._wandb = _import_wandb()
        self.run = run
        self.project = project
        self.mode = mode
        self.dir = dir
        self.init_kwargs = dict(init_kwargs)
        self.run_: WandbRun | None = None
        self.owns_run_ = False
        self._step_key = f"{self.prefix}/step"
        self._tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> WandbRun:
        """Resolve the run now (``log`` does it on first use) and declare the step metric."""
        with self._lock:
            return self._start()

    def _start(self) -> WandbRun:
        if self._closed:
            raise ConfigError("this WandbMirror is closed; create a new one to log more.")
        if self.run_ is not None:
            return self.run_
        active: WandbRun | None = self._wandb.run
        new_run_options = (self.project, self.dir, self.init_kwargs, self.mode != "offline")
        if self.run is not None:
            run, owns = self.run, False
        elif active is not None and not any(new_run_options):
            run, owns = active, False
        else:
            if self.dir is not None:
                os.makedirs(self.dir, exist_ok=True)  # wandb.init wants it to exist
            dir_ = None if self.dir is None else os.fspath(self.dir)
            run = self._wandb.init(
                project=self.project, mode=self.mode, dir=dir_, **self.init_kwargs
            )
            owns = run is not active  # W&B's reinit="return_previous" hands back the active run
        assert run is not None  # wandb.init returns a run
        run.define_metric(self._step_key)
        self.run_, self.owns_run_ = run, owns
        return run

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Log ``values`` (``"<layer>/<metric>"`` or scalar names) as one row; skip NaN."""
        with self._lock:
            run = self._start()
            row: dict[str, float | int] = {}
            for key, value in values.items():
                number = float(value)
                if math.isnan(number):
                    continue
                tag = self._tags.get(key)
                if tag is None:
                    tag = self._tags[key] = wandb_key(key, prefix=self.prefix)
                    run.define_metric(tag, step_metric=self._step_key)
                row[tag] = number
            if row:
                row[self._step_key] = int(step)
                run.log(row)

    def close(self) -> None:
        """Finish the run if this mirror started it; leave a run you gave it open."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.run_ is not None and self.owns_run_:
                self.run_.finish()

    def __repr__(self) -> str:
        run = self.run_ if self.run_ is not None else self.run
        where = f"run={run.id!r}" if run is not None else f"project={self.project!r}"
        return f"WandbMirror({where}, mode={self.mode!r}, prefix={self.prefix!r})"
