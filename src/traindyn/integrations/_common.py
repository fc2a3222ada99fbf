"""What the framework callbacks share (imports no framework)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from traindyn.capture import Tracker
from traindyn.exceptions import ConfigError
from traindyn.store import Run

__all__ = ["TrackerOwner", "check_tracker_kwargs"]


class TrackerOwner:
    """What a framework callback that builds a Tracker when training starts exposes.

    Subclasses set ``run``, ``_tracker`` (None until training starts), ``_open`` and
    ``_starts`` (how a user gets the tracker built, for the error message).
    """

    _starts: ClassVar[str]
    run: str | Path | Run
    _tracker: Tracker | None
    _open: bool

    def _setup(
        self,
        probe: Any,
        run: str | Path | Run,
        every: Any,
        tracker_kwargs: dict[str, Any],
        *,
        reserved: Mapping[str, str],
        config_key: str,
        config_what: str,
    ) -> None:
        """Check the options now (not when training starts) and store them.

        ``config_key`` is the entry of the run's config the callback writes (what it holds:
        ``config_what``); a user's ``config=`` must leave it alone.
        """
        owner = type(self).__name__
        check_tracker_kwargs(tracker_kwargs, owner=owner, reserved=reserved)
        if config_key in (tracker_kwargs.get("config") or {}):
            raise ConfigError(
                f"config[{config_key!r}] is written by {owner} ({config_what}); put your own "
                "entries under another key."
            )
        self.probe = probe
        self.run = run
        self.every = every
        self.tracker_kwargs = tracker_kwargs
        self._tracker = None
        self._open = False

    @property
    def tracker(self) -> Tracker:
        """The :class:`~traindyn.Tracker` of this run (built when training starts)."""
        if self._tracker is None:
            raise ConfigError(f"callback.tracker exists once {self._starts}")
        return self._tracker

    @property
    def run_path(self) -> Path:
        """The run directory (absolute once the run is created)."""
        created: Run | None = getattr(self._tracker, "run_", None)
        if created is not None:
            return created.path
        return self.run.path if isinstance(self.run, Run) else Path(self.run)

    def close(
        self, *, status: Literal["finished", "failed"] = "finished", error: str | None = None
    ) -> None:
        """Close the run now (a no-op when it is closed or never started)."""
        if self._tracker is not None and self._open:
            self._open = False
            self._tracker.close(status=status, error=error)


def check_tracker_kwargs(
    kwargs: Mapping[str, Any], *, owner: str, reserved: Mapping[str, str]
) -> None:
    """Reject, when a callback is created, Tracker options the Tracker would refuse only
    when training begins: ``reserved`` names (with why) and names it does not take.

    Raises
    ------
    TypeError
        Naming the option and listing the valid ones.
    """
    for name, why in reserved.items():
        if name in kwargs:
            raise TypeError(f"{owner} does not take {name}= as a Tracker option: {why}.")
    valid = [p for p in inspect.signature(Tracker).parameters if p not in reserved]
    for name in kwargs:
        if name not in valid:
            raise TypeError(
                f"{owner} got an unknown Tracker option {name!r}; valid options: "
                f"{', '.join(valid)}."
            )
