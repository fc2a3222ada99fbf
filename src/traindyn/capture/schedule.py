"""When to take a sample: pure, stateless schedules.

A schedule answers one question, ``is_due(step)``, so it can be tested without a model
and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from traindyn.exceptions import ConfigError

__all__ = ["AtSteps", "Every", "LogSpaced", "Schedule", "as_schedule"]


@runtime_checkable
class Schedule(Protocol):
    """Anything with ``is_due(step) -> bool``."""

    def is_due(self, step: int) -> bool:
        """Return True when a sample should be taken at ``step``."""
        ...


@dataclass(frozen=True)
class Every:
    """Due at ``start, start + n, start + 2n, ...``.

    Examples
    --------
    >>> [s for s in range(12) if Every(5).is_due(s)]
    [0, 5, 10]
    """

    n: int
    start: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ConfigError(f"every must be a positive integer number of steps; got {self.n!r}.")
        if self.start < 0:
            raise ConfigError(f"start must be >= 0; got {self.start!r}.")

    def is_due(self, step: int) -> bool:
        return step >= self.start and (step - self.start) % self.n == 0


@dataclass(frozen=True)
class AtSteps:
    """Due at an explicit set of steps, e.g. the seeds' ``[100, 1000, 2000]``.

    Examples
    --------
    >>> AtSteps.of([100, 1000, 2000]).is_due(1000)
    True
    """

    steps: frozenset[int]

    @classmethod
    def of(cls, steps: Iterable[int]) -> AtSteps:
        """Build from any iterable of non-negative integers."""
        out: set[int] = set()
        for s in steps:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError(f"steps must be non-negative integers; got {s!r}.")
            out.add(s)
        if not out:
            raise ConfigError("steps must not be empty; give at least one step to sample at.")
        return cls(frozenset(out))

    def is_due(self, step: int) -> bool:
        return step in self.steps


@dataclass(frozen=True)
class LogSpaced:
    """About ``per_decade`` samples per factor of ten in step, plus step 0.

    Dense early, sparse late: the seeds found most change in the first 10% of training.
    Steps are ``round(10 ** (k / per_decade))`` for k = 0, 1, ..., deduplicated.

    Examples
    --------
    >>> [s for s in range(120) if LogSpaced(per_decade=4).is_due(s)]
    [0, 1, 2, 3, 6, 10, 18, 32, 56, 100]
    """

    per_decade: int = 10

    def __post_init__(self) -> None:
        if self.per_decade < 1:
            raise ConfigError(f"per_decade must be >= 1; got {self.per_decade!r}.")

    def is_due(self, step: int) -> bool:
        if step <= 0:
            return step == 0
        # The k whose rounded value could equal `step` lie next to per_decade * log10(step).
        centre = self.per_decade * math.log10(step)
        for k in (math.floor(centre), math.ceil(centre)):
            if k >= 0 and round(10 ** (k / self.per_decade)) == step:
                return True
        return False


def as_schedule(value: int | Sequence[int] | Schedule, *, name: str = "every") -> Schedule:
    """Turn ``every=5``, ``every=[100, 1000]`` or a :class:`Schedule` into a schedule."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, a list of steps or a Schedule; got {value!r}.")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1; got {value!r}.")
        return Every(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return AtSteps.of(value)
    raise ConfigError(
        f"{name} must be an int, a list of steps or a Schedule (Every, AtSteps, LogSpaced); "
        f"got {value!r}."
    )
