"""Small models built from typed configs, registered by name.

Each model family has a frozen config dataclass that holds everything needed to rebuild
the model, including the input shape and number of classes, and each model keeps it as
``model.config`` (the checkpoint fingerprint records it). :data:`MODELS` maps a preset
name such as ``"mlp_medium"`` to a config factory; adding a preset is adding an entry.

Models never seed a random generator: weights depend on the global torch generator, so
the caller writes ``torch.manual_seed(seed)`` before :func:`build_model`.

Inputs are continuous, ``(C, L)`` signals or ``(C, H, W)`` images, or integer token
sequences ``(T,)`` with a ``vocab_size`` (modular arithmetic, text): MLPs and
transformers embed tokens with a lookup table; CNNs and ViTs take continuous inputs only.
:attr:`ModelSpec.input_kinds` says which a preset accepts.

Every model lists the module paths worth tracking with its ``default_layers()`` method
(the protocol :func:`traindyn.capture.default_layers` looks for when ``layers=None``):
paths of
:meth:`torch.nn.Module.named_modules` whose forward output is a hidden representation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeAlias

import torch
from torch import nn

from traindyn._validation import check_in
from traindyn.exceptions import ConfigError
from traindyn.experiments.datasets import INPUT_KINDS, InputKind

__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "CNNConfig",
    "MLPConfig",
    "ModelConfig",
    "ModelSpec",
    "Transformer",
    "TransformerConfig",
    "ViT",
    "ViTConfig",
    "ZooModel",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "model_from_config",
]

Activation = Literal["relu", "gelu", "tanh"]
_ACTIVATIONS: tuple[Activation, ...] = ("relu", "gelu", "tanh")


def _positive_ints(value: Any, *, name: str, allow_empty: bool = False) -> tuple[int, ...]:
    """Return ``value`` as a tuple of positive ints (lists from JSON are accepted)."""
    ok = isinstance(value, Sequence) and not isinstance(value, str)
    items = tuple(value) if ok else ()
    if ok:
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items)
    if not ok or (not items and not allow_empty):
        raise ConfigError(
            f"{name} must be a non-empty sequence of positive integers; got {value!r}."
        )
    return items


def _positive_int(value: Any, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
    return value


def _check_input_shape(value: Any) -> tuple[int, ...]:
    shape = _positive_ints(value, name="input_shape")
    if len(shape) == 1:
        raise ConfigError(
            "input_shape must be (channels, length) or (channels, height, width) for "
            f"continuous inputs; got {value!r}, a token sequence (length,). Give "
            "vocab_size=, the number of token ids (Dataset.vocab_size), to embed it."
        )
    if len(shape) not in (2, 3):
        raise ConfigError(
            "input_shape must be (channels, length) for signals or (channels, height, "
            f"width) for images, without the batch dimension; got {value!r}."
        )
    return shape


def _check_shape_and_vocab(shape: Any, vocab_size: Any) -> tuple[int, ...]:
    """Validate ``input_shape`` against ``vocab_size`` (None: continuous inputs)."""
    if vocab_size is None:
        return _check_input_shape(shape)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ConfigError(
            f"vocab_size must be an integer >= 2 or None; got {vocab_size!r}. Use the "
            "dataset's vocab_size, or None for continuous inputs."
        )
    checked = _positive_ints(shape, name="input_shape")
    if len(checked) != 1:
        raise ConfigError(
            f"input_shape must be (length,) for token inputs (vocab_size={vocab_size}); got "
            f"{shape!r}. Use vocab_size=None for continuous inputs."
        )
    return checked


def _activation(name: Activation) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    return nn.Tanh()


def _check_encoder(config: TransformerConfig | ViTConfig) -> None:
    """Validate the encoder fields shared by :class:`TransformerConfig` and :class:`ViTConfig`."""
    _positive_int(config.d_model, name="d_model")
    _positive_int(config.n_heads, name="n_heads")
    _positive_int(config.n_layers, name="n_layers")
    _positive_int(config.dim_feedforward, name="dim_feedforward")
    if config.d_model % config.n_heads:
        suggestion = config.n_heads * (config.d_model // config.n_heads + 1)
        raise ConfigError(
            f"d_model must be divisible by n_heads={config.n_heads}; got "
            f"{config.d_model}. Use d_model={suggestion}."
        )
    dropout = config.dropout
    if isinstance(dropout, bool) or not isinstance(dropout, int | float):
        raise ConfigError(f"dropout must be a number in [0, 1); got {dropout!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be a number in [0, 1); got {dropout!r}.")
    check_in(config.activation, ("relu", "gelu"), name="activation")


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class MLPConfig:
    """Configuration of :class:`MLP`.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one input without the batch dimension; it is flattened. ``(T,)`` for
        token inputs.
    n_classes : int
        Width of the output layer.
    hidden : tuple of int, default=(128, 128, 128)
        Width of each hidden layer.
    activation : {"relu", "gelu", "tanh"}, default="relu"
        Nonlinearity after each hidden linear layer.
    vocab_size : int or None, default=None
        Token inputs: each of the ``T`` ids is looked up in an ``embed_dim``-wide table
        and the ``T * embed_dim`` values are concatenated (order-aware, as the MLPs of
        grokking studies that concatenate the embeddings of ``a`` and ``b``). None:
        continuous inputs.
    embed_dim : int, default=32
        Embedding width per token; ignored when ``vocab_size`` is None.
    """

    family: ClassVar[str] = "mlp"

    input_shape: tuple[int, ...]
    n_classes: int
    # Equal widths, so that differences between layers are not confounded by width.
    hidden: tuple[int, ...] = (128, 128, 128)
    # ReLU is the activation of the networks the dimensionality literature studies.
    activation: Activation = "relu"
    # None: continuous inputs, the common case.
    vocab_size: int | None = None
    # As the transformer's d_model: small inputs (3 tokens of modular arithmetic) stay small.
    embed_dim: int = 32

    def __post_init__(self) -> None:
        shape = _check_shape_and_vocab(self.input_shape, self.vocab_size)
        object.__setattr__(self, "input_shape", shape)
        _positive_int(self.n_classes, name="n_classes")
        object.__setattr__(self, "hidden", _positive_ints(self.hidden, name="hidden"))
        check_in(self.activation, _ACTIVATIONS, name="activation")
        _positive_int(self.embed_dim, name="embed_dim")


@dataclass(frozen=True)
class CNNConfig:
    """Configuration of :class:`CNN`.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, length)`` selects 1-D convolutions, ``(channels, height, width)``
        2-D convolutions.
    n_classes : int
        Width of the output layer.
    channels : tuple of int, default=(16, 32)
        Output channels of each conv block.
    kernel_size : int, default=3
        Odd kernel size; padding keeps the spatial size ("same" convolution).
    pool : bool, default=True
        Max-pool by 2 at the end of each block while every spatial size is at least 2,
        so that deep presets still fit 8x8 images.
    activation : {"relu", "gelu", "tanh"}, default="relu"
        Nonlinearity after each convolution.
    """

    family: ClassVar[str] = "cnn"

    input_shape: tuple[int, ...]
    n_classes: int
    # Doubling channels while pooling halves the resolution is the classic CNN shape.
    channels: tuple[int, ...] = (16, 32)
    # 3 is the smallest odd kernel with context on both sides; inputs are only 8 wide.
    kernel_size: int = 3
    # Pooling gives each block a coarser, more abstract representation to track.
    pool: bool = True
    # ReLU, as for MLPConfig.
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", _check_input_shape(self.input_shape))
        _positive_int(self.n_classes, name="n_classes")
        object.__setattr__(self, "channels", _positive_ints(self.channels, name="channels"))
        _positive_int(self.kernel_size, name="kernel_size")
        if self.kernel_size % 2 == 0:
            raise ConfigError(
                f"kernel_size must be odd so that padding keeps the size; got "
                f"{self.kernel_size}. Use {self.kernel_size + 1}."
            )
        if not isinstance(self.pool, bool):
            raise ConfigError(f"pool must be True or False; got {self.pool!r}.")
        check_in(self.activation, _ACTIVATIONS, name="activation")


@dataclass(frozen=True)
class TransformerConfig:
    """Configuration of :class:`Transformer`.

    An image ``(C, H, W)`` becomes ``H`` tokens, one per row, of ``C * W`` values; a
    signal ``(C, L)`` becomes ``L / patch_size`` tokens of ``C * patch_size`` values; both
    are embedded linearly. A token sequence ``(T,)`` with ``vocab_size`` is embedded by
    a lookup table. (:class:`ViTConfig` cuts images into square patches instead.)

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, length)`` or ``(channels, height, width)``; ``(length,)`` for tokens.
    n_classes : int
        Width of the output layer.
    d_model : int, default=32
        Token width; divisible by ``n_heads``.
    n_heads : int, default=2
        Attention heads per layer.
    n_layers : int, default=1
        Encoder layers.
    dim_feedforward : int, default=128
        Hidden width of each feed-forward block.
    dropout : float, default=0.0
        Dropout inside the encoder layers.
    patch_size : int, default=4
        Samples per token for signals (ignored for images); must divide the length.
    activation : {"relu", "gelu"}, default="gelu"
        Feed-forward nonlinearity.
    vocab_size : int or None, default=None
        Number of token ids for token inputs (e.g. ``p + 1`` for modular arithmetic);
        None for continuous inputs. Id 0 gets no special treatment: padding is an
        ordinary token, so every input has the same shape and no attention mask.
    """

    family: ClassVar[str] = "transformer"

    input_shape: tuple[int, ...]
    n_classes: int
    # Small enough to train in seconds on a CPU, wide enough for 2 heads of 16.
    d_model: int = 32
    # Two heads: the smallest number with which heads can specialise.
    n_heads: int = 2
    n_layers: int = 1
    # 4 * d_model as in Vaswani et al. 2017; torch's default of 2048 is for d_model=512.
    dim_feedforward: int = 128
    # 0: probe passes must be deterministic and train/eval outputs equal.
    dropout: float = 0.0
    # 40-sample mnist1d signals become 10 tokens.
    patch_size: int = 4
    # GELU, as in BERT and GPT-2.
    activation: Literal["relu", "gelu"] = "gelu"
    # None: continuous inputs, the common case.
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        shape = _check_shape_and_vocab(self.input_shape, self.vocab_size)
        object.__setattr__(self, "input_shape", shape)
        _positive_int(self.n_classes, name="n_classes")
        _check_encoder(self)
        _positive_int(self.patch_size, name="patch_size")
        if len(shape) == 2 and shape[1] % self.patch_size:
            raise ConfigError(
                f"patch_size must divide the signal length {shape[1]}; got "
                f"{self.patch_size}. Use a divisor of {shape[1]}."
            )


# A 4 x 4 grid of patches: few enough tokens for CPU attention, as many as the 16-token
# sequences of the other inputs; 8x8 digits get 2x2 patches, 28x28 MNIST 7x7.
_VIT_TOKENS = 16


def _auto_patch_size(sides: tuple[int, ...]) -> int:
    """The patch size dividing every side whose token count is closest to 16 (ties: fewer)."""
    divisors = [p for p in range(1, min(sides) + 1) if all(s % p == 0 for s in sides)]

    def n_tokens(p: int) -> int:
        return math.prod(s // p for s in sides)

    return min(divisors, key=lambda p: (abs(n_tokens(p) - _VIT_TOKENS), n_tokens(p)))


@dataclass(frozen=True)
class ViTConfig:
    """Configuration of :class:`ViT`, a vision transformer (Dosovitskiy et al. 2021).

    An image ``(C, H, W)`` is cut into non-overlapping ``P x P`` patches, ``(H / P) *
    (W / P)`` tokens of ``C * P * P`` values in row-major order; a signal ``(C, L)``
    into ``L / P`` patches of ``C * P`` values.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, length)`` or ``(channels, height, width)``.
    n_classes : int
        Width of the output layer.
    patch_size : int or None, default=None
        Side ``P`` of a patch; it must divide every spatial side. None picks the divisor
        giving the token count closest to 16 (fewer tokens on a tie): 2 for 8x8 images,
        7 for 28x28, 2 for 40-sample signals (20 tokens). The config stores the
        resolved value.
    d_model : int, default=32
        Token width; divisible by ``n_heads``.
    n_heads : int, default=2
        Attention heads per layer.
    n_layers : int, default=1
        Encoder layers.
    dim_feedforward : int, default=128
        Hidden width of each feed-forward block.
    dropout : float, default=0.0
        Dropout inside the encoder layers.
    activation : {"relu", "gelu"}, default="gelu"
        Feed-forward nonlinearity.
    pool : {"mean", "cls"}, default="mean"
        Classify the mean of the output tokens, or a learned ``[CLS]`` token prepended
        to the patches (the original ViT).
    """

    family: ClassVar[str] = "vit"

    input_shape: tuple[int, ...]
    n_classes: int
    # None: about 16 tokens whatever the resolution (see _auto_patch_size).
    patch_size: int | None = None
    # The encoder defaults are TransformerConfig's, so the two families compare directly.
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    dim_feedforward: int = 128
    # 0: probe passes must be deterministic and train/eval outputs equal.
    dropout: float = 0.0
    # GELU, as in the original ViT.
    activation: Literal["relu", "gelu"] = "gelu"
    # Mean pooling trains better than [CLS] on small data (Beyer et al. 2022, "Better
    # plain ViT baselines for ImageNet-1k").
    pool: Literal["mean", "cls"] = "mean"

    def __post_init__(self) -> None:
        shape = _check_input_shape(self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        _positive_int(self.n_classes, name="n_classes")
        sides = shape[1:]
        if self.patch_size is None:
            object.__setattr__(self, "patch_size", _auto_patch_size(sides))
        else:
            _positive_int(self.patch_size, name="patch_size")
            if any(side % self.patch_size for side in sides):
                valid = [p for p in range(1, min(sides) + 1) if all(s % p == 0 for s in sides)]
                raise ConfigError(
                    f"patch_size must divide every spatial side {sides}; got "
                    f"{self.patch_size}. Use one of {valid}, or None to choose."
                )
        _check_encoder(self)
        check_in(self.pool, ("mean", "cls"), name="pool")


ModelConfig: TypeAlias = MLPConfig | CNNConfig | TransformerConfig | ViTConfig
"""Any model config of the zoo."""


# --------------------------------------------------------------------------- modules


class _Dense(nn.Module):
    """Linear layer followed by a nonlinearity; its output is the tracked activation."""

    def __init__(self, d_in: int, d_out: int, activation: Activation) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.act = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.linear(x))
        return out


class MLP(nn.Module):
    """Multi-layer perceptron: ``flatten -> layers.0 .. layers.{L-1} -> head``.

    Each ``layers.i`` is a linear layer and its activation (``layers.i.linear``,
    ``layers.i.act``); its output is the post-activation representation. Token inputs
    are first embedded (``embed``) and the embeddings concatenated.

    Parameters
    ----------
    config : MLPConfig

    Examples
    --------
    >>> model = MLP(MLPConfig(input_shape=(1, 8, 8), n_classes=10, hidden=(16, 16)))
    >>> model.default_layers()
    ['layers.0', 'layers.1']
    >>> tuple(model(torch.zeros(3, 1, 8, 8)).shape)
    (3, 10)
    """

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        self.embed: nn.Embedding | None = None
        d_in = math.prod(config.input_shape)
        if config.vocab_size is not None:
            self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
            d_in *= config.embed_dim
        self.flatten = nn.Flatten()
        widths = (d_in, *config.hidden)
        self.layers = nn.ModuleList(
            _Dense(a, b, config.activation) for a, b in itertools.pairwise(widths)
        )
        self.head = nn.Linear(widths[-1], config.n_classes)

    def default_layers(self) -> list[str]:
        """Output of every hidden layer; the last one is the head's input."""
        return [f"layers.{i}" for i in range(len(self.layers))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs of shape (batch, *input_shape) to logits of shape (batch, n_classes)."""
        h = self.flatten(x if self.embed is None else self.embed(x))
        for layer in self.layers:
            h = layer(h)
        out: torch.Tensor = self.head(h)
        return out


class _ConvBlock(nn.Module):
    """Convolution, nonlinearity and optional 2x max-pooling."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        dims: int,
        kernel_size: int,
        pool: bool,
        activation: Activation,
    ) -> None:
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.conv = conv(c_in, c_out, kernel_size, padding=kernel_size // 2)
        self.act = _activation(activation)
        self.pool: nn.Module | None = None
        if pool:
            self.pool = nn.MaxPool1d(2) if dims == 1 else nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.act(self.conv(x))
        if self.pool is not None:
            h = self.pool(h)
        return h


class CNN(nn.Module):
    """Convolutional network: ``blocks.0 .. blocks.{L-1} -> flatten -> head``.

    Uses ``Conv1d`` for inputs ``(C, L)`` and ``Conv2d`` for ``(C, H, W)``. Each block
    is ``blocks.i.conv``, ``blocks.i.act`` and, while the input is at least 2 wide,
    ``blocks.i.pool``; the block's output has shape (batch, channels, *spatial).

    Parameters
    ----------
    config : CNNConfig

    Examples
    --------
    >>> model = CNN(CNNConfig(input_shape=(1, 40), n_classes=10, channels=(4, 8)))
    >>> model.default_layers()
    ['blocks.0', 'blocks.1']
    >>> tuple(model(torch.zeros(3, 1, 40)).shape)
    (3, 10)
    """

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        dims = len(config.input_shape) - 1
        spatial = list(config.input_shape[1:])
        c_in = config.input_shape[0]
        blocks = []
        for c_out in config.channels:
            pool = config.pool and min(spatial) >= 2
            blocks.append(
                _ConvBlock(
                    c_in,
                    c_out,
                    dims=dims,
                    kernel_size=config.kernel_size,
                    pool=pool,
                    activation=config.activation,
                )
            )
            if pool:
                spatial = [s // 2 for s in spatial]
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.flatten = nn.Flatten()
        n_features = c_in
        for s in spatial:
            n_features *= s
        self.head = nn.Linear(n_features, config.n_classes)

    def default_layers(self) -> list[str]:
        """Output of every conv block; the last one, flattened, is the head's input."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs of shape (batch, *input_shape) to logits of shape (batch, n_classes)."""
        h = x
        for block in self.blocks:
            h = block(h)
        out: torch.Tensor = self.head(self.flatten(h))
        return out


class _Tokens(nn.Module):
    """Cut images into row tokens and signals into patches: (batch, tokens, features).

    Token ids (batch, tokens) pass through unchanged, for the embedding table.
    """

    def __init__(self, input_shape: tuple[int, ...], patch_size: int) -> None:
        super().__init__()
        self.input_shape = input_shape
        self.patch_size = patch_size
        if len(input_shape) == 1:
            self.n_tokens, self.token_dim = input_shape[0], 1
        elif len(input_shape) == 3:
            c, h, w = input_shape
            self.n_tokens, self.token_dim = h, c * w
        else:
            c, length = input_shape
            self.n_tokens, self.token_dim = length // patch_size, c * patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if len(self.input_shape) == 1:
            return x
        if x.dim() == 4:  # (n, C, H, W) -> (n, H, C * W): one token per row
            return x.permute(0, 2, 1, 3).reshape(n, self.n_tokens, self.token_dim)
        c = x.shape[1]  # (n, C, L) -> (n, L / p, C * p): one token per patch
        patches = x.reshape(n, c, self.n_tokens, self.patch_size).permute(0, 2, 1, 3)
        return patches.reshape(n, self.n_tokens, self.token_dim)


class _MeanPool(nn.Module):
    """Average over tokens: (batch, tokens, d) -> (batch, d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class _ClsPool(nn.Module):
    """Take the first ([CLS]) token: (batch, tokens, d) -> (batch, d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


def _pre_ln_encoder(config: TransformerConfig | ViTConfig) -> nn.TransformerEncoder:
    """A pre-LN ``TransformerEncoder`` with independently initialised layers."""

    def layer() -> nn.TransformerEncoderLayer:
        return nn.TransformerEncoderLayer(
            config.d_model,
            config.n_heads,
            dim_feedforward=config.dim_feedforward,
            dropout=config.dropout,
            activation=config.activation,
            batch_first=True,
            # Pre-LN trains stably without learning-rate warm-up (Xiong et al. 2020).
            norm_first=True,
        )

    layers = [layer() for _ in range(config.n_layers)]
    encoder = nn.TransformerEncoder(
        layers[0],
        config.n_layers,
        norm=nn.LayerNorm(config.d_model),
        # Nested tensors only pay off with padding masks, and torch warns that they
        # are unavailable with norm_first=True.
        enable_nested_tensor=False,
    )
    # TransformerEncoder deep-copies its first layer, so every layer would start from
    # identical weights; independently initialised layers are what a study of layer-wise
    # dynamics assumes.
    encoder.layers = nn.ModuleList(layers)
    return encoder


class Transformer(nn.Module):
    """Pre-LN transformer encoder classifier.

    ``tokens -> embed (+ pos_embedding) -> encoder.layers.0 .. -> encoder.norm -> pool
    -> head``: inputs are cut into tokens (rows of an image, patches of a signal) and
    linearly embedded, or, for token ids, looked up in an embedding table; then given a
    learned positional embedding, passed through
    :class:`torch.nn.TransformerEncoder` (``batch_first=True``), mean-pooled over tokens
    and classified by a linear head.

    Parameters
    ----------
    config : TransformerConfig

    Examples
    --------
    >>> model = Transformer(TransformerConfig(input_shape=(1, 8, 8), n_classes=10, n_layers=2))
    >>> model.default_layers()
    ['encoder.layers.0', 'encoder.layers.1', 'pool']
    >>> tuple(model(torch.zeros(3, 1, 8, 8)).shape)
    (3, 10)
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = _Tokens(config.input_shape, config.patch_size)
        self.embed: nn.Linear | nn.Embedding
        if config.vocab_size is None:
            self.embed = nn.Linear(self.tokens.token_dim, config.d_model)
        else:
            self.embed = nn.Embedding(config.vocab_size, config.d_model)
        # Small initial scale (GPT-2 uses 0.02) so positions do not drown the content.
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(self.tokens.n_tokens, config.d_model))
        self.encoder = _pre_ln_encoder(config)
        self.pool = _MeanPool()
        self.head = nn.Linear(config.d_model, config.n_classes)

    def default_layers(self) -> list[str]:
        """Output of every encoder layer (batch, tokens, d_model), then the pooled head input."""
        return [*(f"encoder.layers.{i}" for i in range(self.config.n_layers)), "pool"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs of shape (batch, *input_shape) to logits of shape (batch, n_classes)."""
        h = self.embed(self.tokens(x)) + self.pos_embedding
        h = self.encoder(h)
        out: torch.Tensor = self.head(self.pool(h))
        return out


class _Patches(nn.Module):
    """Cut (batch, C, H, W) images or (batch, C, L) signals into non-overlapping patches.

    Returns (batch, tokens, C * P**dims), patches in row-major order of the patch grid
    and each patch flattened channel-first (as a stride-P convolution would see it).
    """

    def __init__(self, input_shape: tuple[int, ...], patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.grid = tuple(side // patch_size for side in input_shape[1:])
        self.n_tokens = math.prod(self.grid)
        self.token_dim = input_shape[0] * patch_size ** len(self.grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, p = x.shape[0], x.shape[1], self.patch_size
        if x.dim() == 4:  # (n, C, gh, P, gw, P) -> (n, gh, gw, C, P, P)
            gh, gw = self.grid
            patches = x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5)
        else:  # (n, C, gl, P) -> (n, gl, C, P)
            patches = x.reshape(n, c, self.grid[0], p).permute(0, 2, 1, 3)
        return patches.reshape(n, self.n_tokens, self.token_dim)


class ViT(nn.Module):
    """Vision transformer: patches, pre-LN encoder, pooled linear head.

    ``patches -> embed (+ [CLS]) (+ pos_embedding) -> encoder.layers.0 .. ->
    encoder.norm -> pool -> head``: non-overlapping ``P x P`` patches (``P`` patches of
    a signal) are linearly embedded, a learned ``[CLS]`` token is prepended when
    ``pool="cls"``, a learned positional embedding is added, and
    :class:`torch.nn.TransformerEncoder` (``batch_first=True``, pre-LN) runs over them;
    the head classifies the mean token or the ``[CLS]`` token.

    Parameters
    ----------
    config : ViTConfig

    References
    ----------
    Dosovitskiy et al. 2021, "An image is worth 16x16 words: Transformers for image
    recognition at scale", ICLR.

    Examples
    --------
    >>> model = ViT(ViTConfig(input_shape=(1, 28, 28), n_classes=10, n_layers=2))
    >>> model.config.patch_size, model.patches.n_tokens, model.default_layers()
    (7, 16, ['encoder.layers.0', 'encoder.layers.1', 'pool'])
    >>> tuple(model(torch.zeros(3, 1, 28, 28)).shape)
    (3, 10)
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        assert config.patch_size is not None  # ViTConfig resolves None
        self.patches = _Patches(config.input_shape, config.patch_size)
        self.embed = nn.Linear(self.patches.token_dim, config.d_model)
        n_positions = self.patches.n_tokens
        self.cls_token: nn.Parameter | None = None
        if config.pool == "cls":
            # Zero, as in the reference implementation; its position embedding tells it apart.
            self.cls_token = nn.Parameter(torch.zeros(1, 1, config.d_model))
            n_positions += 1
        # Small initial scale (GPT-2 uses 0.02) so positions do not drown the content.
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(n_positions, config.d_model))
        self.encoder = _pre_ln_encoder(config)
        self.pool: nn.Module = _ClsPool() if config.pool == "cls" else _MeanPool()
        self.head = nn.Linear(config.d_model, config.n_classes)

    def default_layers(self) -> list[str]:
        """Output of every encoder layer (batch, tokens, d_model), then the pooled head input."""
        return [*(f"encoder.layers.{i}" for i in range(self.config.n_layers)), "pool"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs of shape (batch, *input_shape) to logits of shape (batch, n_classes)."""
        h = self.embed(self.patches(x))
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        h = self.encoder(h + self.pos_embedding)
        out: torch.Tensor = self.head(self.pool(h))
        return out


ZooModel: TypeAlias = MLP | CNN | Transformer | ViT
"""Any model built by :func:`build_model`."""

_FAMILIES: Mapping[str, tuple[type[Any], type[Any]]] = MappingProxyType(
    {
        MLPConfig.family: (MLPConfig, MLP),
        CNNConfig.family: (CNNConfig, CNN),
        TransformerConfig.family: (TransformerConfig, Transformer),
        ViTConfig.family: (ViTConfig, ViT),
    }
)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: a named preset of one model family.

    Parameters
    ----------
    description : str
        One line for listings and reports.
    make_config : callable
        ``make_config(input_shape, n_classes, **options) -> ModelConfig``; the options
        are ``vocab_size=`` for token inputs.
    input_kinds : tuple of {"continuous", "tokens"}, default=("continuous",)
        The :attr:`Dataset.input_kind <traindyn.experiments.Dataset.input_kind>` values
        the preset accepts, so a suite can check an (arch, dataset) pair without
        building either.
    """

    description: str
    make_config: Callable[..., ModelConfig] = field(repr=False)
    input_kinds: tuple[InputKind, ...] = ("continuous",)


_ANY_INPUT: tuple[InputKind, ...] = INPUT_KINDS

MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "mlp_narrow": ModelSpec(
            "MLP, 3 hidden layers of 32", partial(MLPConfig, hidden=(32, 32, 32)), _ANY_INPUT
        ),
        "mlp_medium": ModelSpec(
            "MLP, 3 hidden layers of 128", partial(MLPConfig, hidden=(128, 128, 128)), _ANY_INPUT
        ),
        "mlp_wide": ModelSpec(
            "MLP, 3 hidden layers of 512", partial(MLPConfig, hidden=(512, 512, 512)), _ANY_INPUT
        ),
        "mlp_deep": ModelSpec(
            "MLP, 6 hidden layers of 128", partial(MLPConfig, hidden=(128,) * 6), _ANY_INPUT
        ),
        "cnn_shallow": ModelSpec("CNN, conv blocks of 16, 32 channels", partial(CNNConfig)),
        "cnn_medium": ModelSpec(
            "CNN, conv blocks of 16, 32, 64 channels", partial(CNNConfig, channels=(16, 32, 64))
        ),
        "cnn_deep": ModelSpec(
            "CNN, conv blocks of 16, 32, 64, 64 channels",
            partial(CNNConfig, channels=(16, 32, 64, 64)),
        ),
        "transformer_shallow": ModelSpec(
            "transformer encoder, 1 layer, d_model 32, 2 heads",
            partial(TransformerConfig),
            _ANY_INPUT,
        ),
        "transformer_medium": ModelSpec(
            "transformer encoder, 2 layers, d_model 64, 2 heads",
            partial(TransformerConfig, d_model=64, n_layers=2, dim_feedforward=256),
            _ANY_INPUT,
        ),
        "transformer_deep": ModelSpec(
            "transformer encoder, 4 layers, d_model 64, 2 heads",
            partial(TransformerConfig, d_model=64, n_layers=4, dim_feedforward=256),
            _ANY_INPUT,
        ),
        # The width of the one-layer transformer of Nanda et al. 2023 ("Progress measures
        # for grokking via mechanistic interpretability"), here pre-LN with a pooled head.
        "transformer_grokking": ModelSpec(
            "transformer encoder, 1 layer, d_model 64, 4 heads (groks on a CPU)",
            partial(TransformerConfig, d_model=64, n_heads=4, dim_feedforward=256),
            _ANY_INPUT,
        ),
        "vit_shallow": ModelSpec(
            "ViT, ~16 patches, 1 layer, d_model 32, 2 heads", partial(ViTConfig)
        ),
        "vit_medium": ModelSpec(
            "ViT, ~16 patches, 2 layers, d_model 64, 2 heads",
            partial(ViTConfig, d_model=64, n_layers=2, dim_feedforward=256),
        ),
        "vit_deep": ModelSpec(
            "ViT, ~16 patches, 4 layers, d_model 64, 2 heads",
            partial(ViTConfig, d_model=64, n_layers=4, dim_feedforward=256),
        ),
    }
)
"""Registry of model presets, keyed by the ``arch`` name given to :func:`build_model`."""


def build_model(
    arch: str, *, input_shape: Sequence[int], n_classes: int, vocab_size: int | None = None
) -> ZooModel:
    """Build a registered model for inputs of ``input_shape`` and ``n_classes`` classes.

    Weights are drawn from the global torch generator: call ``torch.manual_seed``
    first for reproducible initialisation.

    Parameters
    ----------
    arch : str
        A key of :data:`MODELS`, e.g. ``"mlp_medium"``, ``"cnn_shallow"``,
        ``"transformer_shallow"``, ``"vit_shallow"``.
    input_shape : sequence of int
        Shape of one input without the batch dimension: ``(C, L)`` or ``(C, H, W)``,
        or ``(T,)`` for token sequences; e.g. :attr:`Dataset.input_shape
        <traindyn.experiments.Dataset.input_shape>`.
    n_classes : int
        Number of output logits.
    vocab_size : int or None, default=None
        Number of token ids when the inputs are tokens (:attr:`Dataset.vocab_size
        <traindyn.experiments.Dataset.vocab_size>`, None for continuous data, so
        ``vocab_size=dataset.vocab_size`` is always right); the model then embeds ids
        with a lookup table.

    Returns
    -------
    MLP, CNN, Transformer or ViT
        With ``model.config`` (rebuild with :func:`model_from_config`) and
        ``model.default_layers()``.

    Raises
    ------
    ConfigError
        If ``arch`` is unknown (the message lists the registered names), does not take
        this kind of input (the message lists the presets that do), or the shape does
        not suit the family.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("mlp_medium", input_shape=(1, 8, 8), n_classes=10)
    >>> model.config.hidden, model.default_layers()
    ((128, 128, 128), ['layers.0', 'layers.1', 'layers.2'])
    >>> grok = build_model("transformer_shallow", input_shape=(3,), n_classes=97, vocab_size=98)
    >>> tuple(grok(torch.tensor([[1, 2, 97]])).shape)
    (1, 97)
    """
    spec = MODELS.get(arch) if isinstance(arch, str) else None
    if spec is None:
        valid = ", ".join(repr(n) for n in MODELS)
        raise ConfigError(f"arch must be one of {valid}; got {arch!r}.")
    kind: InputKind = "continuous" if vocab_size is None else "tokens"
    if kind not in spec.input_kinds:
        able = ", ".join(repr(n) for n, s in MODELS.items() if kind in s.input_kinds)
        raise ConfigError(
            f"arch {arch!r} does not take {kind} inputs (vocab_size={vocab_size!r}); use one "
            f"of {able}."
        )
    if vocab_size is None:
        return model_from_config(spec.make_config(_check_input_shape(input_shape), n_classes))
    shape = _check_shape_and_vocab(input_shape, vocab_size)
    return model_from_config(spec.make_config(shape, n_classes, vocab_size=vocab_size))


def model_from_config(config: ModelConfig) -> ZooModel:
    """Build the model a config describes, e.g. to rebuild ``type(model)`` from ``model.config``.

    Examples
    --------
    >>> model = model_from_config(MLPConfig(input_shape=(1, 40), n_classes=10, hidden=(8,)))
    >>> type(model).__name__, model.config == MLPConfig((1, 40), 10, hidden=(8,))
    ('MLP', True)
    """
    if isinstance(config, MLPConfig):
        return MLP(config)
    if isinstance(config, CNNConfig):
        return CNN(config)
    if isinstance(config, TransformerConfig):
        return Transformer(config)
    if isinstance(config, ViTConfig):
        return ViT(config)
    raise ConfigError(
        "config must be an MLPConfig, CNNConfig, TransformerConfig or ViTConfig; got "
        f"{type(config).__name__}."
    )


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """Return a JSON-ready dict of ``config`` with its ``family``; see :func:`config_from_dict`.

    Examples
    --------
    >>> data = config_to_dict(MLPConfig((1, 8, 8), 10, hidden=(4,)))
    >>> data["family"], data["input_shape"], data["hidden"]
    ('mlp', [1, 8, 8], [4])
    """
    fields = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
    return {"family": config.family, **fields}


def config_from_dict(data: Mapping[str, Any]) -> ModelConfig:
    """Rebuild a config from :func:`config_to_dict` output (e.g. read from JSON).

    Raises
    ------
    ConfigError
        If ``family`` is unknown or a field is unknown or invalid.

    Examples
    --------
    >>> config = MLPConfig((1, 8, 8), 10, hidden=(4,))
    >>> config_from_dict(config_to_dict(config)) == config
    True
    """
    values = dict(data)
    family = values.pop("family", None)
    if family not in _FAMILIES:
        valid = ", ".join(repr(n) for n in _FAMILIES)
        raise ConfigError(f"family must be one of {valid}; got {family!r}.")
    config_cls = _FAMILIES[family][0]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{config_cls.__name__} has no field(s) {', '.join(unknown)}; valid fields are "
            f"{', '.join(sorted(known))}."
        )
    config: ModelConfig = config_cls(**values)
    return config
