"""Checkpoints: safetensors round trips, fingerprints, strict loading with a full diff."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch
from torch import nn

import traindyn.store
from traindyn.exceptions import CheckpointMismatch, ConfigError, StoreError
from traindyn.store import (
    CheckpointMeta,
    PartialLoadWarning,
    Run,
    diff_checkpoint,
    fingerprint,
    inspect_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    latent: int = 4
    curvature: float = 1.0
    max_radius: float = 0.95
    use_controller: bool = True


class TernaryVAE(nn.Module):
    """Shaped like the seeds' model: ``use_controller`` adds projection layers."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, config.latent))
        self.decoder = nn.Linear(config.latent, 8)
        if config.use_controller:
            self.controller = nn.ModuleDict(
                {
                    "proj_in": nn.Linear(config.latent, config.latent),
                    "proj_out": nn.Linear(config.latent, config.latent),
                    "norm": nn.LayerNorm(config.latent),
                }
            )
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.int64))


CONTROLLER_KEYS = [
    f"controller.{m}.{p}" for m in ("proj_in", "proj_out", "norm") for p in ("weight", "bias")
]


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


class Mixed(nn.Module):
    """Every dtype we store, special float values and a non-contiguous parameter."""

    def __init__(self) -> None:
        super().__init__()
        special = torch.tensor([float("nan"), -0.0, float("inf"), 1e-45, 0.1])
        self.f32 = nn.Parameter(torch.cat([special, torch.randn(7)]).reshape(3, 4))
        self.f64 = nn.Parameter(torch.randn(5, dtype=torch.float64) / 3)
        self.bf16 = nn.Parameter(torch.randn(6).to(torch.bfloat16))
        self.transposed = nn.Parameter(torch.randn(3, 5).t())
        self.register_buffer("count", torch.tensor([2**62, -7], dtype=torch.int64))
        self.register_buffer("mask", torch.tensor([True, False]))
        self.register_buffer("empty", torch.zeros(0, 3))


def _bits(t: torch.Tensor) -> bytes:
    return bytes(t.detach().reshape(-1).contiguous().view(torch.uint8).tolist())


def _same(a: nn.Module, b: nn.Module, key: str) -> bool:
    return torch.equal(a.state_dict()[key], b.state_dict()[key])


def _no_temporaries(directory: Path) -> None:
    assert [p.name for p in directory.rglob(".*")] == []


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = Mixed()
    assert not saved.transposed.is_contiguous()
    path = save_checkpoint(saved, tmp_path, step=3)
    assert path == tmp_path / "step-3.safetensors"
    _no_temporaries(tmp_path)

    loaded = Mixed()
    fp = load_checkpoint(loaded, path)
    assert fp == fingerprint(saved)
    for key, value in saved.state_dict().items():
        got = loaded.state_dict()[key]
        assert got.dtype == value.dtype, key
        assert got.shape == value.shape, key
        assert _bits(got) == _bits(value), key


def test_side_car_and_header_metadata(tmp_path: Path) -> None:
    model = TernaryVAE(VAEConfig())
    path = save_checkpoint(model, tmp_path, 7, extra={"epoch": 2, "val_loss": 0.25})
    meta = CheckpointMeta.model_validate_json(path.with_suffix(".json").read_text())
    assert meta.step == 7
    assert meta.extra == {"epoch": 2, "val_loss": 0.25}
    assert meta.fingerprint == fingerprint(model)
    assert meta.fingerprint.config == dataclasses.asdict(VAEConfig())
    with safetensors.safe_open(str(path), framework="pt") as f:
        embedded = CheckpointMeta.model_validate_json(f.metadata()["traindyn.checkpoint"])
    assert embedded == meta

    path.with_suffix(".json").unlink()  # the safetensors file is self-describing
    assert load_checkpoint(TernaryVAE(VAEConfig()), path) == meta.fingerprint


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path: Path) -> None:
    model = TiedLM()
    path = save_checkpoint(model, tmp_path, 0)
    with safetensors.safe_open(str(path), framework="pt") as f:
        assert list(f.keys()) == ["embed.weight"]
    info = inspect_checkpoint(path)
    assert [t.key for t in info.tensors] == ["embed.weight", "head.weight"]
    assert info.n_params == 40  # counted once

    fresh = TiedLM()
    load_checkpoint(fresh, path)
    assert fresh.head.weight is fresh.embed.weight
    assert torch.equal(fresh.embed.weight, model.embed.weight)


def test_partially_shared_storage_is_copied(tmp_path: Path) -> None:
    class Views(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            base = torch.arange(12.0)
            self.first: torch.Tensor
            self.second: torch.Tensor
            self.register_buffer("first", base[:6].view(2, 3))
            self.register_buffer("second", base[6:].view(2, 3))

    model = Views()
    path = save_checkpoint(model, tmp_path, 0)
    fresh = Views()
    fresh.first.zero_()
    fresh.second.zero_()
    load_checkpoint(fresh, path)
    assert fresh.second.tolist() == [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]


def test_save_into_a_run(tmp_path: Path) -> None:
    run = Run.create(tmp_path / "r", handle_signals=False)
    model = TernaryVAE(VAEConfig())
    for step in (10, 0):
        save_checkpoint(model, run, step)
    save_checkpoint(model, run.path, 5)
    assert run.checkpoints() == [0, 5, 10]
    assert run.checkpoint_path(5) == tmp_path / "r" / "checkpoints" / "step-5.safetensors"
    run.finish()
    _no_temporaries(tmp_path)


def test_save_refuses_a_negative_step(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="step must be an integer >= 0; got -1"):
        save_checkpoint(nn.Linear(2, 2), tmp_path, -1)


def test_fingerprint_hashes_architecture_not_weights() -> None:
    a, b = TernaryVAE(VAEConfig()), TernaryVAE(VAEConfig())
    assert not torch.equal(a.state_dict()["encoder.0.weight"], b.state_dict()["encoder.0.weight"])
    assert fingerprint(a).hash == fingerprint(b).hash
    assert fingerprint(a).model_class == f"{__name__}.TernaryVAE"
    assert fingerprint(a).hash != fingerprint(TernaryVAE(VAEConfig(curvature=2.0))).hash
    assert fingerprint(a).hash != fingerprint(a, config={"other": 1}).hash
    assert fingerprint(a, config={"other": 1}).config == {"other": 1}
    assert fingerprint(nn.Linear(2, 2)).config is None
    steps = next(t for t in fingerprint(a).tensors if t.key == "steps_seen")
    assert (steps.shape, steps.dtype) == ((), "int64")


def test_fingerprint_reports_an_unserialisable_config() -> None:
    model = nn.Linear(2, 2)
    model.config = {"act": torch.relu}  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"Linear\.config\.act must be JSON-serialisable"):
        fingerprint(model)


def test_use_controller_mismatch_lists_every_difference(tmp_path: Path) -> None:
    path = save_checkpoint(TernaryVAE(VAEConfig(use_controller=True)), tmp_path, 100)
    model = TernaryVAE(VAEConfig(curvature=2.0, max_radius=0.99, use_controller=False))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(model, path)
    err = info.value
    assert err.unexpected == CONTROLLER_KEYS
    assert err.missing == []
    assert err.shape_mismatch == []
    assert err.config_diff == [
        "curvature: checkpoint 1.0 vs model 2.0",
        "max_radius: checkpoint 0.95 vs model 0.99",
        "use_controller: checkpoint True vs model False",
    ]
    message = str(err)
    assert str(path) in message
    for line in [*CONTROLLER_KEYS, *err.config_diff]:
        assert line in message
    assert "strict=False" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    path = save_checkpoint(TernaryVAE(VAEConfig(use_controller=False)), tmp_path, 1)
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(TernaryVAE(VAEConfig(use_controller=True)), path)
    assert info.value.missing == CONTROLLER_KEYS
    assert info.value.unexpected == []
    assert info.value.config_diff == ["use_controller: checkpoint False vs model True"]


def test_shape_and_dtype_mismatches_are_listed(tmp_path: Path) -> None:
    path = save_checkpoint(TernaryVAE(VAEConfig(latent=4)), tmp_path, 1)
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(TernaryVAE(VAEConfig(latent=6)), path)
    lines = info.value.shape_mismatch
    assert "encoder.2.weight: checkpoint (4, 16) float32 vs model (6, 16) float32" in lines
    assert "controller.norm.bias: checkpoint (4,) float32 vs model (6,) float32" in lines
    assert len(lines) == 9  # encoder.2 (2), decoder.weight, controller (6)
    assert info.value.config_diff == ["latent: checkpoint 4 vs model 6"]

    double = TernaryVAE(VAEConfig()).double()
    with pytest.raises(
        CheckpointMismatch,
        match=re.escape("encoder.0.weight: checkpoint (16, 8) float32 vs model (16, 8) float64"),
    ):
        load_checkpoint(double, path)


def test_model_class_difference_is_reported(tmp_path: Path) -> None:
    class Other(TernaryVAE):
        pass

    path = save_checkpoint(TernaryVAE(VAEConfig()), tmp_path, 1)
    with pytest.raises(
        CheckpointMismatch, match=r"model class: checkpoint .*TernaryVAE vs model .*Other"
    ):
        load_checkpoint(Other(VAEConfig()), path)


def test_non_strict_load_warns_and_loads_what_fits(tmp_path: Path) -> None:
    saved = TernaryVAE(VAEConfig(use_controller=True))
    path = save_checkpoint(saved, tmp_path, 1)
    model = TernaryVAE(VAEConfig(use_controller=False, curvature=2.0))
    with pytest.warns(
        PartialLoadWarning,
        match=r"(?s)loaded 7 of 7 model keys.*controller\.proj_in\.weight"
        r".*curvature: checkpoint 1\.0 vs model 2\.0",
    ):
        load_checkpoint(model, path, strict=False)
    assert _same(model, saved, "encoder.0.weight")

    small = TernaryVAE(VAEConfig(latent=6, use_controller=False))
    before = small.decoder.weight.clone()
    with pytest.warns(PartialLoadWarning, match="loaded 4 of 7 model keys"):
        load_checkpoint(small, path, strict=False)
    assert _same(small, saved, "encoder.0.weight")  # fits: loaded
    assert torch.equal(small.decoder.weight, before)  # wrong shape: left alone


def test_explicit_config_is_compared(tmp_path: Path) -> None:
    path = save_checkpoint(nn.Linear(3, 3), tmp_path, 1, config={"width": 3, "act": "relu"})
    load_checkpoint(nn.Linear(3, 3), path)  # no model config: nothing to compare
    load_checkpoint(nn.Linear(3, 3), path, config={"width": 3.0, "act": "relu"})
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(nn.Linear(3, 3), path, config={"width": 3, "act": "gelu", "bias": True})
    assert info.value.config_diff == [
        "act: checkpoint 'relu' vs model 'gelu'",
        "bias: checkpoint <absent> vs model True",
    ]


def test_diff_checkpoint(tmp_path: Path) -> None:
    with_ctrl = save_checkpoint(TernaryVAE(VAEConfig()), tmp_path / "a", 1)
    without = save_checkpoint(TernaryVAE(VAEConfig(use_controller=False)), tmp_path / "b", 1)

    same = diff_checkpoint(with_ctrl, TernaryVAE(VAEConfig()))
    assert same.compatible
    assert "fits" in str(same)

    d = diff_checkpoint(with_ctrl, without)
    assert not d.compatible
    assert d.unexpected == CONTROLLER_KEYS
    assert d.missing == []
    assert d.config_diff == ["use_controller: a True vs b False"]
    text = d.lines()
    assert text[0] == f"checkpoint {with_ctrl} does not fit checkpoint {without}:"
    assert "  unexpected (in the a, not in the b) [6]:" in text
    assert "    controller.norm.bias" in text

    reverse = diff_checkpoint(TernaryVAE(VAEConfig(use_controller=False)), with_ctrl)
    assert reverse.missing == CONTROLLER_KEYS
    assert reverse.config_diff == ["use_controller: model False vs checkpoint True"]
    with pytest.raises(ConfigError, match=r"checkpoint paths or torch\.nn\.Module; got int"):
        diff_checkpoint(3, with_ctrl)  # type: ignore[arg-type]


def test_inspect_checkpoint(tmp_path: Path) -> None:
    model = TernaryVAE(VAEConfig())
    path = save_checkpoint(model, tmp_path, 42, extra={"epoch": 1})
    info = inspect_checkpoint(path)
    assert info.step == 42
    assert info.format == "safetensors"
    assert info.fingerprint == fingerprint(model)
    assert info.n_params == sum(v.numel() for v in model.state_dict().values())
    assert info.total_bytes == path.stat().st_size
    assert [(t.key, t.shape, t.dtype) for t in info.tensors] == [
        (k, tuple(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in model.state_dict().items()
    ]
    assert info.extra == {"epoch": 1}
    text = str(info)
    assert "step: 42" in text
    assert "use_controller: True" in text
    assert "encoder.0.weight: (16, 8) float32" in text


def test_foreign_safetensors_file(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(dict(model.state_dict()), str(path))
    fresh = nn.Linear(3, 2)
    fp = load_checkpoint(fresh, path)
    assert fp.model_class is None
    assert torch.equal(fresh.weight, model.weight)
    assert inspect_checkpoint(path).step is None
    with pytest.raises(
        CheckpointMismatch, match=r"weight: checkpoint \(2, 3\) float32 vs model \(4, 3\)"
    ):
        load_checkpoint(nn.Linear(3, 4), path)


@pytest.mark.parametrize(
    ("wrap", "step"),
    [
        (lambda sd: sd, None),
        (lambda sd: {"model_state_dict": sd, "epoch": 3, "step": 100}, 100),
        (lambda sd: {"state_dict": sd, "optimizer": {"lr": 0.1}}, None),
    ],
    ids=["bare", "model_state_dict", "state_dict"],
)
def test_legacy_pt_loads_with_weights_only(
    tmp_path: Path, wrap: Callable[[dict[str, torch.Tensor]], object], step: int | None
) -> None:
    model = TernaryVAE(VAEConfig())
    path = tmp_path / "legacy.pt"
    torch.save(wrap(dict(model.state_dict())), path)
    fresh = TernaryVAE(VAEConfig())
    fp = load_checkpoint(fresh, path)
    assert fp.model_class is None
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in model.state_dict().items())
    info = inspect_checkpoint(path)
    assert info.format == "torch"
    assert info.step == step


def test_legacy_config_is_compared(tmp_path: Path) -> None:
    model = TernaryVAE(VAEConfig(use_controller=False))
    path = tmp_path / "best.pth"
    cfg = dataclasses.asdict(VAEConfig(use_controller=True))
    torch.save({"model_state_dict": model.state_dict(), "config": cfg}, path)
    with pytest.raises(CheckpointMismatch, match="use_controller: checkpoint True vs model False"):
        load_checkpoint(TernaryVAE(VAEConfig(use_controller=False)), path)


class Evil:
    """Unpickling this would create a file: proof that pickle code ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.sentinel,))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": nn.Linear(2, 2).state_dict(), "hook": Evil(sentinel)}, path)
    with pytest.raises(StoreError, match=r"(?s)refusing to unpickle .*evil\.pt.*safetensors"):
        load_checkpoint(nn.Linear(2, 2), path)
    with pytest.raises(StoreError, match="refusing to unpickle"):
        inspect_checkpoint(path)
    assert not sentinel.exists()


def test_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "step-1.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(StoreError, match=r"cannot read .*step-1\.safetensors as safetensors"):
        inspect_checkpoint(bad)
    with pytest.raises(StoreError, match="no checkpoint file at"):
        inspect_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(StoreError, match=r"has suffix '\.npz'; expected \.safetensors"):
        inspect_checkpoint(tmp_path / "weights.npz")
    with pytest.raises(StoreError, match="is a directory"):
        load_checkpoint(nn.Linear(2, 2), tmp_path)
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(StoreError, match="holds a list; expected a state dict"):
        inspect_checkpoint(tmp_path / "list.pt")


def test_store_never_unpickles() -> None:
    for source in Path(traindyn.store.__file__).parent.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            assert name not in ("pickle.load", "pickle.loads", "load", "loads"), source
            if name == "torch.load":
                kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert kwargs.get("weights_only") == "True", (source, ast.unparse(node))
