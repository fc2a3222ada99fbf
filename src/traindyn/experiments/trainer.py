"""A plain supervised training loop that records through the Tracker like any user loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from traindyn._validation import check_in, check_positive
from traindyn.capture import Tracker
from traindyn.exceptions import ConfigError
from traindyn.experiments.datasets import load_dataset, probe_description, probe_split
from traindyn.experiments.models import build_model
from traindyn.metrics import DEFAULT_METRICS

__all__ = ["TrainConfig", "train"]

Optimizer = Literal["adam", "sgd"]


@dataclass(frozen=True)
class TrainConfig:
    """One experiment: an architecture trained on a dataset with one seed.

    Defaults are the built-in quick suite's: small enough that twelve runs finish in a
    few minutes on two cores, long enough that the metrics visibly move.
    """

    arch: str
    dataset: str
    seed: int = 0
    steps: int = 300  # ~11 epochs of digits at batch 64: loss has flattened by then
    batch_size: int = 64  # the seeds' batch size
    lr: float = 1e-3  # Adam's default; stable for every zoo model
    optimizer: Optimizer = "adam"
    every: int = 5  # the seeds' measurement cadence ("every 5 steps")
    probe_per_class: int = 20  # 200 probe samples: stable spectra, cheap probe pass
    metrics: tuple[str, ...] = DEFAULT_METRICS
    checkpoint_steps: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "every", "probe_per_class"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
        check_positive(self.lr, name="lr")
        check_in(self.optimizer, ("adam", "sgd"), name="optimizer")

    @property
    def name(self) -> str:
        """Run name: ``<arch>_<dataset>_s<seed>``, the seeds' naming."""
        return f"{self.arch}_{self.dataset}_s{self.seed}"


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Train ``config`` from scratch, tracking every ``config.every`` steps into ``run_dir``.

    Parameters
    ----------
    config : TrainConfig
    run_dir : path
        The run directory to create.
    progress : callable, optional
        Called with the number of steps completed since the last call.

    Returns
    -------
    Path
        The run directory.
    """
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset, seed=config.seed)
    model = build_model(config.arch, input_shape=data.input_shape, n_classes=data.n_classes)
    probe = probe_split(data, per_class=config.probe_per_class, seed=config.seed)
    optimizer = _optimizer(config, model)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(config.seed)
    n_train = data.x_train.shape[0]
    order = torch.randperm(n_train, generator=generator)
    cursor = 0
    tracker = Tracker(
        model,
        probe=probe,
        run=run_dir,
        every=config.every,
        metrics=config.metrics,
        checkpoint_every=list(config.checkpoint_steps) or None,
        config={
            "experiment": _jsonable(asdict(config)),
            "model": _jsonable(asdict(model.config)) if hasattr(model, "config") else None,
            "probe": probe_description(data, per_class=config.probe_per_class, seed=config.seed),
        },
    )
    with tracker:
        for step in range(config.steps + 1):
            if cursor + config.batch_size > n_train:
                order = torch.randperm(n_train, generator=generator)
                cursor = 0
            idx = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            x, y = data.x_train[idx], data.y_train[idx]
            model.train()
            logits = model(x)
            loss = loss_fn(logits, y)
            # Record the weights the step measured: the tracker samples before the update.
            tracker.step(step, loss=loss, outputs=logits, targets=y, lr=config.lr)
            if step == config.steps:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(1)
    return Path(run_dir)


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
