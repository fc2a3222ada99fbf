"""traindyn: watch, measure and trust how representations change while a network trains.

>>> import traindyn as td
>>> sorted(td.metrics.spectral_metrics([[0.0, 1.0], [1.0, 0.0]]).items())[0]
('effective_rank', 1.0)
"""

from traindyn import analysis, capture, exceptions, metrics, store
from traindyn._version import __version__
from traindyn.capture import Tracker
from traindyn.store import open_run, open_runs

__all__ = [
    "Tracker",
    "__version__",
    "analysis",
    "capture",
    "exceptions",
    "metrics",
    "open_run",
    "open_runs",
    "store",
]
