"""What the framework callbacks share (imports no framework)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from traindyn.capture import Tracker

__all__ = ["check_tracker_kwargs"]


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
