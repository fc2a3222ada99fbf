from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch
from torch import nn

from traindyn.capture import default_layers
from traindyn.exceptions import ConfigError
from traindyn.experiments import (
    CNN,
    MLP,
    MODELS,
    CNNConfig,
    Dataset,
    MLPConfig,
    Transformer,
    TransformerConfig,
    ZooModel,
    build_model,
    config_from_dict,
    config_to_dict,
    load_dataset,
    model_from_config,
)

ARCHS = sorted(MODELS)
DATASET_NAMES = ("digits", "mnist1d")


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    return {name: load_dataset(name) for name in DATASET_NAMES}


def _build(arch: str, ds: Dataset, seed: int = 0) -> ZooModel:
    torch.manual_seed(seed)
    return build_model(arch, input_shape=ds.input_shape, n_classes=ds.n_classes)


def test_registry_has_the_families() -> None:
    for name in ("mlp_narrow", "mlp_medium", "mlp_wide", "mlp_deep"):
        assert name in MODELS
    for name in ("cnn_shallow", "cnn_medium", "cnn_deep"):
        assert name in MODELS
    for name in ("transformer_shallow", "transformer_medium", "transformer_deep"):
        assert name in MODELS


@pytest.mark.parametrize(("arch", "dataset_name"), list(itertools.product(ARCHS, DATASET_NAMES)))
def test_forward_shape_and_layers(
    arch: str, dataset_name: str, datasets: dict[str, Dataset]
) -> None:
    ds = datasets[dataset_name]
    model = _build(arch, ds)
    out = model(ds.x_train[:64])
    assert tuple(out.shape) == (64, ds.n_classes)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()

    layers = default_layers(model)
    assert layers == model.default_layers()
    assert set(layers) <= dict(model.named_modules()).keys()

    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(path).register_forward_hook(
            lambda _m, _i, o, path=path: seen.__setitem__(path, o)
        )
        for path in layers
    ]
    try:
        model(ds.x_train[:8])
    finally:
        for handle in handles:
            handle.remove()
    assert list(seen) == layers  # called once each, in forward order
    for output in seen.values():
        assert isinstance(output, torch.Tensor)
        assert output.shape[0] == 8


@pytest.mark.parametrize("arch", ARCHS)
def test_config_round_trip(arch: str, datasets: dict[str, Dataset]) -> None:
    model = _build(arch, datasets["digits"])
    rebuilt = model_from_config(model.config)
    assert type(rebuilt) is type(model)
    assert rebuilt.config == model.config
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == shapes

    # Through JSON, as the config is stored in run.json and checkpoint fingerprints.
    data = json.loads(json.dumps(config_to_dict(model.config)))
    assert config_from_dict(data) == model.config


@pytest.mark.parametrize("arch", ARCHS)
def test_init_depends_only_on_the_callers_seed(arch: str, datasets: dict[str, Dataset]) -> None:
    ds = datasets["mnist1d"]
    a, b, c = _build(arch, ds, seed=0), _build(arch, ds, seed=0), _build(arch, ds, seed=1)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_constructor_does_not_seed() -> None:
    torch.manual_seed(0)
    build_model("transformer_shallow", input_shape=(1, 40), n_classes=10)
    after_one = torch.rand(1)
    torch.manual_seed(0)
    build_model("transformer_shallow", input_shape=(1, 40), n_classes=10)
    build_model("transformer_shallow", input_shape=(1, 40), n_classes=10)
    assert not torch.equal(torch.rand(1), after_one)


def test_transformer_layers_are_initialised_independently() -> None:
    torch.manual_seed(0)
    model = build_model("transformer_medium", input_shape=(1, 8, 8), n_classes=10)
    assert isinstance(model, Transformer)
    w0 = model.encoder.layers[0].linear1.weight
    w1 = model.encoder.layers[1].linear1.weight
    assert not torch.equal(w0, w1)


@pytest.mark.parametrize("arch", ["transformer_shallow", "transformer_medium"])
def test_transformer_is_deterministic_and_mode_independent(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, input_shape=(1, 40), n_classes=10)
    x = torch.randn(16, 1, 40)
    model.train()
    train_out = model(x)
    assert torch.equal(model(x), train_out)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), train_out, atol=1e-5)


def test_tokenisation() -> None:
    image = build_model("transformer_shallow", input_shape=(1, 8, 8), n_classes=10)
    signal = build_model("transformer_shallow", input_shape=(1, 40), n_classes=10)
    assert isinstance(image, Transformer)
    assert isinstance(signal, Transformer)
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert torch.equal(image.tokens(x)[0, 2], torch.arange(16.0, 24.0))  # row 2
    s = torch.arange(40.0).reshape(1, 1, 40)
    assert tuple(signal.tokens(s).shape) == (1, 10, 4)
    assert torch.equal(signal.tokens(s)[0, 3], torch.arange(12.0, 16.0))  # patch 3


def test_module_paths_are_readable() -> None:
    mlp = build_model("mlp_medium", input_shape=(1, 8, 8), n_classes=10)
    names = dict(mlp.named_modules())
    assert {"layers.0", "layers.0.linear", "layers.0.act", "layers.2", "head"} <= names.keys()
    cnn = build_model("cnn_medium", input_shape=(1, 8, 8), n_classes=10)
    assert isinstance(cnn.get_submodule("blocks.0.conv"), nn.Conv2d)
    cnn1d = build_model("cnn_medium", input_shape=(1, 40), n_classes=10)
    assert isinstance(cnn1d.get_submodule("blocks.0.conv"), nn.Conv1d)


def test_cnn_stops_pooling_at_width_one() -> None:
    torch.manual_seed(0)
    model = build_model("cnn_deep", input_shape=(1, 8, 8), n_classes=10)
    assert isinstance(model, CNN)
    pooled = [block.pool is not None for block in model.blocks]
    assert pooled == [True, True, True, False]  # 8 -> 4 -> 2 -> 1


def test_sgd_reduces_loss_on_digits(datasets: dict[str, Dataset]) -> None:
    ds = datasets["digits"]
    x, y = ds.x_train[:256], ds.y_train[:256]
    for arch in ("mlp_medium", "cnn_shallow", "transformer_shallow"):
        model = _build(arch, ds)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(30):
            loss = nn.functional.cross_entropy(model(x), y)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            losses.append(loss.detach().item())
        assert losses[-1] < 0.7 * losses[0], (arch, losses[0], losses[-1])


def test_unknown_arch_lists_names() -> None:
    with pytest.raises(ConfigError, match=r"arch must be one of .*'mlp_medium'.*got 'resnet50'"):
        build_model("resnet50", input_shape=(1, 8, 8), n_classes=10)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MLPConfig((1, 8, 8), 10, hidden=()), "hidden must be a non-empty"),
        (lambda: MLPConfig((1, 8, 8), 10, hidden=(32, 0)), "hidden must be"),
        (lambda: MLPConfig((1, 8, 8), 0), "n_classes must be a positive integer"),
        (lambda: MLPConfig((64,), 10), "input_shape must be"),
        (lambda: MLPConfig((1, 8, 8), 10, activation="swish"), "activation must be one of"),  # type: ignore[arg-type]
        (lambda: CNNConfig((1, 8, 8), 10, kernel_size=4), "kernel_size must be odd.*Use 5"),
        (lambda: TransformerConfig((1, 8, 8), 10, d_model=33), "d_model must be divisible"),
        (lambda: TransformerConfig((1, 40), 10, patch_size=3), "patch_size must divide"),
        (lambda: TransformerConfig((1, 8, 8), 10, dropout=1.0), r"dropout must be .*\[0, 1\)"),
    ],
)
def test_invalid_configs(make: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()  # type: ignore[operator]


def test_config_normalises_lists_to_tuples() -> None:
    config = MLPConfig([1, 8, 8], 10, hidden=[4, 4])  # type: ignore[arg-type]
    assert config == MLPConfig((1, 8, 8), 10, hidden=(4, 4))
    assert hash(config) == hash(MLPConfig((1, 8, 8), 10, hidden=(4, 4)))


def test_config_is_frozen() -> None:
    config = MLPConfig((1, 8, 8), 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden = (1,)  # type: ignore[misc]


def test_config_from_dict_errors() -> None:
    with pytest.raises(ConfigError, match="family must be one of"):
        config_from_dict({"family": "rnn", "input_shape": [1, 8, 8], "n_classes": 10})
    with pytest.raises(ConfigError, match="MLPConfig has no field"):
        config_from_dict({"family": "mlp", "input_shape": [1, 8, 8], "n_classes": 10, "x": 1})


def test_capture_validates_declared_default_layers() -> None:
    class Broken(nn.Module):
        def default_layers(self) -> list[str]:
            return ["nope"]

    with pytest.raises(ConfigError, match="'nope'"):
        default_layers(Broken())


def test_default_layers_per_family() -> None:
    mlp = build_model("mlp_deep", input_shape=(1, 40), n_classes=10)
    assert isinstance(mlp, MLP)
    assert default_layers(mlp) == [f"layers.{i}" for i in range(6)]
    tr = build_model("transformer_medium", input_shape=(1, 40), n_classes=10)
    assert default_layers(tr) == ["encoder.layers.0", "encoder.layers.1", "pool"]
