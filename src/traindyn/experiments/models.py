"""Small models built from typed configs, registered by name.

Each model family has a frozen config dataclass that holds everything needed to rebuild
the model, including the input shape and number of classes, and each model keeps it as
``model.config`` (the checkpoint fingerprint records it). :data:`MODELS` maps a preset
name such as ``"mlp_medium"`` to a config factory; adding a preset is adding an entry.

Models never seed a random generator: weights depend on the global torch generator, so
the caller writes ``torch.manual_seed(seed)`` before :func:`build_model`.

Every model lists the module paths worth tracking with its ``default_layers()`` method
(the protocol :func:`traindyn.capture.default_layers` looks for when ``layers=None``):
paths of
:meth:`torch.nn.Module.named_modules` whose forward output is a hidden representation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeAlias

import torch
from torch import nn

from traindyn._validation import check_in
from traindyn.exceptions import ConfigError

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
    if len(shape) not in (2, 3):
        raise ConfigError(
            "input_shape must be (channels, length) for signals or (channels, height, "
            f"width) for images, without the batch dimension; got {value!r}."
        )
    return shape


def _activation(name: Activation) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    return nn.Tanh()


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class MLPConfig:
    """Configuration of :class:`MLP`.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one input without the batch dimension; it is flattened.
    n_classes : int
        Width of the output layer.
    hidden : tuple of int, default=(128, 128, 128)
        Width of each hidden layer.
    activation : {"relu", "gelu", "tanh"}, default="relu"
        Nonlinearity after each hidden linear layer.
    """

    family: ClassVar[str] = "mlp"

    input_shape: tuple[int, ...]
    n_classes: int
    # Equal widths, so that differences between layers are not confounded by width.
    hidden: tuple[int, ...] = (128, 128, 128)
    # ReLU is the activation of the networks the dimensionality literature studies.
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", _check_input_shape(self.input_shape))
        _positive_int(self.n_classes, name="n_classes")
        object.__setattr__(self, "hidden", _positive_ints(self.hidden, name="hidden"))
        check_in(self.activation, _ACTIVATIONS, name="activation")


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
    signal ``(C, L)`` becomes ``L / patch_size`` tokens of ``C * patch_size`` values.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, length)`` or ``(channels, height, width)``.
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

    def __post_init__(self) -> None:
        shape = _check_input_shape(self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        _positive_int(self.n_classes, name="n_classes")
        _positive_int(self.d_model, name="d_model")
        _positive_int(self.n_heads, name="n_heads")
        _positive_int(self.n_layers, name="n_layers")
        _positive_int(self.dim_feedforward, name="dim_feedforward")
        _positive_int(self.patch_size, name="patch_size")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"d_model must be divisible by n_heads={self.n_heads}; got "
                f"{self.d_model}. Use d_model={self.n_heads * (self.d_model // self.n_heads + 1)}."
            )
        dropout = self.dropout
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise ConfigError(f"dropout must be a number in [0, 1); got {dropout!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be a number in [0, 1); got {dropout!r}.")
        check_in(self.activation, ("relu", "gelu"), name="activation")
        if len(shape) == 2 and shape[1] % self.patch_size:
            raise ConfigError(
                f"patch_size must divide the signal length {shape[1]}; got "
                f"{self.patch_size}. Use a divisor of {shape[1]}."
            )


ModelConfig: TypeAlias = MLPConfig | CNNConfig | TransformerConfig
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
    ``layers.i.act``); its output is the post-activation representation.

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
        self.flatten = nn.Flatten()
        d_in = 1
        for size in config.input_shape:
            d_in *= size
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
        h = self.flatten(x)
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
    """Cut images into row tokens and signals into patches: (batch, tokens, features)."""

    def __init__(self, input_shape: tuple[int, ...], patch_size: int) -> None:
        super().__init__()
        self.input_shape = input_shape
        self.patch_size = patch_size
        if len(input_shape) == 3:
            c, h, w = input_shape
            self.n_tokens, self.token_dim = h, c * w
        else:
            c, length = input_shape
            self.n_tokens, self.token_dim = length // patch_size, c * patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if x.dim() == 4:  # (n, C, H, W) -> (n, H, C * W): one token per row
            return x.permute(0, 2, 1, 3).reshape(n, self.n_tokens, self.token_dim)
        c = x.shape[1]  # (n, C, L) -> (n, L / p, C * p): one token per patch
        patches = x.reshape(n, c, self.n_tokens, self.patch_size).permute(0, 2, 1, 3)
        return patches.reshape(n, self.n_tokens, self.token_dim)


class _MeanPool(nn.Module):
    """Average over tokens: (batch, tokens, d) -> (batch, d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class Transformer(nn.Module):
    """Pre-LN transformer encoder classifier.

    ``tokens -> embed (+ pos_embedding) -> encoder.layers.0 .. -> encoder.norm -> pool
    -> head``: inputs are cut into tokens (rows of an image, patches of a signal),
    linearly embedded, given a learned positional embedding, passed through
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
        self.embed = nn.Linear(self.tokens.token_dim, config.d_model)
        # Small initial scale (GPT-2 uses 0.02) so positions do not drown the content.
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(self.tokens.n_tokens, config.d_model))

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
        self.encoder = nn.TransformerEncoder(
            layers[0],
            config.n_layers,
            norm=nn.LayerNorm(config.d_model),
            # Nested tensors only pay off with padding masks, and torch warns that they
            # are unavailable with norm_first=True.
            enable_nested_tensor=False,
        )
        # TransformerEncoder deep-copies its first layer, so every layer would start
        # from identical weights; independently initialised layers are what a study of
        # layer-wise dynamics assumes.
        self.encoder.layers = nn.ModuleList(layers)
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


ZooModel: TypeAlias = MLP | CNN | Transformer
"""Any model built by :func:`build_model`."""

_FAMILIES: Mapping[str, tuple[type[Any], type[Any]]] = MappingProxyType(
    {
        MLPConfig.family: (MLPConfig, MLP),
        CNNConfig.family: (CNNConfig, CNN),
        TransformerConfig.family: (TransformerConfig, Transformer),
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
        ``make_config(input_shape, n_classes) -> ModelConfig``.
    """

    description: str
    make_config: Callable[[tuple[int, ...], int], ModelConfig] = field(repr=False)


MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "mlp_narrow": ModelSpec(
            "MLP, 3 hidden layers of 32", partial(MLPConfig, hidden=(32, 32, 32))
        ),
        "mlp_medium": ModelSpec(
            "MLP, 3 hidden layers of 128", partial(MLPConfig, hidden=(128, 128, 128))
        ),
        "mlp_wide": ModelSpec(
            "MLP, 3 hidden layers of 512", partial(MLPConfig, hidden=(512, 512, 512))
        ),
        "mlp_deep": ModelSpec("MLP, 6 hidden layers of 128", partial(MLPConfig, hidden=(128,) * 6)),
        "cnn_shallow": ModelSpec("CNN, conv blocks of 16, 32 channels", partial(CNNConfig)),
        "cnn_medium": ModelSpec(
            "CNN, conv blocks of 16, 32, 64 channels", partial(CNNConfig, channels=(16, 32, 64))
        ),
        "cnn_deep": ModelSpec(
            "CNN, conv blocks of 16, 32, 64, 64 channels",
            partial(CNNConfig, channels=(16, 32, 64, 64)),
        ),
        "transformer_shallow": ModelSpec(
            "transformer encoder, 1 layer, d_model 32, 2 heads", partial(TransformerConfig)
        ),
        "transformer_medium": ModelSpec(
            "transformer encoder, 2 layers, d_model 64, 2 heads",
            partial(TransformerConfig, d_model=64, n_layers=2, dim_feedforward=256),
        ),
        "transformer_deep": ModelSpec(
            "transformer encoder, 4 layers, d_model 64, 2 heads",
            partial(TransformerConfig, d_model=64, n_layers=4, dim_feedforward=256),
        ),
    }
)
"""Registry of model presets, keyed by the ``arch`` name given to :func:`build_model`."""


def build_model(arch: str, *, input_shape: Sequence[int], n_classes: int) -> ZooModel:
    """Build a registered model for inputs of ``input_shape`` and ``n_classes`` classes.

    Weights are drawn from the global torch generator: call ``torch.manual_seed``
    first for reproducible initialisation.

    Parameters
    ----------
    arch : str
        A key of :data:`MODELS`, e.g. ``"mlp_medium"``, ``"cnn_shallow"``,
        ``"transformer_shallow"``.
    input_shape : sequence of int
        Shape of one input without the batch dimension: ``(C, L)`` or ``(C, H, W)``,
        e.g. :attr:`Dataset.input_shape <traindyn.experiments.Dataset.input_shape>`.
    n_classes : int
        Number of output logits.

    Returns
    -------
    MLP, CNN or Transformer
        With ``model.config`` (rebuild with :func:`model_from_config`) and
        ``model.default_layers()``.

    Raises
    ------
    ConfigError
        If ``arch`` is unknown (the message lists the registered names) or the shape
        does not suit the family.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = build_model("mlp_medium", input_shape=(1, 8, 8), n_classes=10)
    >>> model.config.hidden, model.default_layers()
    ((128, 128, 128), ['layers.0', 'layers.1', 'layers.2'])
    """
    spec = MODELS.get(arch) if isinstance(arch, str) else None
    if spec is None:
        valid = ", ".join(repr(n) for n in MODELS)
        raise ConfigError(f"arch must be one of {valid}; got {arch!r}.")
    shape = _check_input_shape(input_shape)
    return model_from_config(spec.make_config(shape, n_classes))


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
    raise ConfigError(
        f"config must be an MLPConfig, CNNConfig or TransformerConfig; got {type(config).__name__}."
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
