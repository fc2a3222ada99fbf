"""Suites: a declarative file of experiments that ``traindyn run`` executes.

A suite file (YAML) has four optional parts::

    name: sweep-demo
    defaults:                 # merged under every experiment
      train: {optimizer: adamw, lr: 1.0e-3, steps: 300, schedule: {kind: cosine}}
      tracking: {every: 5, probe_per_class: 20}
    grid:                     # cartesian product; dotted keys reach nested fields
      arch: [mlp_medium, cnn_shallow]
      dataset: [digits]
      seed: [0, 1, 2]
      train.lr: [1.0e-3, 3.0e-4]
    experiments:              # explicit experiments (each crossed with the grid)
      - name: pedagogical
        arch: mlp_medium
        dataset: digits
        phases:
          - {name: heavy_grounding, start: 0, end: 100, loss_weights: {ce: 1.0, l2: 1.0e-3}}
          - {name: balanced, start: 100, end: 300}

Every field is validated where it enters, and every invalid one is reported with its
path in the file, e.g. ``experiments[3].train.lr: must be > 0, got -1``.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from traindyn.exceptions import ConfigError
from traindyn.metrics import DEFAULT_METRICS, METRICS

__all__ = [
    "SUITES",
    "CheckpointSpec",
    "EarlyStoppingSpec",
    "ExperimentSpec",
    "LRScheduleSpec",
    "PhaseSpec",
    "SuiteSpec",
    "TrackingSpec",
    "TrainSpec",
    "builtin_suite",
    "expand_suite",
    "load_suite",
]

_SCALARS = ("loss", "probe_accuracy", "probe_confidence", "probe_loss")
LOSS_TERMS = ("ce", "l2", "confidence_penalty")
"""Loss terms a phase can weight: cross-entropy, ½‖θ‖² of trainable weights, and the
confidence penalty −H(p) of Pereyra et al. 2017 (weight > 0 discourages over-confidence)."""

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LRScheduleSpec(_Spec):
    """Learning rate over steps: linear warm-up, then constant, step decay or cosine."""

    kind: Literal["constant", "step", "cosine"] = "constant"
    warmup_steps: NonNegInt = 0
    step_size: PositiveInt = 1000  # step decay: multiply by gamma every step_size steps
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    min_lr: Annotated[float, Field(ge=0)] = 0.0  # cosine floor


class TrainSpec(_Spec):
    """Optimisation: optimiser, learning rate, batch size and duration."""

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9  # sgd only
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (
        0.9,
        0.999,
    )
    schedule: LRScheduleSpec = LRScheduleSpec()
    batch_size: PositiveInt | Literal["full"] = 64
    steps: PositiveInt | None = None
    epochs: PositiveInt | None = None
    grad_clip: PositiveFloat | None = None
    loss_weights: dict[str, float] = Field(default_factory=lambda: {"ce": 1.0})

    @field_validator("loss_weights")
    @classmethod
    def _known_terms(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"unknown loss term(s) {unknown}; valid terms are {list(LOSS_TERMS)}")
        return value

    @model_validator(mode="after")
    def _one_duration(self) -> TrainSpec:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        return self


class TrackingSpec(_Spec):
    """What the Tracker records and when."""

    every: PositiveInt | list[NonNegInt] = 5  # the seeds' cadence
    log_spaced: PositiveInt | None = None  # samples per decade, instead of `every`
    probe_per_class: PositiveInt = 20
    layers: str | list[str] | None = None  # None: the model's default layers
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    mode: Literal["probe", "batch"] = "probe"
    reduce: Literal["mean", "flatten", "per_position"] = "mean"

    @field_validator("metrics")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; registered: {list(METRICS)}")
        return value


class CheckpointSpec(_Spec):
    """When to save checkpoints: every N steps, at listed steps, and/or log-spaced."""

    every: PositiveInt | None = None
    steps: list[NonNegInt] = Field(default_factory=list)
    log_spaced: PositiveInt | None = None  # checkpoints per decade of steps
    final: bool = True  # always save the last step (resume and post-hoc analysis need it)


class EarlyStoppingSpec(_Spec):
    """Stop when a tracked value stops improving; the best checkpoint is kept.

    ``monitor`` is a scalar (``probe_accuracy``, ``probe_loss``, ``loss``...) or a metric
    of one layer written ``"<layer>/<metric>"`` (``"layers.0/participation_ratio"``).
    It is checked at every tracker sample; ``patience`` counts samples.
    """

    monitor: str = "probe_loss"
    mode: Literal["min", "max"] = "min"
    patience: PositiveInt = 10
    min_delta: Annotated[float, Field(ge=0)] = 0.0
    start_step: NonNegInt = 0  # no stopping before this step (warm-up)

    @field_validator("monitor")
    @classmethod
    def _monitorable(cls, value: str) -> str:
        if value in _SCALARS:
            return value
        if "/" in value:
            metric = value.rsplit("/", 1)[1]
            if metric in METRICS:
                return value
            raise ValueError(f"metric {metric!r} in {value!r} is not registered: {list(METRICS)}")
        raise ValueError(
            f"must be a scalar ({', '.join(_SCALARS)}) or '<layer>/<metric>'; got {value!r}"
        )


class DataMixSpec(_Spec):
    """The data a phase trains on: a subset of classes and/or a fraction of noisy labels."""

    classes: list[NonNegInt] | None = None
    label_noise: Annotated[float, Field(ge=0, lt=1)] = 0.0


class PhaseSpec(_Spec):
    """A named step range ``[start, end)`` that changes how training proceeds."""

    name: Annotated[str, Field(min_length=1)]
    start: NonNegInt
    end: PositiveInt
    lr: PositiveFloat | None = None  # replaces the schedule's learning rate
    lr_scale: PositiveFloat | None = None  # multiplies it
    loss_weights: dict[str, float] | None = None
    data: DataMixSpec | None = None
    freeze: list[str] = Field(default_factory=list)  # module paths or globs

    @model_validator(mode="after")
    def _ordered(self) -> PhaseSpec:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be > start ({self.start})")
        if self.lr is not None and self.lr_scale is not None:
            raise ValueError("give lr or lr_scale, not both")
        if self.loss_weights is not None:
            TrainSpec(loss_weights=self.loss_weights)
        return self


class ExperimentSpec(_Spec):
    """One training run: an architecture on a dataset with a seed, fully specified."""

    name: str | None = None
    arch: str
    dataset: str
    seed: NonNegInt = 0  # model initialisation and batch order
    data_seed: NonNegInt = 0  # dataset split and probe set: fixed across seeds by default
    train: TrainSpec = TrainSpec(steps=300)
    tracking: TrackingSpec = TrackingSpec()
    checkpoints: CheckpointSpec = CheckpointSpec()
    early_stopping: EarlyStoppingSpec | None = None
    phases: list[PhaseSpec] = Field(default_factory=list)
    stop_after_phase: str | None = None  # ablation: end training when this phase ends
    # Null control: the training labels are permuted once with data_seed (the probe keeps
    # its true labels), so the run can only memorise; see shuffled_control().
    shuffle_labels: bool = False

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, value: str) -> str:
        from traindyn.experiments.models import MODELS

        if value not in MODELS:
            raise ValueError(f"must be one of {list(MODELS)}; got {value!r}")
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        from traindyn.experiments.datasets import DATASETS

        if value not in DATASETS:
            raise ValueError(f"must be one of {list(DATASETS)}; got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.=-]+", value):
            raise ValueError(
                f"must use letters, digits and _ . = - only (it names a directory); got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must be unique; got {names}")
        ordered = sorted(self.phases, key=lambda p: p.start)
        for a, b in itertools.pairwise(ordered):
            if b.start < a.end:
                raise ValueError(f"phases {a.name!r} and {b.name!r} overlap")
        if self.stop_after_phase is not None and self.stop_after_phase not in names:
            raise ValueError(f"stop_after_phase {self.stop_after_phase!r} is not a phase: {names}")
        monitor = self.early_stopping.monitor if self.early_stopping else None
        if monitor and "/" in monitor and monitor.rsplit("/", 1)[1] not in self.tracking.metrics:
            raise ValueError(
                f"early_stopping.monitor {monitor!r} needs its metric in tracking.metrics"
            )
        return self

    @property
    def run_name(self) -> str:
        """Directory name: ``name`` if given, else ``<arch>_<dataset>_s<seed>``."""
        return self.name or f"{self.arch}_{self.dataset}_s{self.seed}"

    def shuffled_control(self) -> ExperimentSpec:
        """This experiment's label-shuffled twin: ``shuffle_labels=True``, named
        ``<run_name>_shuffled``.

        Everything else is equal (seed, data, model, probe, schedule), so the twin starts
        from the same initial weights and is measured on the same probe with true labels;
        what it learns cannot be about the labels. In a suite, add the twin with the grid
        axis ``shuffle_labels: [false, true]`` (names get ``_shuffle_labels=True``) or
        with this method. Either way the pairing is recorded, not implied by the name:
        ``run.json``'s ``config["experiment"]`` holds ``shuffle_labels``, and
        :func:`traindyn.analysis.chance.shuffled_controls` finds a run's twins (every
        seed) by comparing the recorded experiments.

        Raises
        ------
        ConfigError
            If this experiment already shuffles its labels.

        Examples
        --------
        >>> spec = ExperimentSpec(arch="mlp_medium", dataset="digits", seed=1)
        >>> twin = spec.shuffled_control()
        >>> twin.run_name, twin.shuffle_labels, twin.seed
        ('mlp_medium_digits_s1_shuffled', True, 1)
        """
        if self.shuffle_labels:
            raise ConfigError(
                f"{self.run_name} already has shuffle_labels=True; it is a control, not the "
                "experiment to pair with one."
            )
        return self.model_copy(update={"shuffle_labels": True, "name": f"{self.run_name}_shuffled"})


class SuiteSpec(_Spec):
    """A suite file as written (before expansion)."""

    name: str = "suite"
    description: str = ""
    defaults: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    experiments: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, options in value.items():
            if not options:
                raise ValueError(f"grid axis {key!r} has no values")
        return value


# --------------------------------------------------------------------------- errors


# Union members and validator steps appear in pydantic's error locations ("int",
# "constrained-int", "literal['full']", "function-after[...]"); they are not fields of a
# suite file (our field names have no hyphens or brackets and none of these names).
_NOT_FIELDS = {"int", "float", "str", "bool", "list", "dict", "tuple", "none", "is-instance"}


def _path(prefix: str, loc: Iterable[int | str]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _NOT_FIELDS or "[" in part or "-" in part:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _bound(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "greater_than": lambda c: f"must be > {_bound(c['gt'])}",
    "greater_than_equal": lambda c: f"must be >= {_bound(c['ge'])}",
    "less_than": lambda c: f"must be < {_bound(c['lt'])}",
    "less_than_equal": lambda c: f"must be <= {_bound(c['le'])}",
    "string_too_short": lambda c: "must not be empty",
}


def _describe(prefix: str, exc: ValidationError) -> list[str]:
    """One line per invalid field: ``path: what is wrong, got VALUE``."""
    lines: dict[str, str] = {}
    for err in exc.errors():
        path = _path(prefix, err["loc"])
        kind = err["type"]
        if kind == "missing":
            text = "is required"
        elif kind == "extra_forbidden":
            text = "is not a known field (check the spelling)"
        elif kind == "literal_error":
            text = f"must be {err['ctx']['expected']}, got {err['input']!r}"
        elif kind in _MESSAGES:
            text = f"{_MESSAGES[kind](err.get('ctx', {}))}, got {err['input']!r}"
        elif kind == "value_error":
            text = str(err["ctx"]["error"])
        else:
            text = f"{err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"
        # a union reports each member; keep the first, most specific line per field
        lines.setdefault(path, f"{path}: {text}")
    return list(lines.values())


def _validate(model: type[_Spec], data: Any, prefix: str, errors: list[str]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors.extend(_describe(prefix, exc))
        return None


# --------------------------------------------------------------------------- expansion


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = target.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"grid key {dotted!r}: {key!r} is not a section of an experiment.")
        target = node
    target[keys[-1]] = value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _partial_check(data: Any, prefix: str, errors: list[str]) -> None:
    """Validate a partial experiment (defaults, one entry, a grid value) field by field."""
    if not isinstance(data, Mapping):
        errors.append(f"{prefix}: must be a mapping of experiment fields, got {data!r}")
        return
    probe = {"arch": "mlp_medium", "dataset": "digits", **data}
    try:
        ExperimentSpec.model_validate(probe)
    except ValidationError as exc:
        for line in _describe(prefix, exc):
            if not line.endswith("is required") or any(k in line for k in data):
                errors.append(line)


def expand_suite(suite: SuiteSpec, *, source: str = "suite") -> list[ExperimentSpec]:
    """Expand defaults x experiments x grid into validated, uniquely named experiments.

    Raises
    ------
    ConfigError
        Listing every invalid field with its path in the suite file.
    """
    errors: list[str] = []
    _partial_check(suite.defaults, "defaults", errors)
    for i, entry in enumerate(suite.experiments):
        _partial_check(entry, f"experiments[{i}]", errors)
    for key, options in suite.grid.items():
        for j, option in enumerate(options):
            patch: dict[str, Any] = {}
            _set_dotted(patch, key, option)
            probe_errors: list[str] = []
            _partial_check(patch, "", probe_errors)
            errors.extend(f"grid[{key!r}][{j}]: {line.split(': ', 1)[1]}" for line in probe_errors)
    if errors:
        raise ConfigError(_report(source, errors))

    bases = suite.experiments or [{}]
    axes = list(suite.grid.items())
    specs: list[ExperimentSpec] = []
    for i, base in enumerate(bases):
        for combo in itertools.product(*[options for _, options in axes]):
            data = _merge(suite.defaults, base)
            for (key, _), value in zip(axes, combo, strict=True):
                _set_dotted(data, key, value)
            where = f"experiments[{i}]" if suite.experiments else "defaults"
            if combo:
                pairs = zip(axes, combo, strict=True)
                where += " with " + ", ".join(f"{k}={v!r}" for (k, _), v in pairs)
            spec = _validate(ExperimentSpec, data, where, errors)
            if spec is None:
                continue
            if spec.train.steps is None and spec.train.epochs is None:
                train = spec.train.model_copy(update={"steps": 300})
                spec = spec.model_copy(update={"train": train})
            if spec.name is None or combo:
                # auto names already hold arch and dataset; explicit names need them
                implied = ("arch", "dataset", "seed") if spec.name is None else ("seed",)
                suffix = "_".join(
                    str(value) if key in ("arch", "dataset") else _slug(key, value)
                    for (key, _), value in zip(axes, combo, strict=True)
                    if key not in implied
                )
                base_name = spec.name or f"{spec.arch}_{spec.dataset}"
                name = "_".join(p for p in (base_name, suffix, f"s{spec.seed}") if p)
                spec = spec.model_copy(update={"name": name})
            specs.append(spec)
    if errors:
        raise ConfigError(_report(source, errors))
    names = [s.run_name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"{source}: experiment names must be unique; repeated: {repeated}. Give each "
            "explicit experiment a distinct name or add the differing field to the grid."
        )
    return specs


def _slug(key: str, value: Any) -> str:
    text = f"{key.rsplit('.', 1)[-1]}={value}"
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text)


def _report(source: str, errors: Sequence[str]) -> str:
    lines = "\n".join(f"  {e}" for e in errors)
    return f"{source} has {len(errors)} invalid field(s):\n{lines}"


def load_suite(path: str | Path) -> SuiteSpec:
    """Read and validate a suite YAML file (not yet expanded).

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or has invalid top-level fields.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"suite file {path} cannot be read: {exc.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"suite file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"suite file {path} must hold a mapping (name, defaults, grid, ...).")
    errors: list[str] = []
    suite = _validate(SuiteSpec, data, "", errors)
    if not isinstance(suite, SuiteSpec):
        raise ConfigError(_report(str(path), errors))
    return suite


# --------------------------------------------------------------------------- built-ins


def _quick() -> SuiteSpec:
    # One MLP, one CNN and one small Transformer on both bundled datasets, two seeds:
    # 12 runs of 300 steps, each measured every 5 steps on a fixed 200-sample probe.
    # Checkpoints at 0, 50 and 300 (early / mid / late: most of the change is over by
    # step 50) give the report its checkpoint CKA matrices.
    return SuiteSpec(
        name="quick",
        description="MLP, CNN and Transformer on digits and mnist1d, 2 seeds, every 5 steps",
        defaults={"checkpoints": {"steps": [0, 50], "final": True}},
        grid={
            "arch": ["mlp_medium", "cnn_shallow", "transformer_shallow"],
            "dataset": ["digits", "mnist1d"],
            "seed": [0, 1],
        },
    )


def _smoke() -> SuiteSpec:
    # Every family once, 40 steps: checks an installation in seconds.
    return SuiteSpec(
        name="smoke",
        description="MLP, CNN and Transformer on digits, 40 steps: an installation check",
        defaults={"train": {"steps": 40}, "tracking": {"probe_per_class": 10}},
        grid={"arch": ["mlp_medium", "cnn_shallow", "transformer_shallow"], "dataset": ["digits"]},
    )


def _grokking() -> SuiteSpec:
    # Modular addition (p = 53, half the pairs for training) with weight decay 1 and full
    # batches: the training set is memorised within a few hundred steps and the test set
    # is solved thousands of steps later (Power et al. 2022). The shuffled-label control
    # memorises too, but never generalises.
    train = {
        "steps": 3000,  # measured: train solved by ~150, test >= 0.95 by ~1700
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 1.0,
        "betas": [0.9, 0.98],
        "batch_size": "full",
    }
    return SuiteSpec(
        name="grokking",
        description="modular addition that groks within minutes, plus a shuffled-label control",
        defaults={
            "arch": "transformer_grokking",
            "train": train,
            "tracking": {"every": 50, "probe_per_class": 10},
            "checkpoints": {"log_spaced": 3},
        },
        grid={"dataset": ["grokking_addition", "grokking_addition_shuffled"]},
    )


def _grokking_fast() -> SuiteSpec:
    # The grokking suite made cheap enough for the default test run (Issue 5, item 4):
    # p = 31 (half the pairs for training), lr 5e-3, 800 full-batch steps measured every
    # 10 (81 samples: with 41, every-20, the windows that judge an event's shape were
    # too short to tell the jump from drift) with the five spectral metrics, seeds
    # 0-2 of the task and of its shuffled-label control. Measured (one torch thread per
    # worker): the training set is memorised at step 38-39, and test accuracy, which
    # reaches ~0.53 at memorisation (addition commutes: the test pairs whose mirror b + a
    # is a training pair), jumps to >= 0.99 with its halfway point at step 400-420 in
    # all three seeds. The controls memorise by step 44-47; probe accuracy stays <= 0.05.
    # 6 runs in 79 s on 2 cores (measured at every 10). Both kinds show
    # Adam "slingshot" collapses of training accuracy every ~120 steps after
    # memorisation (as the "grokking" suite does, more rarely, at lr 1e-3).
    train = {
        "steps": 800,
        "optimizer": "adamw",
        "lr": 5e-3,
        "weight_decay": 1.0,
        "betas": [0.9, 0.98],
        "batch_size": "full",
    }
    return SuiteSpec(
        name="grokking-fast",
        description="modular addition p=31 that groks in 800 steps, 3 seeds, plus controls",
        defaults={
            "arch": "transformer_grokking",
            "train": train,
            "tracking": {"every": 10, "probe_per_class": 10},
        },
        grid={
            "dataset": ["grokking_addition_p31", "grokking_addition_p31_shuffled"],
            "seed": [0, 1, 2],
        },
    )


def _sweep_demo() -> SuiteSpec:
    # The seeds' sweep (seed 003): learning rate x schedule x seed with early stopping on
    # probe accuracy, to see which settings peak early and how much the seed matters.
    return SuiteSpec(
        name="sweep-demo",
        description="lr x schedule x seed grid on digits with early stopping (patience 5)",
        defaults={
            "arch": "mlp_medium",
            "dataset": "digits",
            "train": {"steps": 400, "optimizer": "adam"},
            "tracking": {"every": 10, "probe_per_class": 20},
            "early_stopping": {"monitor": "probe_accuracy", "mode": "max", "patience": 5},
        },
        grid={
            "train.lr": [1e-3, 3e-4],
            "train.schedule.kind": ["constant", "cosine", "step"],
            "seed": [0, 1, 2],
        },
    )


def _phase1() -> SuiteSpec:
    # The seeds' phase-1 grid (seed 001): every architecture on every dataset it accepts,
    # 2000 steps measured every 5 (400 samples per run). Real MNIST, Fashion-MNIST, QMNIST
    # and AG News when their files are present; the bundled digits, mnist1d and
    # sequences otherwise.
    from traindyn.experiments.datasets import DATASETS, load_dataset
    from traindyn.experiments.models import MODELS

    try:
        load_dataset("mnist")
        load_dataset("ag_news")
        datasets = ["mnist", "fashion_mnist", "qmnist", "ag_news"]
    except ConfigError:
        datasets = ["digits", "mnist1d", "sequences"]
    archs = [a for a in MODELS if a != "transformer_grokking"]
    experiments = [
        {"arch": arch, "dataset": dataset}
        for dataset in datasets
        for arch in archs
        if DATASETS[dataset].input_kind in MODELS[arch].input_kinds
    ]
    return SuiteSpec(
        name="phase1",
        description="every architecture x dataset, 2000 steps, every 5 (real data if present)",
        defaults={"train": {"steps": 2000}, "tracking": {"every": 5, "probe_per_class": 20}},
        experiments=experiments,
    )


SUITES: dict[str, Callable[[], SuiteSpec]] = {
    "quick": _quick,
    "smoke": _smoke,
    "grokking": _grokking,
    "grokking-fast": _grokking_fast,
    "sweep-demo": _sweep_demo,
    "phase1": _phase1,
}


def builtin_suite(name: str) -> SuiteSpec:
    """A built-in suite by name.

    Raises
    ------
    ConfigError
        If ``name`` is not a built-in suite; the message lists them.
    """
    if name not in SUITES:
        raise ConfigError(
            f"suite must be one of {', '.join(repr(s) for s in SUITES)} or a YAML file; "
            f"got {name!r}."
        )
    return SUITES[name]()
