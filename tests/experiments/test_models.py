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
    ViT,
    ViTConfig,
    ZooModel,
    build_model,
    config_from_dict,
    config_to_dict,
    load_dataset,
    model_from_config,
)

ARCHS = sorted(MODELS)
TOKEN_ARCHS = sorted(name for name, spec in MODELS.items() if "tokens" in spec.input_kinds)
DATASET_NAMES = ("digits", "mnist1d")
TOKEN_DATASET_NAMES = ("modular_addition", "sequences")
CASES = [
    *itertools.product(ARCHS, DATASET_NAMES),
    *itertools.product(TOKEN_ARCHS, TOKEN_DATASET_NAMES),
]


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    return {name: load_dataset(name) for name in (*DATASET_NAMES, *TOKEN_DATASET_NAMES)}


def _build(arch: str, ds: Dataset, seed: int = 0) -> ZooModel:
    torch.manual_seed(seed)
    return build_model(
        arch, input_shape=ds.input_shape, n_classes=ds.n_classes, vocab_size=ds.vocab_size
    )


def _adam_losses(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 1e-3
) -> list[float]:
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(loss.detach().item())
    return losses


def test_registry_has_the_families() -> None:
    for name in ("mlp_narrow", "mlp_medium", "mlp_wide", "mlp_deep"):
        assert name in MODELS
    for name in ("cnn_shallow", "cnn_medium", "cnn_deep"):
        assert name in MODELS
    for name in ("transformer_shallow", "transformer_medium", "transformer_deep"):
        assert name in MODELS
    for name in ("vit_shallow", "vit_medium", "vit_deep", "transformer_grokking"):
        assert name in MODELS
    assert set(TOKEN_ARCHS) == {a for a in MODELS if a.startswith(("mlp_", "transformer_"))}
    assert all("continuous" in spec.input_kinds for spec in MODELS.values())


@pytest.mark.parametrize(("arch", "dataset_name"), CASES)
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


@pytest.mark.parametrize(
    ("arch", "dataset_name"),
    [*((a, "digits") for a in ARCHS), *((a, "modular_addition") for a in TOKEN_ARCHS)],
)
def test_config_round_trip(arch: str, dataset_name: str, datasets: dict[str, Dataset]) -> None:
    model = _build(arch, datasets[dataset_name])
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
        (lambda: TransformerConfig((3,), 10), r"got \(3,\), a token sequence.*vocab_size="),
        (lambda: TransformerConfig((1, 8, 8), 10, vocab_size=98), r"\(length,\) for token"),
        (lambda: TransformerConfig((3,), 10, vocab_size=1), "vocab_size must be an integer >= 2"),
        (lambda: MLPConfig((3,), 10, vocab_size=98, embed_dim=0), "embed_dim must be a positive"),
        (lambda: ViTConfig((1, 8, 8), 10, patch_size=3), r"patch_size must divide.*\[1, 2, 4, 8\]"),
        (lambda: ViTConfig((1, 8, 8), 10, d_model=33), "d_model must be divisible"),
        (lambda: ViTConfig((1, 8, 8), 10, pool="max"), "pool must be one of 'mean', 'cls'"),  # type: ignore[arg-type]
        (lambda: ViTConfig((1, 8, 8), 10, dropout=-0.1), r"dropout must be .*\[0, 1\)"),
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


# --------------------------------------------------------------------------------- ViT


@pytest.mark.parametrize(
    ("input_shape", "patch_size", "n_tokens"),
    [((1, 8, 8), 2, 16), ((1, 28, 28), 7, 16), ((3, 32, 32), 8, 16), ((1, 40), 2, 20)],
)
def test_vit_chooses_about_sixteen_patches(
    input_shape: tuple[int, ...], patch_size: int, n_tokens: int
) -> None:
    config = ViTConfig(input_shape, 10)
    assert config.patch_size == patch_size
    assert config == ViTConfig(input_shape, 10, patch_size=patch_size)  # resolved and stored
    model = ViT(config)
    assert model.patches.n_tokens == n_tokens
    assert tuple(model.pos_embedding.shape) == (n_tokens, 32)
    out = model(torch.randn(5, *input_shape))
    assert tuple(out.shape) == (5, 10)


def test_vit_patches_are_square_blocks_in_row_major_order() -> None:
    model = ViT(ViTConfig((1, 8, 8), 10))
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    tokens = model.patches(x)
    assert tuple(tokens.shape) == (1, 16, 4)
    assert tokens[0, 0].tolist() == [0.0, 1.0, 8.0, 9.0]
    assert tokens[0, 1].tolist() == [2.0, 3.0, 10.0, 11.0]
    assert tokens[0, 4].tolist() == [16.0, 17.0, 24.0, 25.0]
    assert tokens[0, 15].tolist() == [54.0, 55.0, 62.0, 63.0]
    # Channels first within a patch, as a stride-P convolution sees them.
    two = ViT(ViTConfig((2, 4, 4), 10, patch_size=2))
    x2 = torch.arange(32.0).reshape(1, 2, 4, 4)
    assert two.patches(x2)[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0, 16.0, 17.0, 20.0, 21.0]
    signal = ViT(ViTConfig((1, 40), 10, patch_size=4))
    s = torch.arange(40.0).reshape(1, 1, 40)
    assert signal.patches(s)[0, 3].tolist() == [12.0, 13.0, 14.0, 15.0]


def test_vit_patch_embedding_equals_a_strided_convolution() -> None:
    torch.manual_seed(0)
    model = ViT(ViTConfig((3, 8, 8), 10, patch_size=4))
    x = torch.randn(2, 3, 8, 8)
    conv = nn.Conv2d(3, 32, 4, stride=4)
    with torch.no_grad():
        conv.weight.copy_(model.embed.weight.reshape(32, 3, 4, 4))
        conv.bias.copy_(model.embed.bias)
        expected = conv(x).flatten(2).transpose(1, 2)
        assert torch.allclose(model.embed(model.patches(x)), expected, atol=1e-5)


def test_vit_cls_pooling_reads_the_prepended_token() -> None:
    torch.manual_seed(0)
    model = ViT(ViTConfig((1, 8, 8), 10, pool="cls"))
    assert model.cls_token is not None
    assert tuple(model.pos_embedding.shape) == (17, 32)
    seen: dict[str, torch.Tensor] = {}
    model.encoder.register_forward_hook(lambda _m, _i, o: seen.__setitem__("enc", o))
    model.pool.register_forward_hook(lambda _m, _i, o: seen.__setitem__("pool", o))
    model(torch.randn(4, 1, 8, 8))
    assert tuple(seen["enc"].shape) == (4, 17, 32)
    assert torch.equal(seen["pool"], seen["enc"][:, 0])
    assert ViT(ViTConfig((1, 8, 8), 10)).cls_token is None


@pytest.mark.parametrize("arch", ["vit_shallow", "vit_medium", "transformer_shallow"])
def test_gradients_reach_every_parameter(arch: str, datasets: dict[str, Dataset]) -> None:
    ds = datasets["digits"]
    model = _build(arch, ds)
    nn.functional.cross_entropy(model(ds.x_train[:32]), ds.y_train[:32]).backward()  # type: ignore[no-untyped-call]
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert float(param.grad.abs().sum()) > 0, name


def test_vit_layers_are_initialised_independently_and_mode_independent() -> None:
    torch.manual_seed(0)
    model = build_model("vit_deep", input_shape=(1, 28, 28), n_classes=10)
    assert isinstance(model, ViT)
    assert model.default_layers() == [*(f"encoder.layers.{i}" for i in range(4)), "pool"]
    assert not torch.equal(
        model.encoder.layers[0].linear1.weight, model.encoder.layers[1].linear1.weight
    )
    x = torch.randn(3, 1, 28, 28)
    train_out = model(x)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), train_out, atol=1e-5)


def test_adam_reduces_vit_loss_on_digits(datasets: dict[str, Dataset]) -> None:
    ds = datasets["digits"]
    losses = _adam_losses(_build("vit_shallow", ds), ds.x_train[:128], ds.y_train[:128], 30, 1e-2)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


# ------------------------------------------------------------------------------ tokens


def test_token_transformer_embeds_ids_with_a_lookup_table() -> None:
    torch.manual_seed(0)
    model = build_model("transformer_shallow", input_shape=(3,), n_classes=97, vocab_size=98)
    assert isinstance(model, Transformer)
    assert isinstance(model.embed, nn.Embedding)
    assert tuple(model.embed.weight.shape) == (98, 32)
    assert tuple(model.pos_embedding.shape) == (3, 32)
    x = torch.tensor([[3, 5, 97], [96, 0, 97]])
    assert torch.equal(model.tokens(x), x)
    assert tuple(model(x).shape) == (2, 97)
    # Tokens at different positions are told apart: swapping a and b changes the output.
    assert not torch.allclose(model(x[:, [1, 0, 2]]), model(x))


def test_token_mlp_concatenates_embeddings() -> None:
    torch.manual_seed(0)
    model = build_model("mlp_narrow", input_shape=(3,), n_classes=97, vocab_size=98)
    assert isinstance(model, MLP)
    assert model.embed is not None
    assert tuple(model.embed.weight.shape) == (98, 32)
    assert model.layers[0].linear.in_features == 3 * 32
    x = torch.tensor([[3, 5, 97]])
    expected = model.head(
        model.layers[2](model.layers[1](model.layers[0](model.embed(x).reshape(1, -1))))
    )
    assert torch.allclose(model(x), expected)


@pytest.mark.parametrize("arch", ["transformer_shallow", "mlp_medium"])
def test_adam_fits_modular_addition_training_pairs(arch: str, datasets: dict[str, Dataset]) -> None:
    ds = datasets["modular_addition"]
    model = _build(arch, ds)
    x, y = ds.x_train[:128], ds.y_train[:128]
    losses = _adam_losses(model, x, y, 30, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_transformer_generalises_the_majority_rule(datasets: dict[str, Dataset]) -> None:
    ds = datasets["sequences"]
    model = _build("transformer_shallow", ds)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randint(0, len(ds.y_train), (128,), generator=generator)
        loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
    with torch.no_grad():
        accuracy = float((model(ds.x_test).argmax(dim=1) == ds.y_test).double().mean())
    assert accuracy > 0.9  # chance is 0.25


def test_build_model_rejects_tokens_for_continuous_only_presets() -> None:
    with pytest.raises(
        ConfigError, match=r"arch 'cnn_shallow' does not take tokens inputs.*'transformer_shallow'"
    ):
        build_model("cnn_shallow", input_shape=(3,), n_classes=97, vocab_size=98)
    with pytest.raises(ConfigError, match="arch 'vit_shallow' does not take tokens"):
        build_model("vit_shallow", input_shape=(3,), n_classes=97, vocab_size=98)
    with pytest.raises(ConfigError, match=r"a token sequence \(length,\)\. Give vocab_size="):
        build_model("transformer_shallow", input_shape=(3,), n_classes=97)
    with pytest.raises(ConfigError, match=r"input_shape must be \(length,\) for token inputs"):
        build_model("mlp_medium", input_shape=(1, 8, 8), n_classes=10, vocab_size=98)


def test_continuous_transformer_init_is_unchanged_by_token_support() -> None:
    # The parameter creation order (embed, pos_embedding, encoder) fixes which random
    # numbers each weight gets; runs recorded before token support must rebuild alike.
    torch.manual_seed(0)
    model = build_model("transformer_shallow", input_shape=(1, 40), n_classes=10)
    torch.manual_seed(0)
    embed = nn.Linear(4, 32)
    pos = 0.02 * torch.randn(10, 32)
    assert torch.equal(model.embed.weight, embed.weight)
    assert torch.equal(model.pos_embedding, pos)
