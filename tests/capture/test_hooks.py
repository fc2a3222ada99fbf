from __future__ import annotations

import pytest
import torch
from torch import nn

from traindyn.capture import capture_activations, default_layers, infer_layout, resolve_layers
from traindyn.capture.hooks import select_output
from traindyn.exceptions import ConfigError


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_default_layers_mlp_are_the_linear_layers() -> None:
    assert default_layers(mlp()) == ["0", "2", "4"]


def test_default_layers_transformer_are_blocks_plus_leaves_outside_them() -> None:
    assert default_layers(TinyTransformer()) == [
        "embed",
        "encoder.layers.0",
        "encoder.layers.1",
        "encoder.layers.2",
        "head",
    ]


def test_default_layers_cnn_and_lstm() -> None:
    cnn = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 2))
    assert default_layers(cnn) == ["0", "3"]
    lstm = nn.Sequential(nn.LSTM(3, 5, batch_first=True))
    assert default_layers(lstm) == ["0"]


def test_model_can_declare_its_own_default_layers() -> None:
    class Declared(nn.Sequential):
        def default_layers(self) -> list[str]:
            return ["1"]

    assert default_layers(Declared(nn.Linear(2, 2), nn.ReLU())) == ["1"]


def test_explicit_glob_and_predicate_selection() -> None:
    model = TinyTransformer()
    assert resolve_layers(model, "head") == ["head"]
    assert resolve_layers(model, "encoder.layers.*") == [
        "encoder.layers.0",
        "encoder.layers.1",
        "encoder.layers.2",
    ]
    assert resolve_layers(model, "**.self_attn") == [
        f"encoder.layers.{i}.self_attn" for i in range(3)
    ]
    assert resolve_layers(model, "encoder.layers.?.linear1")[-1] == "encoder.layers.2.linear1"
    assert resolve_layers(model, ["head", "embed"]) == ["embed", "head"]
    assert (
        resolve_layers(model, lambda n, m: isinstance(m, nn.LayerNorm))[0]
        == "encoder.layers.0.norm1"
    )


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ("haed", "Did you mean 'head'"),
        ("nothing.*", "matches no module"),
        (lambda n, m: False, "selected no module"),
        ([3], "must be strings"),
    ],
)
def test_bad_layer_selection_names_the_problem(layers: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_layers(TinyTransformer(), layers)  # type: ignore[arg-type]


def test_hooks_exist_only_inside_the_block_even_when_forward_raises() -> None:
    model = mlp()
    with capture_activations(model, ["0", "2"]) as cap:
        assert hook_count(model) == 2
        model(torch.randn(4, 5))
    assert hook_count(model) == 0
    assert cap.stacked("0").shape == (4, 8)
    with pytest.raises(RuntimeError), capture_activations(model, ["0"]):
        model(torch.randn(4, 6))  # wrong width
    assert hook_count(model) == 0


def test_captured_tensor_is_a_copy_immune_to_inplace_ops() -> None:
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(inplace=True))
    x = torch.randn(10, 3)
    expected = model[0](x).detach().clone()
    with capture_activations(model, ["0"]) as cap:
        model(x)
    assert torch.equal(cap.stacked("0"), expected)  # ReLU did not zero the negatives
    assert (expected < 0).any()


def test_tuple_outputs_lstm_and_attention() -> None:
    lstm = nn.LSTM(3, 5, batch_first=True)
    attn = nn.MultiheadAttention(6, 2, batch_first=True)
    x = torch.randn(4, 7, 3)
    wrapper = nn.ModuleDict({"lstm": lstm, "attn": attn})
    with capture_activations(wrapper, ["lstm", "attn"]) as cap:
        out, _ = lstm(x)
        q = torch.randn(4, 7, 6)
        attn(q, q, q)
    assert torch.equal(cap.stacked("lstm"), out.detach())
    assert cap.stacked("attn").shape == (4, 7, 6)


def test_hook_errors_are_recorded_not_raised() -> None:
    model = mlp()

    def broken(output: object) -> torch.Tensor:
        raise KeyError("no such field")

    with capture_activations(model, ["0", "2"], output_selector={"0": broken}) as cap:
        y = model(torch.randn(4, 5))
    assert y.shape == (4, 2)
    assert "KeyError" in cap.errors["0"]
    assert cap.stacked("0") is None and cap.stacked("2") is not None


def test_half_precision_is_upcast_in_the_hook() -> None:
    model = nn.Sequential(nn.Linear(4, 4)).to(torch.bfloat16)
    with capture_activations(model, ["0"]) as cap:
        model(torch.randn(3, 4, dtype=torch.bfloat16))
    assert cap.stacked("0").dtype == torch.float32


def test_select_output_handles_mappings_and_rejects_others() -> None:
    hidden = torch.ones(2, 3)
    assert select_output({"last_hidden_state": hidden, "x": torch.zeros(1)}) is hidden
    assert select_output((None, hidden)) is hidden
    with pytest.raises(TypeError, match="output_selector"):
        select_output("text")


def test_infer_layout() -> None:
    cnn = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU())
    assert infer_layout(cnn, "0") == "channels_first"
    assert infer_layout(cnn, "1") == "channels_first"  # activation after a conv
    model = TinyTransformer()
    assert infer_layout(model, "encoder.layers.0") == "channels_last"
    assert infer_layout(model, "embed") == "channels_last"
