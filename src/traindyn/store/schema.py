"""Table schemas, the ``run.json`` manifest model and the schema version.

Everything here is data: the pyarrow schemas of the two long tables every run holds, the
pydantic models that ``run.json`` and checkpoint side-cars are validated against when they
are read, and :func:`to_json_value`, which turns a user's config object into plain JSON.

The tables (one row per measurement, so that pandas, polars, DuckDB and Spark read them
without traindyn)::

    metrics  step:int64  layer:string  metric:string  value:float64  reason:string|null
    scalars  step:int64  name:string   value:float64

``reason`` says why ``value`` is NaN (for example ``"MetricError: X must have at least 2
samples"``) and is null otherwise. ``layer`` holds ``named_modules()`` paths such as
``encoder.layers.0/attn`` verbatim: they are column values, never path components.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

import pyarrow as pa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

from traindyn.exceptions import ConfigError

__all__ = [
    "METRICS_SCHEMA",
    "SCALARS_SCHEMA",
    "SCHEMA_VERSION",
    "ModelFingerprint",
    "PredictionLock",
    "RunManifest",
    "RunStatus",
    "TensorSpec",
    "Versions",
    "to_json_value",
]

SCHEMA_VERSION = 1
"""Version of the run layout, the table schemas and ``run.json``.

Bumped on any incompatible change; a reader refuses a run written with a newer version.
"""

_META = {b"traindyn.schema_version": str(SCHEMA_VERSION).encode()}

METRICS_SCHEMA = pa.schema(
    [
        pa.field("step", pa.int64(), nullable=False),
        pa.field("layer", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("reason", pa.string(), nullable=True),
    ],
    metadata=_META,
)
"""Schema of ``metrics/part-*.parquet``: one row per (step, layer, metric)."""

SCALARS_SCHEMA = pa.schema(
    [
        pa.field("step", pa.int64(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ],
    metadata=_META,
)
"""Schema of ``scalars/part-*.parquet``: one row per (step, name), e.g. the loss."""

RunStatus = Literal["running", "finished", "failed"]
"""Status recorded in ``run.json``. A run killed with SIGKILL stays ``"running"``."""


class TensorSpec(BaseModel):
    """Name, shape and dtype of one state-dict entry.

    Parameters
    ----------
    key : str
        State-dict key, e.g. ``"encoder.0.weight"``.
    shape : tuple of int
        Tensor shape; ``()`` for a scalar.
    dtype : str
        torch dtype name without the ``torch.`` prefix, e.g. ``"float32"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    shape: tuple[int, ...]
    dtype: str

    def describe(self) -> str:
        """Return ``"(a, b) float32"``, the form used in mismatch messages.

        Examples
        --------
        >>> TensorSpec(key="w", shape=(3, 4), dtype="float32").describe()
        '(3, 4) float32'
        """
        return f"{self.shape} {self.dtype}"


class ModelFingerprint(BaseModel):
    """Architecture fingerprint of a model: class, config and every state-dict key.

    Built by :func:`traindyn.store.fingerprint`. ``hash`` covers the class, the config and
    the keys, shapes and dtypes, never the weights, so two checkpoints of one architecture
    share it.

    Parameters
    ----------
    model_class : str or None
        ``module.qualname`` of the model class; None when the file did not record it
        (a legacy ``.pt`` or a foreign safetensors file).
    config : JSON value or None
        Constructor config as plain JSON; None when unknown.
    tensors : tuple of TensorSpec
        Every state-dict entry, in state-dict order.
    hash : str
        Hex sha256 of the canonical JSON of (model_class, config, tensors).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_class: str | None
    config: JsonValue = None
    tensors: tuple[TensorSpec, ...]
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    @property
    def keys(self) -> list[str]:
        """State-dict keys in order."""
        return [t.key for t in self.tensors]

    @property
    def n_params(self) -> int:
        """Total number of elements over all tensors (buffers included)."""
        return sum(math.prod(t.shape) for t in self.tensors)


class Versions(BaseModel):
    """Library versions of the process that created or resumed a run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str
    torch: str | None
    numpy: str | None
    traindyn: str


class PredictionLock(BaseModel):
    """A predictions file frozen into ``run.json``: what was predicted, and when.

    Parameters
    ----------
    sha256 : str
        Hex SHA-256 of the file's bytes at lock time.
    content : str
        The file's text (UTF-8) at lock time: the predictions that are judged.
    source : str
        The path the file was locked from (absolute), so later edits can be noticed.
    locked_at : datetime (UTC)
        When it was locked.
    late : bool
        True when the run already held data at lock time (``--late``): shown beside every
        verdict, since predictions made after seeing data are not pre-registered.
    rows_at_lock, last_step_at_lock : int, int or None
        How much the run held when it was locked (0 and None when it was empty).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content: str
    source: str
    locked_at: AwareDatetime
    late: bool = False
    rows_at_lock: int = Field(default=0, ge=0)
    last_step_at_lock: int | None = None


class RunManifest(BaseModel):
    """Contents of ``run.json``, validated whenever it is read.

    Parameters
    ----------
    schema_version : int
        :data:`SCHEMA_VERSION` of the writer.
    id : str
        Run id; the directory name when the run was created.
    status : {"running", "finished", "failed"}
        ``"running"`` until :meth:`Run.finish`; a run killed with SIGKILL stays
        ``"running"``, see :attr:`Run.is_stale`.
    error : str or None
        Why the run failed, e.g. ``"interrupted by SIGTERM"``.
    config, probe : JSON value or None
        Experiment config and probe description, as plain JSON.
    model_fingerprint : ModelFingerprint or None
        Architecture of the model being measured.
    versions : Versions
        Library versions of the writing process.
    created_at, updated_at, finished_at : datetime (UTC)
        ``updated_at`` is the heartbeat: rewritten at every flush.
    pid, hostname : int, str
        Process that writes the run; used to tell a live run from a killed one.
    predictions : PredictionLock or None
        The pre-registered predictions locked into this run (``traindyn predictions lock``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(ge=1)
    id: str = Field(min_length=1)
    status: RunStatus
    error: str | None = None
    config: JsonValue = None
    model_fingerprint: ModelFingerprint | None = None
    probe: JsonValue = None
    versions: Versions
    created_at: AwareDatetime
    updated_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    pid: int | None = None
    hostname: str | None = None
    predictions: PredictionLock | None = None


def describe_validation_error(error: ValidationError, source: str) -> str:
    """Return one line per pydantic error: ``"<source>: field 'a.b' <msg>; got <input>"``."""
    lines = []
    for e in error.errors():
        loc = ".".join(str(part) for part in e["loc"]) or "<root>"
        if e["type"] == "missing":
            lines.append(f"{source}: field {loc!r} is missing")
        else:
            got = repr(e.get("input"))
            got = got if len(got) <= 80 else got[:77] + "..."
            lines.append(f"{source}: field {loc!r}: {e['msg']}; got {got}")
    return "\n".join(lines)


def to_json_value(obj: Any, *, name: str = "config") -> JsonValue:
    """Return ``obj`` as plain JSON (dict, list, str, int, float, bool or None).

    Dataclasses and pydantic models become dicts of their fields, mappings become dicts
    with string keys, tuples and lists become lists, enums their value and paths strings.

    Parameters
    ----------
    obj : object
        A config: dataclass, pydantic model, mapping, sequence or scalar.
    name : str
        Name used in error messages; nested fields are reported as ``name.field``.

    Raises
    ------
    ConfigError
        If a field holds a value JSON cannot represent (an object, NaN, a non-string key).

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Cfg:
    ...     width: int = 8
    ...     layers: tuple[str, ...] = ("a", "b")
    >>> to_json_value(Cfg())
    {'width': 8, 'layers': ['a', 'b']}
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ConfigError(
                f"{name} must be a finite number to be stored as JSON; got {obj!r}. "
                "Store it as a string or None."
            )
        return obj
    if isinstance(obj, enum.Enum):
        return to_json_value(obj.value, name=name)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, BaseModel):
        return to_json_value(obj.model_dump(mode="json"), name=name)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_json_value(getattr(obj, f.name), name=f"{name}.{f.name}")
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, Mapping):
        out: dict[str, JsonValue] = {}
        for key, value in obj.items():
            if isinstance(key, int | float) and not isinstance(key, bool):
                key = str(key)  # as json.dumps does (e.g. Hugging Face's id2label)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{name} keys must be strings to be stored as JSON; got key {key!r}. "
                    "Convert the keys with str()."
                )
            out[key] = to_json_value(value, name=f"{name}.{key}")
        return out
    if isinstance(obj, Sequence) and not isinstance(obj, bytes | bytearray):
        return [to_json_value(v, name=f"{name}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:
        # numpy scalars and 0-d tensors: their Python value is what the user meant.
        return to_json_value(obj.item(), name=name)
    raise ConfigError(
        f"{name} must be JSON-serialisable (a dataclass, mapping, list, str, int, float, "
        f"bool or None); got {type(obj).__module__}.{type(obj).__qualname__} {obj!r:.60}. "
        "Pass a plain-data config instead."
    )


def canonical_json(value: JsonValue) -> str:
    """Return ``value`` as compact JSON with sorted keys (stable input for hashing).

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
