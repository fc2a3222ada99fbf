"""Forward hooks that grab layer outputs, registered only while they are needed.

Layer names are ``model.named_modules()`` paths. Hooks detach, upcast half precision to
float32 and copy to CPU inside the hook, so nothing keeps the autograd graph or device
memory alive, and a later in-place op (``ReLU(inplace=True)``) cannot change what was
captured. An exception inside a hook is recorded and never raised into the forward pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import torch
from torch import nn

from traindyn.exceptions import ConfigError

__all__ = [
    "Capture",
    "LayerSelector",
    "Layout",
    "OutputSelector",
    "capture_activations",
    "default_layers",
    "infer_layout",
    "resolve_layers",
    "select_output",
]

Layout: TypeAlias = Literal["channels_first", "channels_last"]
LayerSelector: TypeAlias = str | Sequence[str] | Callable[[str, nn.Module], bool] | None
OutputSelector: TypeAlias = Callable[[Any], torch.Tensor]

# Leaf modules whose output is a representation worth measuring by default.
_MEASURED_LEAVES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.RNNBase,
)
# Channel-first producers: their (N, C, *spatial) outputs are reduced over spatial axes.
_CHANNELS_FIRST: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)
_TOKEN_MODULES: tuple[type[nn.Module], ...] = (
    nn.MultiheadAttention,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    nn.Embedding,
    nn.RNNBase,
)


def default_layers(model: nn.Module) -> list[str]:
    """The layers a user would expect to be tracked when ``layers=None``.

    1. A model that defines ``default_layers() -> list[str]`` (the traindyn model zoo does)
       decides for itself.
    2. Otherwise every *block* is tracked: a non-leaf item of an ``nn.ModuleList`` (the
       residual-stream blocks of ``nn.TransformerEncoder``, GPT-2's ``h.0`` ... ``h.11``,
       BERT's ``encoder.layer.N``), plus every ``Linear``/``Conv``/``RNN`` leaf outside
       those blocks (an MLP's hidden layers and every model's head, whose output is the
       logits).

    Modules inside a block (attention projections, feed-forward sublayers) are not
    tracked by default; name them explicitly or with a glob to track them.
    """
    custom = getattr(model, "default_layers", None)
    if callable(custom):
        names = list(custom())
        _check_known(model, names)
        return names
    blocks: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            for idx, child in enumerate(module):
                if len(list(child.children())) > 0:
                    blocks.append(f"{name}.{idx}" if name else str(idx))
    chosen: list[str] = []
    for name, module in model.named_modules():
        if name in blocks or (
            isinstance(module, _MEASURED_LEAVES)
            and not any(name.startswith(b + ".") for b in blocks)
            and not _inside_attention(model, name)
        ):
            chosen.append(name)
    if not chosen and isinstance(model, _MEASURED_LEAVES):
        chosen = [""]  # stored under the label "(model)"
    return chosen


def _inside_attention(model: nn.Module, name: str) -> bool:
    # MultiheadAttention's out_proj is an nn.Linear that its forward never calls.
    parent = name.rsplit(".", 1)[0] if "." in name else ""
    if not parent:
        return False
    return isinstance(model.get_submodule(parent), nn.MultiheadAttention)


def resolve_layers(model: nn.Module, layers: LayerSelector) -> list[str]:
    """Resolve a layer selection to ``named_modules()`` paths, in model order.

    Parameters
    ----------
    model : nn.Module
    layers : None, str, list of str, or callable
        ``None`` uses :func:`default_layers`. A string is an exact path or a glob over
        dotted paths: ``*`` matches within one path segment (``"encoder.layers.*"`` is
        the layers, not their sublayers), ``**`` matches across segments
        (``"**.attn"``). A list mixes both. A callable ``(name, module) -> bool`` is a
        predicate over every module.

    Raises
    ------
    ConfigError
        If an exact name does not exist (with close matches), a glob matches nothing, or
        the selection is empty.
    """
    if layers is None:
        names = default_layers(model)
    elif callable(layers) and not isinstance(layers, str):
        names = [n for n, m in model.named_modules() if n and layers(n, m)]
    else:
        patterns = [layers] if isinstance(layers, str) else list(layers)
        all_names = [n for n, _ in model.named_modules() if n]
        picked: set[str] = set()
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise ConfigError(f"layers entries must be strings; got {pattern!r}.")
            if any(ch in pattern for ch in "*?"):
                regex = _glob_regex(pattern)
                hits = [n for n in all_names if regex.fullmatch(n)]
                if not hits:
                    raise ConfigError(
                        f"layers pattern {pattern!r} matches no module of "
                        f"{type(model).__name__}. {_listing(all_names)}"
                    )
                picked.update(hits)
            else:
                _check_known(model, [pattern])
                picked.add(pattern)
        names = [n for n in all_names if n in picked]
    if not names:
        raise ConfigError(
            f"layers selected no module of {type(model).__name__}. Pass layer names "
            "(see model.named_modules()), a glob such as 'layers.*', or a predicate."
        )
    return names


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    table = {"**": ".*", "*": "[^.]*", "?": "[^.]"}
    return re.compile("".join(table.get(p, re.escape(p)) for p in parts))


def _check_known(model: nn.Module, names: Sequence[str]) -> None:
    known = {n for n, _ in model.named_modules() if n}
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"layers names {name!r}, which is not a module of {type(model).__name__}."
                f"{hint} {_listing(sorted(known))}"
            )


def _listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"Available: {shown}{more}."


def infer_layout(model: nn.Module, name: str) -> Layout:
    """Guess how a layer lays out its channels, for reducing 3-D+ outputs to 2-D.

    Conv, batch-norm and pooling modules produce ``(N, C, *spatial)``: channels first.
    Transformer blocks, attention, embeddings and RNNs produce ``(N, T, D)``: channels
    last. Any other module (an activation, a custom block) is channels first when the
    model contains convolutions and no token modules, else channels last.
    """
    module = model.get_submodule(name)
    if isinstance(module, _CHANNELS_FIRST):
        return "channels_first"
    if isinstance(module, _TOKEN_MODULES):
        return "channels_last"
    has_conv = any(isinstance(m, _CHANNELS_FIRST[:6]) for m in model.modules())
    has_tokens = any(isinstance(m, _TOKEN_MODULES) for m in model.modules())
    return "channels_first" if has_conv and not has_tokens else "channels_last"


def select_output(output: Any) -> torch.Tensor:
    """Default output selector: the representation inside a module's output.

    A tensor is returned as is. A tuple or list (LSTM ``(out, (h, c))``,
    MultiheadAttention ``(attn_out, weights)``, Hugging Face blocks ``(hidden, ...)``)
    gives its first tensor. A mapping or ``ModelOutput`` gives ``last_hidden_state`` when
    present, else its first tensor value.

    Raises
    ------
    TypeError
        If no tensor can be found; pass ``output_selector=`` to the tracker.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        hidden = output.get("last_hidden_state")
        if isinstance(hidden, torch.Tensor):
            return hidden
        for value in output.values():
            if isinstance(value, torch.Tensor):
                return value
    if isinstance(output, (tuple, list)):
        for value in output:
            if isinstance(value, torch.Tensor):
                return value
    raise TypeError(
        f"cannot find a tensor in a module output of type {type(output).__name__}; "
        "pass output_selector=... to the Tracker to pick one."
    )


@dataclass
class Capture:
    """What one pass of hooks collected (filled in place by :func:`capture_activations`).

    ``activations[name]`` holds the detached CPU tensors of each call (one per probe
    chunk), ``errors[name]`` the first error a hook hit, ``calls[name]`` how often each
    module ran in the pass.
    """

    activations: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def stacked(self, name: str) -> torch.Tensor | None:
        """Concatenate the chunks of ``name`` along the sample axis, or None if absent."""
        chunks = self.activations.get(name)
        if not chunks:
            return None
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=0)


@contextmanager
def capture_activations(
    model: nn.Module,
    names: Sequence[str],
    *,
    output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
) -> Iterator[Capture]:
    """Register forward hooks on ``names`` for the duration of the ``with`` block.

    Hooks are removed in ``finally``, also when the forward pass raises.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True))
    >>> with capture_activations(net, ["0"]) as cap:
    ...     _ = net(torch.ones(2, 3))
    >>> cap.stacked("0").shape, len(net[0]._forward_hooks)
    (torch.Size([2, 4]), 0)
    """
    cap = Capture()
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, Any, Any], None]:
        if isinstance(output_selector, Mapping):
            selector = output_selector.get(name, select_output)
        else:
            selector = output_selector or select_output

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            cap.calls[name] = cap.calls.get(name, 0) + 1
            try:
                tensor = selector(output).detach()
                if tensor.is_nested:
                    raise TypeError(
                        "the output is a nested tensor (nn.TransformerEncoder's fast path with a "
                        "padding mask); build the encoder with enable_nested_tensor=False"
                    )
                if tensor.dtype in (torch.float16, torch.bfloat16):
                    tensor = tensor.float()
                # clone: a later in-place op would otherwise rewrite what we captured
                cap.activations.setdefault(name, []).append(
                    tensor.to("cpu", copy=True) if tensor.device.type != "cpu" else tensor.clone()
                )
            except Exception as exc:  # never break the user's forward pass
                cap.errors.setdefault(name, f"{type(exc).__name__}: {exc}")

        return hook

    try:
        for name in names:
            handles.append(model.get_submodule(name).register_forward_hook(make_hook(name)))
        yield cap
    finally:
        for handle in handles:
            handle.remove()
