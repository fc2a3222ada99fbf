"""Checkpoints: safetensors weights plus an architecture fingerprint. Never pickle.

Files (in ``<run>/checkpoints/`` or any directory)::

    step-<N>.safetensors   the state dict; its header metadata holds, under the key
                           "traindyn.checkpoint", the same JSON as the side-car below
    step-<N>.json          CheckpointMeta: step, fingerprint, extra, created_at, aliases

The safetensors file is self-describing, so it loads strictly even without its side-car;
the side-car is for people and tools that do not read safetensors headers. Tied weights
(two state-dict keys sharing one tensor) are stored once and listed in ``aliases``.

Loading is strict by default: any missing, unexpected, wrongly shaped or typed key and any
config difference raises :class:`~traindyn.exceptions.CheckpointMismatch` listing all of
them (the silent ``strict=False`` load that randomly initialised "10+ projection layer
keys" is what this module exists to prevent). Legacy ``.pt``/``.pth``/``.bin`` files are
read only with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle  # only for its exception type: nothing here unpickles
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import safetensors
import safetensors.torch
import torch
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

from traindyn.exceptions import CheckpointMismatch, ConfigError, PartialLoadWarning, StoreError
from traindyn.store.run import (
    CHECKPOINTS_DIR,
    MANIFEST_NAME,
    Run,
    atomic_write,
    atomic_write_path,
)
from traindyn.store.schema import (
    SCHEMA_VERSION,
    ModelFingerprint,
    TensorSpec,
    canonical_json,
    describe_validation_error,
    to_json_value,
)

__all__ = [
    "CheckpointDiff",
    "CheckpointInfo",
    "CheckpointMeta",
    "PartialLoadWarning",
    "diff_checkpoint",
    "fingerprint",
    "inspect_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

METADATA_KEY = "traindyn.checkpoint"
_LEGACY_SUFFIXES = (".pt", ".pth", ".bin")
_STEP_RE = re.compile(r"^step-(\d+)$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")

# safetensors header dtype codes -> torch dtype names
_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "C64": "complex64",
}


class CheckpointMeta(BaseModel):
    """Side-car of a checkpoint (``step-<N>.json`` and the safetensors header).

    Parameters
    ----------
    schema_version : int
        :data:`~traindyn.store.SCHEMA_VERSION` of the writer.
    step : int
        Training step of the weights.
    fingerprint : ModelFingerprint
        Architecture of the saved model.
    extra : JSON value
        Whatever the caller passed as ``extra`` (epoch, metrics, optimizer name).
    created_at : datetime (UTC)
        When the checkpoint was written.
    aliases : dict of str to str
        Tied weights: state-dict key -> the key whose tensor it shares (stored once).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(ge=1)
    step: int
    fingerprint: ModelFingerprint
    extra: JsonValue = None
    created_at: AwareDatetime
    aliases: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint file holds (from :func:`inspect_checkpoint`).

    Parameters
    ----------
    path : Path
        The file.
    format : {"safetensors", "torch"}
        ``"torch"`` for a legacy ``.pt``/``.pth``/``.bin`` file.
    step : int or None
        Training step, from the metadata, the legacy dict's ``"step"`` or the file name.
    fingerprint : ModelFingerprint
        Recorded architecture; ``model_class`` None when the file did not record one.
    n_params : int
        Elements over the stored tensors (buffers included, tied weights counted once).
    total_bytes : int
        File size.
    tensors : tuple of TensorSpec
        Every state-dict key with its shape and dtype.
    created_at : datetime or None
        When it was written, if recorded.
    extra : JSON value
        The ``extra`` passed to :func:`save_checkpoint`.
    """

    path: Path
    format: Literal["safetensors", "torch"]
    step: int | None
    fingerprint: ModelFingerprint
    n_params: int
    total_bytes: int
    tensors: tuple[TensorSpec, ...]
    created_at: datetime | None = None
    extra: JsonValue = None

    def lines(self) -> list[str]:
        """Human-readable report, one line per item."""
        fp = self.fingerprint
        out = [
            f"checkpoint: {self.path}",
            f"format: {self.format}",
            f"step: {self.step if self.step is not None else 'unknown'}",
            f"model class: {fp.model_class or 'unknown'}",
            f"architecture hash: {fp.hash}",
            f"parameters: {self.n_params:,}",
            f"size: {self.total_bytes:,} bytes",
        ]
        if self.created_at is not None:
            out.append(f"created at: {self.created_at.isoformat()}")
        if fp.config is not None:
            out.append("config:")
            out += [f"  {k}: {v!r}" for k, v in _flatten(fp.config, "").items()]
        out.append(f"tensors ({len(self.tensors)}):")
        out += [f"  {t.key}: {t.describe()}" for t in self.tensors]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class CheckpointDiff:
    """Why one state dict does or does not fit another (from :func:`diff_checkpoint`).

    Read it as "loading ``a`` into ``b``": ``missing`` keys are expected by ``b`` but
    absent from ``a``; ``unexpected`` keys are in ``a`` only.

    Parameters
    ----------
    a, b : str
        Descriptions of the two sides (a path or a model class).
    label_a, label_b : str
        Names used in the lines: ``"checkpoint"``/``"model"``, or ``"a"``/``"b"`` when
        both sides are of the same kind.
    missing, unexpected : list of str
        Keys.
    shape_mismatch : list of str
        ``"key: checkpoint (a, b) float32 vs model (c, d) float32"``.
    config_diff : list of str
        ``"field: checkpoint X vs model Y"`` (dotted names for nested fields); a model
        class difference is reported as ``"model class: ..."``. Configs are compared only
        when both sides record one.
    """

    a: str
    b: str
    label_a: str = "checkpoint"
    label_b: str = "model"
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    config_diff: list[str] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        """True if ``a`` loads strictly into ``b``."""
        return not (self.missing or self.unexpected or self.shape_mismatch or self.config_diff)

    def lines(self) -> list[str]:
        """Human-readable report listing every difference."""
        if self.compatible:
            return [f"{self.a} fits {self.b}: same keys, shapes, dtypes, class and config."]
        la, lb = self.label_a, self.label_b
        out = [f"{self.a} does not fit {self.b}:"]
        sections = (
            (f"missing (in the {lb}, not in the {la})", self.missing),
            (f"unexpected (in the {la}, not in the {lb})", self.unexpected),
            ("wrong shape or dtype", self.shape_mismatch),
            ("config differences", self.config_diff),
        )
        for title, items in sections:
            if items:
                out.append(f"  {title} [{len(items)}]:")
                out += [f"    {item}" for item in items]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --------------------------------------------------------------------------- fingerprint


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _class_name(model: torch.nn.Module) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def _model_config(model: torch.nn.Module, config: Any) -> JsonValue:
    if config is not None:
        return to_json_value(config, name="config")
    attr = getattr(model, "config", None)
    is_dataclass = dataclasses.is_dataclass(attr) and not isinstance(attr, type)
    if is_dataclass or isinstance(attr, Mapping | BaseModel):
        return to_json_value(attr, name=f"{type(model).__name__}.config")
    return None


def _make_fingerprint(
    model_class: str | None, config: JsonValue, tensors: tuple[TensorSpec, ...]
) -> ModelFingerprint:
    payload: JsonValue = {
        "model_class": model_class,
        "config": config,
        "tensors": [[t.key, list(t.shape), t.dtype] for t in tensors],
    }
    digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    return ModelFingerprint(model_class=model_class, config=config, tensors=tensors, hash=digest)


def _specs(state: Mapping[str, Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            specs.append(
                TensorSpec(key=key, shape=tuple(value.shape), dtype=_dtype_name(value.dtype))
            )
        else:  # get_extra_state() can put any object in a state dict
            specs.append(TensorSpec(key=key, shape=(), dtype=f"object:{type(value).__name__}"))
    return tuple(specs)


def fingerprint(model: torch.nn.Module, config: Any = None) -> ModelFingerprint:
    """Return the architecture fingerprint of ``model``: class, config, every key's shape.

    Parameters
    ----------
    model : torch.nn.Module
        The model; only its class and ``state_dict()`` metadata are read.
    config : dataclass, pydantic model, mapping or None
        Constructor config. Defaults to ``model.config`` when that is a dataclass, a
        pydantic model or a mapping, else None.

    Returns
    -------
    ModelFingerprint
        ``hash`` is a sha256 over (class, config, keys, shapes, dtypes), not the weights:
        two checkpoints of one architecture share it.

    Raises
    ------
    ConfigError
        If the config is not JSON-serialisable.

    Examples
    --------
    >>> fp = fingerprint(torch.nn.Linear(3, 2))
    >>> fp.model_class, [(t.key, t.shape) for t in fp.tensors]
    ('torch.nn.modules.linear.Linear', [('weight', (2, 3)), ('bias', (2,))])
    >>> fp.hash == fingerprint(torch.nn.Linear(3, 2)).hash
    True
    >>> fp.hash == fingerprint(torch.nn.Linear(3, 4)).hash
    False
    """
    return _make_fingerprint(
        _class_name(model), _model_config(model, config), _specs(model.state_dict())
    )


# ------------------------------------------------------------------------------ saving


def _checkpoint_dir(target: Run | str | os.PathLike[str]) -> Path:
    root = target.path if isinstance(target, Run) else Path(target)
    if (root / MANIFEST_NAME).is_file():
        root = root / CHECKPOINTS_DIR
    if root.exists() and not root.is_dir():
        raise StoreError(
            f"{root} is a file; pass a run directory or the directory to hold checkpoints."
        )
    root.mkdir(parents=True, exist_ok=True)
    return root


def _storable(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Guts of saving: contiguous CPU tensors safetensors accepts, plus tied-weight aliases.

    safetensors refuses tensors that share memory. A key that is exactly the same view as
    an earlier one (tied weights) becomes an alias; any other sharing gets a copy.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[tuple[str, int]] = set()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConfigError(
                f"state_dict entry {key!r} must be a tensor to be saved as safetensors; got "
                f"{type(value).__name__}. Keep extra state out of the state dict, or pass "
                "it as save_checkpoint(extra=...)."
            )
        tensor = value.detach()
        storage = (tensor.device.type, tensor.untyped_storage().data_ptr())
        if tensor.numel() > 0:
            view = (
                *storage,
                tensor.storage_offset(),
                tuple(tensor.shape),
                tensor.stride(),
                tensor.dtype,
            )
            if view in views:
                aliases[key] = views[view]
                continue
            views[view] = key
        shared = tensor.numel() > 0 and storage in storages
        storages.add(storage)
        tensor = tensor.to("cpu").contiguous()
        whole = tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        if shared or not whole:
            tensor = tensor.clone()
        tensors[key] = tensor
    return tensors, aliases


def save_checkpoint(
    model: torch.nn.Module,
    run_dir_or_checkpoints_dir: Run | str | os.PathLike[str],
    step: int,
    *,
    config: Any = None,
    extra: Any = None,
) -> Path:
    """Save ``model.state_dict()`` as ``step-<step>.safetensors`` plus ``step-<step>.json``.

    Parameters
    ----------
    model : torch.nn.Module
        The model; tensors are detached, moved to CPU and made contiguous. Tied weights
        are stored once and re-tied on load.
    run_dir_or_checkpoints_dir : Run, str or os.PathLike
        A run (the file goes to ``<run>/checkpoints/``) or any directory (created).
    step : int
        Training step (>= 0); an existing checkpoint of that step is replaced.
    config : dataclass, mapping or None
        Constructor config for the fingerprint (default: ``model.config``).
    extra : JSON-like or None
        Anything to keep alongside (epoch, validation loss).

    Returns
    -------
    Path
        The ``.safetensors`` file. Both files are written atomically (temporary name,
        fsync, rename).

    Raises
    ------
    ConfigError
        If ``step`` is negative, a state-dict entry is not a tensor, or ``config`` /
        ``extra`` is not JSON-serialisable.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ConfigError(f"step must be an integer >= 0; got {step!r}.")
    directory = _checkpoint_dir(run_dir_or_checkpoints_dir)
    state = model.state_dict()
    fp = _make_fingerprint(_class_name(model), _model_config(model, config), _specs(state))
    tensors, aliases = _storable(state)
    meta = CheckpointMeta(
        schema_version=SCHEMA_VERSION,
        step=step,
        fingerprint=fp,
        extra=to_json_value(extra, name="extra"),
        created_at=datetime.now(UTC),
        aliases=aliases,
    )
    meta_json = meta.model_dump_json()
    path = directory / f"step-{step}.safetensors"
    atomic_write_path(
        path,
        lambda tmp: safetensors.torch.save_file(tensors, tmp, metadata={METADATA_KEY: meta_json}),
    )
    side_car = meta.model_dump_json(indent=2).encode() + b"\n"
    atomic_write(path.with_suffix(".json"), lambda f: f.write(side_car))
    return path


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Contents:
    """A checkpoint read from disk: what was recorded and, if loaded, the tensors."""

    path: Path
    format: Literal["safetensors", "torch"]
    fingerprint: ModelFingerprint
    meta: CheckpointMeta | None
    step: int | None
    n_params: int
    tensors: dict[str, torch.Tensor] | None


def _check_file(path: Path) -> None:
    if path.is_dir():
        hint = (
            " Pass one of its checkpoint files, e.g. open_run(path).checkpoint_path(step)."
            if (path / MANIFEST_NAME).is_file() or path.name == CHECKPOINTS_DIR
            else ""
        )
        raise StoreError(f"{path} is a directory, not a checkpoint file.{hint}")
    if not path.is_file():
        raise StoreError(f"no checkpoint file at {path}. Check the path.")
    if path.suffix != ".safetensors" and path.suffix not in _LEGACY_SUFFIXES:
        raise StoreError(
            f"{path} has suffix {path.suffix!r}; expected .safetensors (or a legacy "
            f"{', '.join(_LEGACY_SUFFIXES)} file)."
        )


def _step_from_name(path: Path) -> int | None:
    m = _STEP_RE.match(path.stem)
    return int(m.group(1)) if m else None


def _read_meta(path: Path, metadata: Mapping[str, str] | None) -> CheckpointMeta | None:
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is None:
        return None
    try:
        return CheckpointMeta.model_validate_json(raw)
    except ValidationError as exc:
        raise StoreError(
            describe_validation_error(exc, f"{path} metadata {METADATA_KEY!r}")
            + "\nThe checkpoint header is corrupt; re-save the checkpoint."
        ) from None


def _read_safetensors(path: Path, *, load: bool) -> _Contents:
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = _read_meta(path, f.metadata())
            header = {}
            keys = list(f.keys())
            for key in keys:
                sliced = f.get_slice(key)
                code = sliced.get_dtype()
                header[key] = TensorSpec(
                    key=key,
                    shape=tuple(sliced.get_shape()),
                    dtype=_ST_DTYPES.get(code, code.lower()),
                )
            tensors = {key: f.get_tensor(key) for key in keys} if load else None
    except StoreError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError and OSError
        raise StoreError(
            f"cannot read {path} as safetensors ({exc}). The file is truncated or not a "
            "safetensors file; re-save it."
        ) from None
    n_params = sum(math.prod(spec.shape) for spec in header.values())
    aliases = meta.aliases if meta is not None else {}
    for alias, source in aliases.items():
        if source not in header:
            raise StoreError(
                f"{path}: tied weight {alias!r} points to {source!r}, which the file does "
                "not hold; the checkpoint is corrupt. Re-save it."
            )
        header[alias] = header[source].model_copy(update={"key": alias})
        if tensors is not None:
            tensors[alias] = tensors[source]
    if meta is not None:
        order = {t.key: i for i, t in enumerate(meta.fingerprint.tensors)}
        specs = tuple(sorted(header.values(), key=lambda t: order.get(t.key, len(order))))
        fp = _make_fingerprint(meta.fingerprint.model_class, meta.fingerprint.config, specs)
        step: int | None = meta.step
    else:
        fp = _make_fingerprint(None, None, tuple(header.values()))
        step = _step_from_name(path)
    return _Contents(path, "safetensors", fp, meta, step, n_params, tensors)


def _refusal(path: Path, exc: Exception) -> StoreError:
    reason = _ANSI_RE.sub("", str(exc)).strip().splitlines()
    said = reason[0] if reason else type(exc).__name__
    return StoreError(
        f"refusing to unpickle {path}: it stores Python objects besides tensors, and "
        "unpickling them can run arbitrary code (torch.load with weights_only=True said: "
        f"{said}). If you trust the file, convert it once to safetensors:\n"
        f"    sd = torch.load({str(path)!r}, weights_only=False)  # runs the file's code\n"
        "    sd = sd.get('model_state_dict', sd.get('state_dict', sd))\n"
        "    safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, "
        "'model.safetensors')\n"
        "then load model.safetensors."
    )


def _read_legacy(path: Path) -> _Contents:
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise _refusal(path, exc) from None
    except Exception as exc:
        raise StoreError(
            f"cannot read {path} as a torch checkpoint ({exc}); the file is truncated or "
            "not a torch.save file."
        ) from None
    if not isinstance(obj, Mapping):
        raise StoreError(
            f"{path} holds a {type(obj).__name__}; expected a state dict or a dict with "
            "'model_state_dict' or 'state_dict'."
        )
    state: Mapping[Any, Any] = obj
    for wrapper in ("model_state_dict", "state_dict"):
        if isinstance(obj.get(wrapper), Mapping):
            state = obj[wrapper]
            break
    bad = [
        repr(k)
        for k, v in state.items()
        if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if bad:
        raise StoreError(
            f"{path} is not a state dict: entries {', '.join(bad[:10])}"
            f"{' ...' if len(bad) > 10 else ''} are not str -> tensor. Expected a state "
            "dict or a dict with 'model_state_dict' or 'state_dict'."
        )
    tensors: dict[str, torch.Tensor] = dict(state)
    config: JsonValue = None
    if state is not obj and isinstance(obj.get("config"), Mapping):
        try:
            config = to_json_value(obj["config"], name="config")
        except ConfigError:
            config = None  # an unusable recorded config only disables the config check
    step = obj.get("step") if state is not obj else None
    if not isinstance(step, int) or isinstance(step, bool):
        step = _step_from_name(path)
    fp = _make_fingerprint(None, config, _specs(tensors))
    n_params = sum(t.numel() for t in {id(t): t for t in tensors.values()}.values())
    return _Contents(path, "torch", fp, None, step, n_params, tensors)


def _read(path: str | os.PathLike[str], *, load: bool) -> _Contents:
    file = Path(path)
    _check_file(file)
    if file.suffix == ".safetensors":
        return _read_safetensors(file, load=load)
    return _read_legacy(file)


def inspect_checkpoint(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Describe a checkpoint without loading it into a model.

    Reads only the header of a safetensors file; a legacy ``.pt`` file is read with
    ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file (or legacy ``.pt``/``.pth``/``.bin``).

    Returns
    -------
    CheckpointInfo
        Step, fingerprint, parameter count, size and every key's shape and dtype.

    Raises
    ------
    StoreError
        If the file is missing, unreadable, or a legacy file needing pickle code.
    """
    c = _read(path, load=False)
    return CheckpointInfo(
        path=c.path,
        format=c.format,
        step=c.step,
        fingerprint=c.fingerprint,
        n_params=c.n_params,
        total_bytes=c.path.stat().st_size,
        tensors=c.fingerprint.tensors,
        created_at=c.meta.created_at if c.meta is not None else None,
        extra=c.meta.extra if c.meta is not None else None,
    )


# ----------------------------------------------------------------------------- diffing


def _flatten(value: JsonValue, prefix: str) -> dict[str, JsonValue]:
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix or "config": value}


_ABSENT = object()


def _config_lines(a: JsonValue, b: JsonValue, label_a: str, label_b: str) -> list[str]:
    fa, fb = _flatten(a, ""), _flatten(b, "")
    lines = []
    for name in [*fa, *(k for k in fb if k not in fa)]:
        va, vb = fa.get(name, _ABSENT), fb.get(name, _ABSENT)
        # JSON has one number type: 1 and 1.0 are the same config value.
        same = (va == vb and type(va) is type(vb)) or (
            isinstance(va, int | float)
            and isinstance(vb, int | float)
            and not isinstance(va, bool)
            and not isinstance(vb, bool)
            and va == vb
        )
        if not same:
            sa = "<absent>" if va is _ABSENT else repr(va)
            sb = "<absent>" if vb is _ABSENT else repr(vb)
            lines.append(f"{name}: {label_a} {sa} vs {label_b} {sb}")
    return lines


def _compare(
    a: ModelFingerprint,
    b: ModelFingerprint,
    *,
    name_a: str,
    name_b: str,
    label_a: str,
    label_b: str,
) -> CheckpointDiff:
    specs_a = {t.key: t for t in a.tensors}
    specs_b = {t.key: t for t in b.tensors}
    missing = [t.key for t in b.tensors if t.key not in specs_a]
    unexpected = [t.key for t in a.tensors if t.key not in specs_b]
    shape_mismatch = [
        f"{t.key}: {label_a} {specs_a[t.key].describe()} vs {label_b} {t.describe()}"
        for t in b.tensors
        if t.key in specs_a and (specs_a[t.key].shape, specs_a[t.key].dtype) != (t.shape, t.dtype)
    ]
    config_diff = []
    if a.model_class and b.model_class and a.model_class != b.model_class:
        config_diff.append(f"model class: {label_a} {a.model_class} vs {label_b} {b.model_class}")
    if a.config is not None and b.config is not None:
        config_diff += _config_lines(a.config, b.config, label_a, label_b)
    return CheckpointDiff(
        a=name_a,
        b=name_b,
        label_a=label_a,
        label_b=label_b,
        missing=missing,
        unexpected=unexpected,
        shape_mismatch=shape_mismatch,
        config_diff=config_diff,
    )


def _side(obj: torch.nn.Module | str | os.PathLike[str]) -> tuple[ModelFingerprint, str, str]:
    if isinstance(obj, torch.nn.Module):
        fp = fingerprint(obj)
        return fp, f"model {fp.model_class}", "model"
    if isinstance(obj, str | os.PathLike):
        return _read(obj, load=False).fingerprint, f"checkpoint {Path(obj)}", "checkpoint"
    raise ConfigError(
        f"diff_checkpoint arguments must be checkpoint paths or torch.nn.Module; got "
        f"{type(obj).__name__}."
    )


def diff_checkpoint(
    a: torch.nn.Module | str | os.PathLike[str], b: torch.nn.Module | str | os.PathLike[str]
) -> CheckpointDiff:
    """List every difference between two checkpoints or models, read as "load a into b".

    Parameters
    ----------
    a, b : str, os.PathLike or torch.nn.Module
        Checkpoint files (only headers are read) or models (their ``config`` attribute
        is used when it is a dataclass or mapping).

    Returns
    -------
    CheckpointDiff
        ``missing``, ``unexpected``, ``shape_mismatch``, ``config_diff``, ``compatible``,
        and ``lines()`` / ``str()`` for printing.

    Examples
    --------
    >>> d = diff_checkpoint(torch.nn.Linear(3, 2), torch.nn.Linear(3, 4))
    >>> d.compatible
    False
    >>> print(d)
    model torch.nn.modules.linear.Linear does not fit model torch.nn.modules.linear.Linear:
      wrong shape or dtype [2]:
        weight: a (2, 3) float32 vs b (4, 3) float32
        bias: a (2,) float32 vs b (4,) float32
    """
    fa, name_a, kind_a = _side(a)
    fb, name_b, kind_b = _side(b)
    labels = (kind_a, kind_b) if kind_a != kind_b else ("a", "b")
    return _compare(fa, fb, name_a=name_a, name_b=name_b, label_a=labels[0], label_b=labels[1])


# ----------------------------------------------------------------------------- loading


def load_checkpoint(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    strict: bool = True,
    config: Any = None,
) -> ModelFingerprint:
    """Load a checkpoint into ``model``, refusing (by default) anything that does not fit.

    Parameters
    ----------
    model : torch.nn.Module
        Receives the weights in place.
    path : str or os.PathLike
        A ``.safetensors`` file from :func:`save_checkpoint`, a foreign safetensors file
        (keys and shapes are still checked) or a legacy ``.pt``/``.pth``/``.bin`` state
        dict, read only with ``torch.load(weights_only=True)``.
    strict : bool
        If True (default), any difference raises. If False, only the keys present in
        both with the same shape and dtype are loaded, and a :class:`PartialLoadWarning`
        lists every key left as it was and every config difference.
    config : dataclass, mapping or None
        The model's constructor config (default: ``model.config``). Configs are compared
        field by field when both the checkpoint and the model record one.

    Returns
    -------
    ModelFingerprint
        The checkpoint's recorded fingerprint (built from its tensors for files without
        one, with ``model_class`` None).

    Raises
    ------
    CheckpointMismatch
        With ``strict``, if any key is missing, unexpected or of another shape/dtype, or
        the class or config differs. The message lists every difference and the path;
        ``missing``, ``unexpected``, ``shape_mismatch`` and ``config_diff`` hold them.
    StoreError
        If the file is missing or unreadable, or is a legacy file that needs pickle code.
    """
    contents = _read(path, load=True)
    assert contents.tensors is not None  # load=True always reads them
    model_fp = fingerprint(model, config)
    diff = _compare(
        contents.fingerprint,
        model_fp,
        name_a=f"checkpoint {contents.path}",
        name_b=f"model {model_fp.model_class}",
        label_a="checkpoint",
        label_b="model",
    )
    if diff.compatible:
        model.load_state_dict(contents.tensors, strict=True)
        return contents.fingerprint
    report = "\n".join(diff.lines())
    if strict:
        raise CheckpointMismatch(
            f"{report}\nBuild the model with the checkpoint's architecture and config, or "
            "pass strict=False to load only the keys that fit (a PartialLoadWarning lists "
            "the rest). `traindyn checkpoint diff` prints this report.",
            missing=diff.missing,
            unexpected=diff.unexpected,
            shape_mismatch=diff.shape_mismatch,
            config_diff=diff.config_diff,
        )
    model_specs = {t.key: t for t in model_fp.tensors}
    fitting = {
        key: tensor
        for key, tensor in contents.tensors.items()
        if key in model_specs
        and (tuple(tensor.shape), _dtype_name(tensor.dtype))
        == (model_specs[key].shape, model_specs[key].dtype)
    }
    warnings.warn(
        f"strict=False: loaded {len(fitting)} of {len(model_specs)} model keys; the "
        f"others keep their current values.\n{report}",
        PartialLoadWarning,
        stacklevel=2,
    )
    model.load_state_dict(fitting, strict=False)
    return contents.fingerprint
