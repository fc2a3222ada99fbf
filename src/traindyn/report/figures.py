"""Figures drawn from the long tables of a run; nothing here computes a metric.

Each figure has a ``*_figure`` function that returns a :class:`matplotlib.figure.Figure`
(for notebooks and tests) and a function of the same name without the suffix that
writes it as a PNG and returns the path. matplotlib is imported inside the functions,
so ``import traindyn`` stays light, and figures are drawn on their own Agg canvas: the
caller's pyplot state and backend are never touched.

Input tables follow the store schema: metrics ``step:int64, layer:str, metric:str,
value:float64`` (an optional ``reason`` column is ignored) and scalars ``step:int64,
name:str, value:float64``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn._validation import check_in
from traindyn.exceptions import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["heatmap", "heatmap_figure", "trajectories", "trajectories_figure"]

_METRIC_COLUMNS = ("step", "layer", "metric", "value")
_SCALAR_COLUMNS = ("step", "name", "value")
# Mid grey is outside viridis, which runs from dark purple to yellow.
_NAN_COLOUR = "#9e9e9e"
_DPI = 100
StepScale: TypeAlias = Literal["linear", "log"]
_STEP_SCALES: tuple[StepScale, ...] = ("linear", "log")


def _check_columns(table: Any, columns: tuple[str, ...], *, name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"{name} must be a pandas DataFrame; got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            f"{name} must have columns {', '.join(columns)}; missing {', '.join(missing)} "
            f"(got {', '.join(map(str, table.columns))}). Pass run.metrics or run.scalars."
        )
    return table


def _check_unique(rows: pd.DataFrame, keys: list[str], *, what: str) -> None:
    duplicated = rows.duplicated(keys)
    if duplicated.any():
        first = rows.loc[duplicated, keys].iloc[0].tolist()
        raise ConfigError(
            f"{what} must have one value per ({', '.join(keys)}); got "
            f"{int(duplicated.sum())} duplicate row(s), first {first!r}. Plot one run at a "
            f"time, or keep the last value with .drop_duplicates({keys!r}, keep='last')."
        )


def _select(metrics: Any, metric: str, layer_order: Sequence[str] | None) -> pd.DataFrame:
    """Validate the table and return the rows of ``metric`` for the layers to draw."""
    table = _check_columns(metrics, _METRIC_COLUMNS, name="metrics")
    rows = table.loc[table["metric"] == metric]
    if rows.empty:
        available = ", ".join(repr(m) for m in pd.unique(table["metric"]))
        raise ConfigError(
            f"metric must be one of the metrics in the table ({available or 'none'}); "
            f"got {metric!r}."
        )
    if layer_order is not None:
        if isinstance(layer_order, str):
            raise ConfigError(
                f"layer_order must be a sequence of layer names; got the string "
                f"{layer_order!r}. Use [{layer_order!r}]."
            )
        if len(set(layer_order)) != len(layer_order):
            raise ConfigError(f"layer_order must not repeat a layer; got {list(layer_order)!r}.")
        present = set(rows["layer"])
        unknown = [layer for layer in layer_order if layer not in present]
        if unknown:
            raise ConfigError(
                f"layer_order names layers without {metric!r} values: {unknown!r}. Layers "
                f"in the table: {list(pd.unique(rows['layer']))!r}."
            )
        rows = rows.loc[rows["layer"].isin(list(layer_order))]
    _check_unique(rows, ["step", "layer"], what=f"metric {metric!r}")
    return rows


def _layers(rows: pd.DataFrame, layer_order: Sequence[str] | None) -> list[str]:
    if layer_order is not None:
        return list(layer_order)
    return [str(v) for v in pd.unique(rows["layer"])]


@dataclass(frozen=True)
class _Grid:
    """Values of one metric laid out as layers x steps; NaN where no finite value."""

    layers: list[str]
    steps: NDArray[np.float64]
    values: NDArray[np.float64]
    n_nan: int
    n_missing: int


def _grid(rows: pd.DataFrame, layers: list[str]) -> _Grid:
    """Guts of :func:`heatmap_figure`: rows are validated and unique per (step, layer)."""
    steps = rows["step"].drop_duplicates().sort_values().to_numpy()
    wide = rows.pivot(index="layer", columns="step", values="value")
    wide = wide.reindex(index=layers, columns=steps)
    values = wide.to_numpy(dtype=np.float64, na_value=np.nan)
    n_nan = int(rows["value"].isna().sum())
    return _Grid(layers, steps.astype(np.float64), values, n_nan, values.size - len(rows))


def _edges(centres: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cell boundaries halfway between steps, so cells sit on a real step axis."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate(
        [[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]]
    )


def _set_step_scale(ax: Any, step_scale: StepScale) -> None:
    if step_scale == "log":
        # Symmetric log is linear in [-1, 1]: step 0 (the initial model) stays visible.
        ax.set_xscale("symlog", linthresh=1.0)


def _new_figure(figsize: tuple[float, float], dpi: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"path must end in .png; got {str(out)!r}. Use {out.stem}.png.")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=fig.dpi)
    return out


def heatmap_figure(
    metrics: pd.DataFrame,
    metric: str,
    *,
    title: str | None = None,
    layer_order: Sequence[str] | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: float = _DPI,
) -> Figure:
    """Draw one metric as a layer x step heatmap and return the figure.

    Layers are rows (top to bottom in ``layer_order``, or in order of first appearance
    in the table), steps are columns placed on a linear step axis with each cell
    reaching halfway to its neighbours, so unevenly spaced samples keep their true
    position. Cells whose value is NaN, or with no row at all, are drawn grey and
    counted in the title. The colour bar is labelled with the metric.

    Parameters
    ----------
    metrics : DataFrame
        Long table with columns ``step, layer, metric, value``.
    metric : str
        Value of the ``metric`` column to draw.
    title : str, optional
        Defaults to ``"<metric> by layer"``; the NaN count is appended either way.
    layer_order : sequence of str, optional
        Layers to draw, top to bottom; others are left out.
    step_scale : {"linear", "log"}, default="linear"
        ``"log"`` suits log-spaced sampling schedules; it is symmetric-log, linear
        below step 1, so step 0 can be drawn.
    figsize : (float, float), default=(8.0, 4.5)
        Inches.
    dpi : float, default=100
        Pixels per inch, so the PNG is ``figsize * dpi`` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        One heatmap axes (its ``QuadMesh`` holds the layer x step array) and a colour bar.

    Raises
    ------
    ConfigError
        If a column is missing, ``metric`` is not in the table (the message lists the
        metrics it has), ``layer_order`` names a layer without values, or a (step,
        layer) pair appears twice.

    Examples
    --------
    >>> table = pd.DataFrame({"step": [0, 0, 10, 10], "layer": ["a", "b", "a", "b"],
    ...                       "metric": "participation_ratio", "value": [1.0, 2.0, 3.0, None]})
    >>> fig = heatmap_figure(table, "participation_ratio")
    >>> fig.axes[0].get_title()
    'participation_ratio by layer (grey: 1 NaN cell)'
    >>> fig.axes[0].collections[0].get_array().shape
    (2, 2)
    """
    import matplotlib as mpl

    check_in(step_scale, _STEP_SCALES, name="step_scale")
    rows = _select(metrics, metric, layer_order)
    grid = _grid(rows, _layers(rows, layer_order))

    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    finite = grid.values[np.isfinite(grid.values)]
    # Explicit limits: an all-NaN table would otherwise make matplotlib warn.
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    cmap = mpl.colormaps["viridis"].with_extremes(bad=_NAN_COLOUR)
    mesh = ax.pcolormesh(
        _edges(grid.steps),
        np.arange(len(grid.layers) + 1, dtype=np.float64),
        np.ma.masked_invalid(grid.values),
        cmap=cmap,
        norm=mpl.colors.Normalize(vmin=vmin, vmax=vmax),
        shading="flat",
    )
    ax.set_yticks(np.arange(len(grid.layers)) + 0.5, grid.layers)
    ax.invert_yaxis()
    _set_step_scale(ax, step_scale)
    ax.set_xlabel("step")
    ax.set_ylabel("layer")
    fig.colorbar(mesh, ax=ax, label=metric)

    notes = []
    if grid.n_nan:
        notes.append(f"{grid.n_nan} NaN cell{'s' if grid.n_nan != 1 else ''}")
    if grid.n_missing:
        notes.append(f"{grid.n_missing} missing")
    label = title if title is not None else f"{metric} by layer"
    ax.set_title(f"{label} (grey: {', '.join(notes)})" if notes else label)
    return fig


def heatmap(
    metrics: pd.DataFrame,
    metric: str,
    *,
    path: str | os.PathLike[str],
    title: str | None = None,
    layer_order: Sequence[str] | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: float = _DPI,
) -> Path:
    """Write the layer x step heatmap of :func:`heatmap_figure` to a PNG.

    Parameters
    ----------
    metrics, metric, title, layer_order, step_scale, figsize, dpi
        As :func:`heatmap_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`heatmap_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = heatmap_figure(
        metrics,
        metric,
        title=title,
        layer_order=layer_order,
        step_scale=step_scale,
        figsize=figsize,
        dpi=dpi,
    )
    return _save(fig, path)


def trajectories_figure(
    metrics: pd.DataFrame,
    metric: str,
    *,
    scalars: pd.DataFrame | None = None,
    scalar_names: Sequence[str] | None = None,
    title: str | None = None,
    layer_order: Sequence[str] | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Figure:
    """Draw one metric against step, one line per layer, and return the figure.

    NaN values leave gaps in a line. With ``scalars``, one panel per scalar (e.g.
    ``loss``, ``accuracy``) is added below, on the same step axis, since their scales
    differ from the metric's and from each other's.

    Parameters
    ----------
    metrics : DataFrame
        Long table with columns ``step, layer, metric, value``.
    metric : str
        Value of the ``metric`` column to draw.
    scalars : DataFrame, optional
        Long table with columns ``step, name, value``.
    scalar_names : sequence of str, optional
        Scalars to draw, top to bottom; defaults to every name in ``scalars`` in order
        of first appearance.
    title : str, optional
        Defaults to ``"<metric> by layer"``.
    layer_order : sequence of str, optional
        Layers to draw, in legend order; defaults to order of first appearance.
    step_scale : {"linear", "log"}, default="linear"
        As :func:`heatmap_figure`.
    figsize : (float, float), optional
        Inches; defaults to ``(8.0, 4.5)`` plus 2.5 inches of height per scalar panel.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        The metric axes first, then one axes per scalar.

    Raises
    ------
    ConfigError
        As :func:`heatmap_figure`, or if ``scalars`` lacks a column or a name in
        ``scalar_names``, or repeats a (step, name) pair.

    Examples
    --------
    >>> table = pd.DataFrame({"step": [0, 10, 0, 10], "layer": ["a", "a", "b", "b"],
    ...                       "metric": "effective_rank", "value": [1.0, 2.0, 3.0, 4.0]})
    >>> loss = pd.DataFrame({"step": [0, 10], "name": "loss", "value": [2.3, 0.5]})
    >>> fig = trajectories_figure(table, "effective_rank", scalars=loss)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['effective_rank', 'loss']
    """
    check_in(step_scale, _STEP_SCALES, name="step_scale")
    rows = _select(metrics, metric, layer_order)
    layers = _layers(rows, layer_order)
    names: list[str] = []
    scalar_rows = None
    if scalars is not None:
        scalar_rows = _check_columns(scalars, _SCALAR_COLUMNS, name="scalars")
        present = [str(n) for n in pd.unique(scalar_rows["name"])]
        if scalar_names is None:
            names = present
        else:
            if isinstance(scalar_names, str):
                raise ConfigError(
                    f"scalar_names must be a sequence of names; got the string "
                    f"{scalar_names!r}. Use [{scalar_names!r}]."
                )
            names = list(scalar_names)
            unknown = [n for n in names if n not in present]
            if unknown:
                raise ConfigError(
                    f"scalar_names must be names in the scalars table ({present!r}); got "
                    f"{unknown!r}."
                )
        scalar_rows = scalar_rows.loc[scalar_rows["name"].isin(names)]
        _check_unique(scalar_rows, ["step", "name"], what="scalars")

    if figsize is None:
        figsize = (8.0, 4.5 + 2.5 * len(names))
    fig = _new_figure(figsize, dpi)
    axes = fig.subplots(
        1 + len(names), 1, sharex=True, squeeze=False, height_ratios=[1.8] + [1.0] * len(names)
    )[:, 0]
    ax = axes[0]
    # More lines than this and individual markers only add clutter.
    markers = rows["step"].nunique() <= 30
    for layer in layers:
        line = rows.loc[rows["layer"] == layer].sort_values("step")
        ax.plot(line["step"], line["value"], marker="." if markers else None, label=layer)
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else f"{metric} by layer")
    ax.legend(title="layer", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for name, scalar_ax in zip(names, axes[1:], strict=True):
        assert scalar_rows is not None  # names is empty without scalars
        line = scalar_rows.loc[scalar_rows["name"] == name].sort_values("step")
        scalar_ax.plot(line["step"], line["value"], color="black")
        scalar_ax.set_ylabel(name)
    _set_step_scale(axes[-1], step_scale)  # axes share x, so this sets every panel
    axes[-1].set_xlabel("step")
    return fig


def trajectories(
    metrics: pd.DataFrame,
    metric: str,
    *,
    path: str | os.PathLike[str],
    scalars: pd.DataFrame | None = None,
    scalar_names: Sequence[str] | None = None,
    title: str | None = None,
    layer_order: Sequence[str] | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Path:
    """Write the per-layer trajectories of :func:`trajectories_figure` to a PNG.

    Parameters
    ----------
    metrics, metric, scalars, scalar_names, title, layer_order, step_scale, figsize, dpi
        As :func:`trajectories_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`trajectories_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = trajectories_figure(
        metrics,
        metric,
        scalars=scalars,
        scalar_names=scalar_names,
        title=title,
        layer_order=layer_order,
        step_scale=step_scale,
        figsize=figsize,
        dpi=dpi,
    )
    return _save(fig, path)
