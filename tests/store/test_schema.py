"""Table schemas, the run.json model and config serialisation."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from traindyn.exceptions import ConfigError, StoreError
from traindyn.store import (
    METRICS_SCHEMA,
    SCALARS_SCHEMA,
    SCHEMA_VERSION,
    Run,
    RunManifest,
    open_run,
    to_json_value,
)


def test_table_schemas_match_the_store_contract() -> None:
    assert [(f.name, f.type, f.nullable) for f in METRICS_SCHEMA] == [
        ("step", pa.int64(), False),
        ("layer", pa.string(), False),
        ("metric", pa.string(), False),
        ("value", pa.float64(), False),
        ("reason", pa.string(), True),
    ]
    assert [(f.name, f.type) for f in SCALARS_SCHEMA] == [
        ("step", pa.int64()),
        ("name", pa.string()),
        ("value", pa.float64()),
    ]
    assert SCHEMA_VERSION == 1


@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    run = Run.create(tmp_path / "run", config={"lr": 0.1}, handle_signals=False)
    run.finish()
    return tmp_path / "run" / "run.json"


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_manifest_written_by_create_validates(manifest_file: Path) -> None:
    data = json.loads(manifest_file.read_text())
    manifest = RunManifest.model_validate(data)
    assert manifest.status == "finished"
    assert manifest.id == "run"
    assert manifest.config == {"lr": 0.1}
    assert manifest.versions.traindyn
    assert manifest.created_at.utcoffset() is not None
    assert data["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "done"}, "'status'"),
        ({"created_at": ...}, "'created_at' is missing"),
        ({"pid": "twelve"}, "'pid'"),
        ({"updated_at": "2024-01-01T00:00:00"}, "'updated_at'"),  # no timezone
        ({"surprise": 1}, "'surprise'"),
        ({"versions": {"python": "3.11"}}, "'versions.torch' is missing"),
    ],
)
def test_invalid_manifest_names_file_and_field(
    manifest_file: Path, changes: dict[str, object], field: str
) -> None:
    _edit(manifest_file, **changes)
    with pytest.raises(StoreError, match=rf"run\.json: field {field}"):
        open_run(manifest_file.parent)


def test_corrupt_manifest_json_names_file(manifest_file: Path) -> None:
    manifest_file.write_text('{"id": "run", "status": ')
    with pytest.raises(StoreError, match=r"run\.json is not valid JSON"):
        open_run(manifest_file.parent)


def test_newer_schema_version_asks_for_an_upgrade(manifest_file: Path) -> None:
    _edit(manifest_file, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=r"schema_version.*Upgrade traindyn"):
        open_run(manifest_file.parent)


class Act(enum.Enum):
    RELU = "relu"


@dataclasses.dataclass
class Inner:
    depth: int = 2
    act: Act = Act.RELU


@dataclasses.dataclass
class Outer:
    inner: Inner = dataclasses.field(default_factory=Inner)
    sizes: tuple[int, ...] = (4, 8)
    path: Path = Path("data/x")


def test_to_json_value_turns_configs_into_plain_json() -> None:
    assert to_json_value(Outer()) == {
        "inner": {"depth": 2, "act": "relu"},
        "sizes": [4, 8],
        "path": "data/x",
    }


def test_numeric_mapping_keys_become_strings_as_in_json() -> None:
    assert to_json_value({1: "x", 2.5: "y"}, name="config") == {"1": "x", "2.5": "y"}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"a": {"b": math.nan}}, r"config\.a\.b must be a finite number"),
        ({"a": [1, object()]}, r"config\.a\[1\] must be JSON-serialisable"),
        ({(1, 2): "x"}, "keys must be strings"),
    ],
)
def test_to_json_value_names_the_bad_field(value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        to_json_value(value)
