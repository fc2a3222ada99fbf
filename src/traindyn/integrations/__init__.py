"""Adapters that meet researchers inside the frameworks they already train with.

Each adapter is a thin layer over :class:`traindyn.Tracker`; its framework is an optional
extra (``pip install traindyn[huggingface]``, ``[lightning]``, ``[tensorboard]``,
``[wandb]``) and is imported only when the adapter is first used, so ``import traindyn``
never needs any of them.

- :class:`TraindynCallback` (``traindyn.integrations.huggingface``): a ``transformers``
  ``TrainerCallback``.
- :class:`TraindynLightningCallback` (``traindyn.integrations.lightning``): a
  ``lightning.pytorch`` ``Callback``.
- :class:`TensorBoardMirror` (``traindyn.integrations.tensorboard``) and
  :class:`WandbMirror` (``traindyn.integrations.wandb``): pass them as
  ``Tracker(mirrors=[...])`` to see every metric and scalar in those tools too, and
  :func:`replay` (``traindyn.integrations.replay``) sends a stored run to any mirror.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TraindynCallback": "traindyn.integrations.huggingface",
    "TraindynLightningCallback": "traindyn.integrations.lightning",
    "TensorBoardMirror": "traindyn.integrations.tensorboard",
    "WandbMirror": "traindyn.integrations.wandb",
    "replay": "traindyn.integrations.replay",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'traindyn.integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
