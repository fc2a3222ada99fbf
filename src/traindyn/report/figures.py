"""Figures drawn from the long tables of a run; nothing here computes a metric.

Each figure has a ``*_figure`` function that returns a :class:`matplotlib.figure.Figure`
(for notebooks and tests) and a function of the same name without the suffix that
writes it as a PNG and returns the path. matplotlib is imported inside the functions,
so ``import traindyn`` stays light, and figures are drawn on their own Agg canvas: the
caller's pyplot state and backend are never touched.

Input tables follow the store schema: metrics ``step:int64, layer:str, metric:str,
value:float64`` (an optional ``reason`` column is ignored) and scalars ``step:int64,
name:str, value:float64``. The other figures read the tables ``traindyn analyze`` writes
to a run's (or a suite directory's) ``analysis/`` folder, named in each docstring; extra
columns are ignored.

====================================  ==================================================
:func:`heatmap_figure`                one metric, layer x step
:func:`trajectories_figure`           one metric against step, one line per layer, with
                                      surviving events, critical periods and phases
:func:`bands_figure`                  mean and range over seeds, one panel per group
                                      (the table of ``traindyn.analysis.seed_bands``)
:func:`cka_matrix_figure`             one square CKA matrix (:func:`cka_matrices` reads
                                      the stored ``checkpoint_comparison_*`` tables)
:func:`temporal_figure`               share of change early / mid / late
:func:`convergence_figure`            stabilisation step against layer depth
:func:`arch_comparison_figure`        directory summary per architecture
:func:`event_types_figure`            surviving events by step, layer, type and shape
====================================  ==================================================

Empty input: the summary figures (temporal, convergence, arch comparison, event types)
of an empty table, or with nothing to draw after selection (no surviving events), are
still drawn, with an empty axes reading "no data" (or "no surviving events"), so a
report can show every panel of every run; empty overlay tables of
:func:`trajectories_figure` draw nothing. The figures of one metric (heatmap,
trajectories, bands) raise :class:`~traindyn.exceptions.ConfigError` when the metric is
not in the table, listing those that are, and so do input that cannot be drawn (a
missing column, an unknown layer, duplicate rows, a matrix that is not square).

Legends list at most 12 entries: beyond that the first and last five are shown with a
"... n more" line between them.
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

__all__ = [
    "arch_comparison",
    "arch_comparison_figure",
    "bands",
    "bands_figure",
    "cka_matrices",
    "cka_matrix",
    "cka_matrix_figure",
    "convergence",
    "convergence_figure",
    "event_types",
    "event_types_figure",
    "heatmap",
    "heatmap_figure",
    "temporal",
    "temporal_figure",
    "trajectories",
    "trajectories_figure",
]

_METRIC_COLUMNS = ("step", "layer", "metric", "value")
_SCALAR_COLUMNS = ("step", "name", "value")
# Mid grey is outside viridis, which runs from dark purple to yellow.
_NAN_COLOUR = "#9e9e9e"
_DPI = 100
StepScale: TypeAlias = Literal["linear", "log"]
_STEP_SCALES: tuple[StepScale, ...] = ("linear", "log")
TemporalBy: TypeAlias = Literal["metric", "layer"]
_TEMPORAL_BY: tuple[TemporalBy, ...] = ("metric", "layer")
_EVENT_COLUMNS = ("layer", "metric", "step", "survives")
_CRITICAL_COLUMNS = ("layer", "metric", "start", "end")
_PHASE_COLUMNS = ("phase", "start", "end")
_BAND_COLUMNS = ("group", "layer", "metric", "step", "n", "mean", "min", "max")
_TEMPORAL_COLUMNS = ("metric", "window", "share")
_CONVERGENCE_COLUMNS = ("layer", "metric", "depth", "stabilized", "stabilization_step")
_EVENT_TYPE_COLUMNS = ("layer", "step", "survives", "shape", "type")
_ACROSS_STEPS = ("layer", "step_a", "step_b", "cka")
_ACROSS_LAYERS = ("step", "layer_a", "layer_b", "cka")
# Two greys a little apart: every phase gets a band, and neighbours stay distinguishable.
_PHASE_GREYS = ("#e6e6e6", "#f3f3f3")
# A light tint: several layers' periods overlap and the lines must stay readable on top.
_CRITICAL_ALPHA = 0.12
# More entries than this and a legend becomes a second plot; show the ends of the list.
_LEGEND_LIMIT = 12
_LEGEND_KEEP = 5
# Matrices larger than this leave no room for two decimals in a cell.
_ANNOTATE_LIMIT = 12
# Segments narrower than this have no room for a "12%" label.
_LABEL_MIN_SHARE = 0.04
_SHAPE_MARKERS = {"step": "o", "slope_change": "^", "drift": "s"}
_POOLED = "*"


def _check_columns(
    table: Any,
    columns: tuple[str, ...],
    *,
    name: str,
    hint: str = "Pass run.metrics or run.scalars.",
) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"{name} must be a pandas DataFrame; got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            f"{name} must have columns {', '.join(columns)}; missing {', '.join(missing)} "
            f"(got {', '.join(map(str, table.columns))}). {hint}"
        )
    return table


def _analysis_hint(name: str) -> str:
    return f"Pass run.read_analysis({name!r})."


def _flag(values: pd.Series) -> NDArray[np.bool_]:
    """A bool column as an array; missing values count as False."""
    flags = pd.Series(values, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    return np.asarray(flags, dtype=np.bool_)


def _equals(values: pd.Series, value: Any) -> NDArray[np.bool_]:
    """``values == value`` as a bool array; missing values are unequal to anything."""
    mask: NDArray[np.bool_] = (values == value).to_numpy(dtype=bool, na_value=False)
    return mask


def _check_order(order: Sequence[str] | None, *, name: str, what: str = "layer") -> None:
    if order is None:
        return
    if isinstance(order, str):
        raise ConfigError(
            f"{name} must be a sequence of {what} names; got the string {order!r}. Use [{order!r}]."
        )
    if len(set(order)) != len(order):
        raise ConfigError(f"{name} must not repeat a {what}; got {list(order)!r}.")


def _check_unique(rows: pd.DataFrame, keys: list[str], *, what: str) -> None:
    duplicated = rows.duplicated(keys)
    if duplicated.any():
        first = rows.loc[duplicated, keys].iloc[0].tolist()
        raise ConfigError(
            f"{what} must have one value per ({', '.join(keys)}); got "
            f"{int(duplicated.sum())} duplicate row(s), first {first!r}. Plot one run at a "
            f"time, or keep the last value with .drop_duplicates({keys!r}, keep='last')."
        )


def _select(
    metrics: Any,
    metric: str,
    layer_order: Sequence[str] | None,
    *,
    columns: tuple[str, ...] = _METRIC_COLUMNS,
    name: str = "metrics",
    unique: tuple[str, ...] = ("step", "layer"),
    hint: str = "Pass run.metrics or run.scalars.",
) -> pd.DataFrame:
    """Validate the table and return the rows of ``metric`` for the layers to draw."""
    table = _check_columns(metrics, columns, name=name, hint=hint)
    rows = table.loc[table["metric"] == metric]
    if rows.empty:
        available = ", ".join(repr(m) for m in pd.unique(table["metric"]))
        raise ConfigError(
            f"metric must be one of the metrics in the table ({available or 'none'}); "
            f"got {metric!r}."
        )
    if layer_order is not None:
        _check_order(layer_order, name="layer_order")
        present = set(rows["layer"])
        unknown = [layer for layer in layer_order if layer not in present]
        if unknown:
            raise ConfigError(
                f"layer_order names layers without {metric!r} values: {unknown!r}. Layers "
                f"in the table: {list(pd.unique(rows['layer']))!r}."
            )
        rows = rows.loc[rows["layer"].isin(list(layer_order))]
    _check_unique(rows, list(unique), what=f"metric {metric!r}")
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


def _shortened(handles: list[Any], labels: list[str]) -> tuple[list[Any], list[str]]:
    """At most ``_LEGEND_LIMIT`` entries: the first and last few and how many are left out."""
    if len(handles) <= _LEGEND_LIMIT:
        return handles, labels
    from matplotlib.lines import Line2D

    hidden = len(handles) - 2 * _LEGEND_KEEP
    gap = Line2D([], [], linestyle="none")
    return (
        [*handles[:_LEGEND_KEEP], gap, *handles[-_LEGEND_KEEP:]],
        [*labels[:_LEGEND_KEEP], f"... {hidden} more", *labels[-_LEGEND_KEEP:]],
    )


def _no_data(ax: Any, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _colours(n: int) -> list[str]:
    """The first ``n`` colours of matplotlib's default cycle, repeated as needed."""
    import matplotlib as mpl
    from matplotlib.colors import to_hex

    cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    return [to_hex(cycle[i % len(cycle)]) for i in range(n)]


def _text_colour(rgba: Any) -> str:
    """Black or white, whichever reads better on ``rgba`` (ITU-R BT.601 luma)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(rgba)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b >= 0.5 else "white"


def _count_label(values: pd.Series) -> str:
    """``"2 step, 1 slope_change"``: how often each value occurs, in order of appearance."""
    words = values.astype(object).where(values.notna(), "unknown").astype(str)
    counts = words.value_counts()
    return ", ".join(f"{counts[w]} {w}" for w in pd.unique(words))


def _phase_rows(phases: Any) -> pd.DataFrame:
    table = _check_columns(phases, _PHASE_COLUMNS, name="phases", hint=_analysis_hint("phases"))
    rows = table.loc[:, list(_PHASE_COLUMNS)].drop_duplicates()
    return rows.sort_values(["start", "end"], kind="stable").reset_index(drop=True)


def _draw_phases(axes: Sequence[Any], rows: pd.DataFrame) -> None:
    """Background bands on every axes; the names along the top of the first."""
    for i, (name, start, end) in enumerate(rows.itertuples(index=False, name=None)):
        for ax in axes:
            ax.axvspan(
                start, end, facecolor=_PHASE_GREYS[i % 2], linewidth=0, zorder=0, gid="phase"
            )
        axes[0].annotate(
            str(name),
            xy=(start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize="small",
            color="0.35",
            gid="phase",
        )
    # Headroom so the names do not sit on the lines.
    low, high = axes[0].get_ylim()
    axes[0].set_ylim(low, high + 0.1 * (high - low))


def _in(values: pd.Series, allowed: Sequence[str]) -> NDArray[np.bool_]:
    mask: NDArray[np.bool_] = values.isin(list(allowed)).to_numpy(dtype=bool, na_value=False)
    return mask


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
    events: pd.DataFrame | None = None,
    critical: pd.DataFrame | None = None,
    phases: pd.DataFrame | None = None,
) -> Figure:
    """Draw one metric against step, one line per layer, and return the figure.

    NaN values leave gaps in a line. With ``scalars``, one panel per scalar (e.g.
    ``loss``, ``accuracy``) is added below, on the same step axis, since their scales
    differ from the metric's and from each other's. The analysis tables of the run can
    be laid over the lines: surviving events, critical periods and phases.

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
    events : DataFrame, optional
        ``analysis/events.parquet``: columns ``layer, metric, step, survives`` (and
        ``shape``, counted in the legend when present). Each surviving event of
        ``metric`` in a drawn layer is a dashed vertical line in the layer's colour on
        the metric axes and a short tick at the top of each scalar panel; events that do
        not survive are not drawn. The legend gives the count ("3 surviving events (2
        step, 1 slope_change)").
    critical : DataFrame, optional
        ``analysis/critical_periods.parquet``: columns ``layer, metric, start, end``.
        Each critical period of ``metric`` in a drawn layer is a light span (alpha 0.12)
        in the layer's colour from ``start`` to ``end``, on the metric axes.
    phases : DataFrame, optional
        ``analysis/phases.parquet`` (or its unique ``phase, start, end`` rows): each
        phase is a background band ``[start, end)`` on every panel, in two alternating
        light greys, with its name along the top of the metric axes.

    Returns
    -------
    matplotlib.figure.Figure
        The metric axes first, then one axes per scalar. Overlays carry a ``gid``:
        ``"event"`` (lines), ``"critical"`` and ``"phase"`` (spans and phase names).

    Raises
    ------
    ConfigError
        As :func:`heatmap_figure`, or if ``scalars`` lacks a column or a name in
        ``scalar_names``, or repeats a (step, name) pair, or ``events``, ``critical``
        or ``phases`` lacks a column.

    Examples
    --------
    >>> table = pd.DataFrame({"step": [0, 10, 0, 10], "layer": ["a", "a", "b", "b"],
    ...                       "metric": "effective_rank", "value": [1.0, 2.0, 3.0, 4.0]})
    >>> loss = pd.DataFrame({"step": [0, 10], "name": "loss", "value": [2.3, 0.5]})
    >>> fig = trajectories_figure(table, "effective_rank", scalars=loss)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['effective_rank', 'loss']

    Only the surviving event is drawn, and counted in the legend:

    >>> events = pd.DataFrame({"layer": ["a", "b"], "metric": "effective_rank",
    ...                        "step": [5, 5], "survives": [True, False], "shape": "step"})
    >>> fig = trajectories_figure(table, "effective_rank", events=events)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['a', 'b', '1 surviving event (1 step)']
    """
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

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
    event_rows = critical_rows = phase_rows = None
    if events is not None:
        table = _check_columns(events, _EVENT_COLUMNS, name="events", hint=_analysis_hint("events"))
        keep = _equals(table["metric"], metric) & _flag(table["survives"])
        event_rows = table.loc[keep & _in(table["layer"], layers)]
    if critical is not None:
        table = _check_columns(
            critical, _CRITICAL_COLUMNS, name="critical", hint=_analysis_hint("critical_periods")
        )
        critical_rows = table.loc[_equals(table["metric"], metric) & _in(table["layer"], layers)]
    if phases is not None:
        phase_rows = _phase_rows(phases)

    if figsize is None:
        figsize = (8.0, 4.5 + 2.5 * len(names))
    fig = _new_figure(figsize, dpi)
    axes = fig.subplots(
        1 + len(names), 1, sharex=True, squeeze=False, height_ratios=[1.8] + [1.0] * len(names)
    )[:, 0]
    ax = axes[0]
    # More lines than this and individual markers only add clutter.
    markers = rows["step"].nunique() <= 30
    colours: dict[str, str] = {}
    handles: list[Any] = []
    for layer in layers:
        line = rows.loc[rows["layer"] == layer].sort_values("step")
        (drawn,) = ax.plot(
            line["step"], line["value"], marker="." if markers else None, label=layer
        )
        colours[layer] = to_hex(drawn.get_color())
        handles.append(drawn)
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else f"{metric} by layer")
    for name, scalar_ax in zip(names, axes[1:], strict=True):
        assert scalar_rows is not None  # names is empty without scalars
        line = scalar_rows.loc[scalar_rows["name"] == name].sort_values("step")
        scalar_ax.plot(line["step"], line["value"], color="black")
        scalar_ax.set_ylabel(name)

    handles, labels = _shortened(handles, list(layers))
    if critical_rows is not None:
        for layer, start, end in critical_rows[["layer", "start", "end"]].itertuples(
            index=False, name=None
        ):
            ax.axvspan(
                start,
                end,
                facecolor=colours[str(layer)],
                alpha=_CRITICAL_ALPHA,
                linewidth=0,
                zorder=0.5,
                gid="critical",
            )
        handles.append(Patch(facecolor="0.4", alpha=2 * _CRITICAL_ALPHA))
        labels.append(_plural(len(critical_rows), "critical period"))
    if event_rows is not None:
        for layer, step in event_rows[["layer", "step"]].itertuples(index=False, name=None):
            colour = colours[str(layer)]
            ax.axvline(step, color=colour, linestyle="--", linewidth=1.0, zorder=1.5, gid="event")
            for scalar_ax in axes[1:]:
                scalar_ax.axvline(
                    step, ymin=0.85, ymax=1.0, color=colour, linewidth=1.5, gid="event"
                )
        label = _plural(len(event_rows), "surviving event")
        if "shape" in event_rows.columns and len(event_rows):
            label += f" ({_count_label(event_rows['shape'])})"
        handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=1.0))
        labels.append(label)
    ax.legend(
        handles,
        labels,
        title="layer",
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    # The scale first: the phase names' headroom reads the limits, which fixes them.
    _set_step_scale(axes[-1], step_scale)  # axes share x, so this sets every panel
    if phase_rows is not None:
        _draw_phases(list(axes), phase_rows)
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
    events: pd.DataFrame | None = None,
    critical: pd.DataFrame | None = None,
    phases: pd.DataFrame | None = None,
) -> Path:
    """Write the per-layer trajectories of :func:`trajectories_figure` to a PNG.

    Parameters
    ----------
    metrics, metric, scalars, scalar_names, title, layer_order, step_scale, figsize, dpi
        As :func:`trajectories_figure`.
    events, critical, phases
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
        events=events,
        critical=critical,
        phases=phases,
    )
    return _save(fig, path)


def bands_figure(
    bands: pd.DataFrame,
    metric: str,
    *,
    groups: Sequence[str] | None = None,
    layer_order: Sequence[str] | None = None,
    title: str | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Figure:
    """Draw one metric's mean and range over seeds, one panel per group of runs.

    Each layer is a line (the mean over the group's runs at each step) inside a band
    from the minimum to the maximum, in the same colour in every panel. Panels share
    both axes, three to a row, so groups (architectures, datasets) compare at a glance.

    Parameters
    ----------
    bands : DataFrame
        :func:`traindyn.analysis.seed_bands` output: columns ``group, layer, metric,
        step, n, mean, min, max``.
    metric : str
        Value of the ``metric`` column to draw.
    groups : sequence of str, optional
        Groups to draw, in panel order; defaults to order of first appearance.
    layer_order : sequence of str, optional
        Layers to draw, in legend order; defaults to order of first appearance.
    title : str, optional
        Figure title; defaults to ``"<metric> by layer across seeds"``. Each panel is
        titled with its group and "mean and range over <n> seeds" (the range of ``n``
        when it varies between steps).
    step_scale : {"linear", "log"}, default="linear"
        As :func:`heatmap_figure`.
    figsize : (float, float), optional
        Inches; defaults to 3.6 inches of width per panel column (plus the legend) and
        3 inches of height per row.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per group (row-major; unused grid cells are hidden). Bands are
        ``PolyCollection`` objects with ``gid="band"``, mean lines are the axes' lines.

    Raises
    ------
    ConfigError
        If a column is missing, ``metric`` is not in the table, ``groups`` or
        ``layer_order`` names something without values of ``metric``, or a (group,
        layer, step) appears twice.

    Examples
    --------
    >>> bands = pd.DataFrame({"group": "mlp", "layer": "fc", "metric": "effective_rank",
    ...                       "step": [0, 10], "n": [3, 3], "mean": [5.0, 3.0],
    ...                       "min": [4.0, 2.5], "max": [6.0, 3.5]})
    >>> fig = bands_figure(bands, "effective_rank")
    >>> fig.axes[0].get_title()
    'mlp\\nmean and range over 3 seeds'
    >>> fig.axes[0].get_lines()[0].get_ydata().tolist()
    [5.0, 3.0]
    """
    check_in(step_scale, _STEP_SCALES, name="step_scale")
    rows = _select(
        bands,
        metric,
        layer_order,
        columns=_BAND_COLUMNS,
        name="bands",
        unique=("group", "layer", "step"),
        hint="Pass traindyn.analysis.seed_bands(metrics, groups).",
    )
    layers = _layers(rows, layer_order)
    present = [str(g) for g in pd.unique(rows["group"])]
    _check_order(groups, name="groups", what="group")
    names = present if groups is None else list(groups)
    unknown = [g for g in names if g not in present]
    if unknown:
        raise ConfigError(
            f"groups must be groups with {metric!r} values ({present!r}); got {unknown!r}."
        )
    ncols = min(len(names), 3)
    nrows = -(-len(names) // ncols)
    if figsize is None:
        figsize = (3.6 * ncols + 1.8, 3.0 * nrows + 0.8)
    fig = _new_figure(figsize, dpi)
    grid = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    colours = dict(zip(layers, _colours(len(layers)), strict=True))
    markers = rows["step"].nunique() <= 30
    handles: dict[str, Any] = {}
    for i, (ax, group) in enumerate(zip(grid, names, strict=False)):
        in_group = rows.loc[_equals(rows["group"], group)]
        for layer in layers:
            line = in_group.loc[_equals(in_group["layer"], layer)].sort_values("step")
            if line.empty:
                continue
            steps = line["step"].to_numpy(dtype=np.float64)
            ax.fill_between(
                steps,
                line["min"].to_numpy(dtype=np.float64, na_value=np.nan),
                line["max"].to_numpy(dtype=np.float64, na_value=np.nan),
                color=colours[layer],
                alpha=0.2,
                linewidth=0,
                gid="band",
            )
            (drawn,) = ax.plot(
                steps,
                line["mean"].to_numpy(dtype=np.float64, na_value=np.nan),
                color=colours[layer],
                marker="." if markers else None,
                label=layer,
            )
            handles.setdefault(layer, drawn)
        counts = in_group["n"].to_numpy(dtype=np.int64)
        counts = counts[counts > 0]
        if counts.size == 0:
            seeds = "no finite values"
        elif counts.min() == counts.max():
            seeds = f"mean and range over {_plural(int(counts.max()), 'seed')}"
        else:
            seeds = f"mean and range over {counts.min()}-{counts.max()} seeds"
        ax.set_title(f"{group}\n{seeds}", fontsize="medium")
        if i % ncols == 0:
            ax.set_ylabel(metric)
        if i >= len(names) - ncols:
            ax.set_xlabel("step")
    for ax in grid[len(names) :]:
        ax.set_axis_off()
    _set_step_scale(grid[0], step_scale)  # axes share x, so this sets every panel
    drawn_layers = [layer for layer in layers if layer in handles]
    legend_handles, labels = _shortened([handles[layer] for layer in drawn_layers], drawn_layers)
    fig.legend(legend_handles, labels, title="layer", fontsize="small", loc="outside right upper")
    fig.suptitle(title if title is not None else f"{metric} by layer across seeds")
    return fig


def bands(
    bands: pd.DataFrame,
    metric: str,
    *,
    path: str | os.PathLike[str],
    groups: Sequence[str] | None = None,
    layer_order: Sequence[str] | None = None,
    title: str | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Path:
    """Write the seed bands of :func:`bands_figure` to a PNG.

    Parameters
    ----------
    bands, metric, groups, layer_order, title, step_scale, figsize, dpi
        As :func:`bands_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`bands_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = bands_figure(
        bands,
        metric,
        groups=groups,
        layer_order=layer_order,
        title=title,
        step_scale=step_scale,
        figsize=figsize,
        dpi=dpi,
    )
    return _save(fig, path)


def cka_matrices(table: pd.DataFrame) -> dict[str, tuple[list[str], NDArray[np.float64]]]:
    """Square CKA matrices from a stored ``checkpoint_comparison_*`` table.

    :func:`traindyn.capture.compare_checkpoints` stores CKA in long form, one row per
    ordered pair. Two schemas are recognised by their columns:

    - ``checkpoint_comparison_across_steps``: ``layer, step_a, step_b, cka``; one
      checkpoints x checkpoints matrix per layer, keyed by the layer, labelled
      ``"step <s>"`` in ascending step order;
    - ``checkpoint_comparison_across_layers``: ``step, layer_a, layer_b, cka``; one
      layers x layers matrix per checkpoint, keyed ``"step <s>"``, layers in the stored
      order.

    Parameters
    ----------
    table : DataFrame
        One of those tables (``run.read_analysis("checkpoint_comparison_across_steps")``);
        a ``reason`` and other columns are ignored.

    Returns
    -------
    dict of str to (list of str, ndarray of shape (n, n))
        Labels and matrix per key, in order of first appearance. A pair stored in one
        order only is mirrored (CKA is symmetric); a pair not stored at all is NaN. An
        empty table gives an empty dict.

    Raises
    ------
    ConfigError
        If ``table`` has neither schema, or stores a pair twice.

    Examples
    --------
    >>> t = pd.DataFrame({"layer": "fc", "step_a": [0, 0, 10, 10],
    ...                   "step_b": [0, 10, 0, 10], "cka": [1.0, 0.25, 0.25, 1.0]})
    >>> labels, matrix = cka_matrices(t)["fc"]
    >>> labels, matrix.tolist()
    (['step 0', 'step 10'], [[1.0, 0.25], [0.25, 1.0]])
    """
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"table must be a pandas DataFrame; got {type(table).__name__}.")
    across_steps = all(c in table.columns for c in _ACROSS_STEPS)
    if across_steps:
        key, a, b = "layer", "step_a", "step_b"
    elif all(c in table.columns for c in _ACROSS_LAYERS):
        key, a, b = "step", "layer_a", "layer_b"
    else:
        raise ConfigError(
            f"table must have the columns {', '.join(_ACROSS_STEPS)} (CKA across steps) or "
            f"{', '.join(_ACROSS_LAYERS)} (CKA across layers); got "
            f"{', '.join(map(str, table.columns))}. Pass "
            "run.read_analysis('checkpoint_comparison_across_steps')."
        )
    _check_unique(table, [key, a, b], what="the CKA table")
    out: dict[str, tuple[list[str], NDArray[np.float64]]] = {}
    for value in pd.unique(table[key].dropna()):
        rows = table.loc[_equals(table[key], value)]
        both = pd.concat([rows[a], rows[b]], ignore_index=True).dropna()
        names = sorted(pd.unique(both)) if across_steps else list(pd.unique(both))
        index = {v: i for i, v in enumerate(names)}
        rows = rows.loc[rows[a].notna() & rows[b].notna()]
        ia = rows[a].map(index).to_numpy(dtype=np.int64)
        ib = rows[b].map(index).to_numpy(dtype=np.int64)
        matrix = np.full((len(names), len(names)), np.nan)
        stored = np.zeros(matrix.shape, dtype=bool)
        matrix[ia, ib] = rows["cka"].to_numpy(dtype=np.float64, na_value=np.nan)
        stored[ia, ib] = True
        mirror = ~stored & stored.T
        matrix[mirror] = matrix.T[mirror]
        if across_steps:
            out[str(value)] = ([f"step {int(s)}" for s in names], matrix)
        else:
            out[f"step {int(value)}"] = ([str(name) for name in names], matrix)
    return out


def _square(matrix: Any, labels: Sequence[str]) -> NDArray[np.float64]:
    try:
        values = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"matrix must be a square array of numbers; got {type(matrix).__name__}: {exc}"
        ) from None
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] == 0:
        raise ConfigError(
            f"matrix must be a non-empty square array of shape (n, n); got shape "
            f"{values.shape}. Build one per layer or step with cka_matrices(table)."
        )
    if isinstance(labels, str) or len(labels) != values.shape[0]:
        raise ConfigError(
            f"labels must be a sequence of {values.shape[0]} names, one per row of the "
            f"matrix; got {labels!r}."
        )
    if np.isinf(values).any():
        raise ConfigError(
            f"matrix must hold numbers or NaN (a pair without a value); got "
            f"{int(np.isinf(values).sum())} infinite value(s)."
        )
    return values


def cka_matrix_figure(
    matrix: Any,
    *,
    labels: Sequence[str],
    title: str | None = None,
    annotate: bool | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Figure:
    """Draw a square CKA matrix as an annotated heatmap and return the figure.

    Row ``i``, column ``j`` is the similarity of representation ``labels[i]`` with
    ``labels[j]``, rows top to bottom. The colour scale is fixed to [0, 1], the range of
    linear CKA, so matrices of different layers or runs compare by colour; NaN cells are
    grey and counted in the title.

    Parameters
    ----------
    matrix : array_like of shape (n, n)
        CKA values (NaN where undefined), e.g. from :func:`cka_matrices`.
    labels : sequence of str of length n
        Names of the rows and columns (checkpoints or layers).
    title : str, optional
        Defaults to ``"linear CKA"``; the NaN count is appended either way.
    annotate : bool, optional
        Write each value (two decimals) in its cell; by default when ``n <= 12``.
    figsize : (float, float), optional
        Inches; defaults to a square that grows with ``n``, plus the colour bar.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        The matrix axes (its ``QuadMesh`` holds the n x n array; value texts have
        ``gid="cka"``) and a colour bar.

    Raises
    ------
    ConfigError
        If ``matrix`` is not a non-empty square numeric array, holds ±Inf, or ``labels``
        does not have one name per row.

    Examples
    --------
    >>> fig = cka_matrix_figure([[1.0, 0.5], [0.5, 1.0]], labels=["step 0", "step 10"])
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['1.00', '0.50', '0.50', '1.00']
    >>> fig.axes[0].collections[0].get_clim()
    (0.0, 1.0)
    """
    import matplotlib as mpl

    values = _square(matrix, labels)
    n = values.shape[0]
    if annotate is None:
        annotate = n <= _ANNOTATE_LIMIT
    if figsize is None:
        side = min(10.0, max(4.0, 0.5 * n + 2.0))
        figsize = (side + 1.3, side)
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    cmap = mpl.colormaps["viridis"].with_extremes(bad=_NAN_COLOUR)
    edges = np.arange(n + 1, dtype=np.float64)
    mesh = ax.pcolormesh(
        edges,
        edges,
        np.ma.masked_invalid(values),
        cmap=cmap,
        norm=mpl.colors.Normalize(vmin=0.0, vmax=1.0),
        shading="flat",
    )
    centres = np.arange(n) + 0.5
    long = max(len(str(label)) for label in labels) > 4
    ax.set_xticks(
        centres,
        [str(v) for v in labels],
        rotation=45 if long else 0,
        ha="right" if long else "center",
    )
    ax.set_yticks(centres, [str(v) for v in labels])
    ax.invert_yaxis()
    ax.set_aspect("equal")
    if annotate:
        size = "small" if n > 6 else "medium"
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text, colour = ("NaN", "black") if np.isnan(v) else (f"{v:.2f}", None)
                if colour is None:
                    colour = _text_colour(mesh.cmap(mesh.norm(v)))
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    text,
                    ha="center",
                    va="center",
                    fontsize=size,
                    color=colour,
                    gid="cka",
                )
    fig.colorbar(mesh, ax=ax, label="linear CKA")
    n_nan = int(np.isnan(values).sum())
    label = title if title is not None else "linear CKA"
    ax.set_title(f"{label} (grey: {_plural(n_nan, 'NaN cell')})" if n_nan else label)
    return fig


def cka_matrix(
    matrix: Any,
    *,
    labels: Sequence[str],
    path: str | os.PathLike[str],
    title: str | None = None,
    annotate: bool | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Path:
    """Write the CKA matrix of :func:`cka_matrix_figure` to a PNG.

    Parameters
    ----------
    matrix, labels, title, annotate, figsize, dpi
        As :func:`cka_matrix_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`cka_matrix_figure`, or if ``path`` does not end in ``.png``.

    Examples
    --------
    Every stored matrix of a run, one PNG each::

        table = run.read_analysis("checkpoint_comparison_across_steps")
        for layer, (labels, matrix) in cka_matrices(table).items():
            cka_matrix(matrix, labels=labels, title=f"CKA of {layer} across steps",
                       path=run.path / "figures" / f"cka-{layer}.png")
    """
    fig = cka_matrix_figure(
        matrix, labels=labels, title=title, annotate=annotate, figsize=figsize, dpi=dpi
    )
    return _save(fig, path)


def temporal_figure(
    temporal: pd.DataFrame,
    *,
    by: TemporalBy = "metric",
    metric: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Figure:
    """Draw the share of change in each window as stacked horizontal bars.

    One bar per metric (``by="metric"``) or per layer of one metric (``by="layer"``),
    top to bottom in order of first appearance; each bar is split into the windows
    (early, mid, late: the order in which they first appear) with their share written as
    a percentage where the segment is wide enough (4% or more). A pooled row
    (``metric == "*"`` in a suite directory's table) is labelled "all metrics (pooled)".

    Parameters
    ----------
    temporal : DataFrame
        ``analysis/temporal.parquet`` of a run (columns ``layer, metric, window,
        share``, one row per layer) or of a suite directory (``metric, window, share``,
        pooled over runs and layers).
    by : {"metric", "layer"}, default="metric"
        What a bar is. ``"metric"`` needs one row per (metric, window): pool a run's
        table first with :func:`traindyn.analysis.pool_temporal` ``(temporal,
        by=["metric"])``. ``"layer"`` needs a ``layer`` column.
    metric : str, optional
        The metric whose layers are drawn with ``by="layer"``; required when the table
        has several.
    title : str, optional
        Defaults to ``"share of change per window"`` (with the metric for ``by="layer"``).
    figsize : (float, float), optional
        Inches; defaults to 8 wide and 0.4 inches of height per bar plus 1.4.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; each segment is a ``Rectangle`` with ``gid="share"`` whose width is
        the share (0 where the share is NaN; a bar with no share at all reads "no change
        above noise"). An empty table gives an axes reading "no data".

    Raises
    ------
    ConfigError
        If a column is missing, ``by`` or ``metric`` is invalid, or a (bar, window)
        pair appears twice (the message says how to pool).

    Examples
    --------
    >>> t = pd.DataFrame({"metric": "effective_rank", "window": ["early", "mid", "late"],
    ...                   "share": [0.6, 0.3, 0.1]})
    >>> fig = temporal_figure(t)
    >>> [round(float(p.get_width()), 2) for p in fig.axes[0].patches]
    [0.6, 0.3, 0.1]
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['60%', '30%', '10%']
    """
    import matplotlib as mpl
    from matplotlib.ticker import PercentFormatter

    check_in(by, _TEMPORAL_BY, name="by")
    table = _check_columns(
        temporal, _TEMPORAL_COLUMNS, name="temporal", hint=_analysis_hint("temporal")
    )
    if by == "layer":
        if "layer" not in table.columns:
            raise ConfigError(
                f"temporal must have a layer column with by='layer'; got "
                f"{', '.join(map(str, table.columns))}. A suite directory's table is pooled "
                "over layers: use by='metric'."
            )
        present = [str(m) for m in pd.unique(table["metric"].dropna())]
        if metric is None:
            if len(present) > 1:
                raise ConfigError(
                    f"metric is required with by='layer' when the table has several "
                    f"metrics; got None. Pass one of {present!r}."
                )
            metric = present[0] if present else None
        elif metric not in present:
            raise ConfigError(
                f"metric must be one of the metrics in the table ({present!r}); got {metric!r}."
            )
        rows = table.loc[_equals(table["metric"], metric)]
        key = "layer"
    else:
        if metric is not None:
            raise ConfigError(
                f"metric selects the layers drawn with by='layer'; got metric={metric!r} "
                "with by='metric'. Pass by='layer', or leave metric out."
            )
        rows, key = table, "metric"
    duplicated = rows.duplicated([key, "window"])
    if duplicated.any():
        first = rows.loc[duplicated, [key, "window"]].iloc[0].tolist()
        hint = (
            "This run-level table has one row per layer: pass by='layer' and a metric, or "
            "pool the layers with traindyn.analysis.pool_temporal(temporal, by=['metric'])."
            if key == "metric" and "layer" in rows.columns
            else "Plot one run at a time."
        )
        raise ConfigError(
            f"temporal must have one share per ({key}, window); got "
            f"{int(duplicated.sum())} duplicate row(s), first {first!r}. {hint}"
        )
    bars = [str(v) for v in pd.unique(rows[key].dropna())]
    windows = [str(v) for v in pd.unique(rows["window"].dropna())]
    if figsize is None:
        figsize = (8.0, 1.4 + 0.4 * max(len(bars), 1))
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    default = "share of change per window"
    if by == "layer" and metric is not None:
        default = f"{metric}: share of change per window, by layer"
    ax.set_title(title if title is not None else default)
    if not bars or not windows:
        _no_data(ax)
        return fig
    shares = (
        rows.assign(**{key: rows[key].astype(str), "window": rows["window"].astype(str)})
        .pivot(index=key, columns="window", values="share")
        .reindex(index=bars, columns=windows)
        .to_numpy(dtype=np.float64, na_value=np.nan)
    )
    y = np.arange(len(bars), dtype=np.float64)
    left = np.zeros(len(bars))
    colours = mpl.colormaps["viridis"](np.linspace(0.15, 0.85, len(windows)))
    for j, window in enumerate(windows):
        widths = np.nan_to_num(shares[:, j], nan=0.0)
        ax.barh(y, widths, left=left, color=colours[j], label=window, gid="share")
        text_colour = _text_colour(colours[j])
        for i in np.flatnonzero(widths >= _LABEL_MIN_SHARE):
            ax.text(
                left[i] + widths[i] / 2,
                y[i],
                f"{100 * widths[i]:.0f}%",
                ha="center",
                va="center",
                fontsize="small",
                color=text_colour,
            )
        left += widths
    for i in np.flatnonzero(np.isnan(shares).all(axis=1)):
        ax.text(0.01, y[i], "no change above noise", va="center", fontsize="small", color="0.4")
    ax.set_yticks(y, ["all metrics (pooled)" if b == _POOLED else b for b in bars])
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("share of change")
    ax.legend(title="window", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def temporal(
    temporal: pd.DataFrame,
    *,
    path: str | os.PathLike[str],
    by: TemporalBy = "metric",
    metric: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Path:
    """Write the shares of change of :func:`temporal_figure` to a PNG.

    Parameters
    ----------
    temporal, by, metric, title, figsize, dpi
        As :func:`temporal_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`temporal_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = temporal_figure(temporal, by=by, metric=metric, title=title, figsize=figsize, dpi=dpi)
    return _save(fig, path)


def convergence_figure(
    convergence: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: float = _DPI,
) -> Figure:
    """Draw when each layer stabilised against its depth, one line per metric.

    x is the layer depth (ticks labelled with the layer names, input to output), y the
    stabilisation step. A layer that never stabilised has no y: it is a hollow marker in
    its metric's colour along the top of the axes and a gap in the line, and the title
    and legend say how many there are.

    Parameters
    ----------
    convergence : DataFrame
        ``analysis/convergence.parquet``: columns ``layer, metric, depth, stabilized,
        stabilization_step``.
    metrics : sequence of str, optional
        Metrics to draw, in legend order; defaults to order of first appearance.
    title : str, optional
        Defaults to ``"stabilisation step by layer depth"``; the count of layers that
        never stabilised is appended either way.
    figsize : (float, float), default=(8.0, 4.5)
        Inches.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: a line per metric (NaN where not stabilised) and, per metric with
        unstabilised layers, a hollow ``PathCollection`` with ``gid="unstabilised"``
        whose offsets are ``(depth, 0.96)`` in (data, axes) coordinates. An empty table
        gives an axes reading "no data".

    Raises
    ------
    ConfigError
        If a column is missing, ``metrics`` names a metric not in the table, or a
        (layer, metric) appears twice.

    Examples
    --------
    >>> c = pd.DataFrame({"layer": ["l0", "l1", "l0", "l1"], "metric": ["pr"] * 2 + ["er"] * 2,
    ...                   "depth": [0, 1, 0, 1], "stabilized": [True, True, True, False],
    ...                   "stabilization_step": pd.array([30, 10, 40, None], dtype="Int64")})
    >>> fig = convergence_figure(c)
    >>> fig.axes[0].get_lines()[1].get_ydata().tolist()
    [40.0, nan]
    >>> fig.axes[0].get_title()
    'stabilisation step by layer depth (1 of 4 never stabilised)'
    """
    from matplotlib.lines import Line2D

    table = _check_columns(
        convergence, _CONVERGENCE_COLUMNS, name="convergence", hint=_analysis_hint("convergence")
    )
    present = [str(m) for m in pd.unique(table["metric"].dropna())]
    _check_order(metrics, name="metrics", what="metric")
    names = present if metrics is None else list(metrics)
    unknown = [m for m in names if m not in present]
    if unknown:
        raise ConfigError(
            f"metrics must be metrics in the convergence table ({present!r}); got {unknown!r}."
        )
    rows = table.loc[_in(table["metric"], names)]
    _check_unique(rows, ["layer", "metric"], what="convergence")
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    label = title if title is not None else "stabilisation step by layer depth"
    if rows.empty:
        ax.set_title(label)
        _no_data(ax)
        return fig
    steps = rows["stabilization_step"].to_numpy(dtype=np.float64, na_value=np.nan)
    stable = _flag(rows["stabilized"]) & np.isfinite(steps)
    n_unstable = int((~stable).sum())
    handles: list[Any] = []
    for metric in names:
        mask = _equals(rows["metric"], metric)
        depth = rows["depth"].to_numpy(dtype=np.float64)[mask]
        order = np.argsort(depth, kind="stable")
        depth, y, ok = depth[order], steps[mask][order], stable[mask][order]
        (line,) = ax.plot(depth, np.where(ok, y, np.nan), marker="o", label=metric)
        handles.append(line)
        if not ok.all():
            ax.scatter(
                depth[~ok],
                np.full(int((~ok).sum()), 0.96),
                transform=ax.get_xaxis_transform(),
                marker="o",
                s=42,
                facecolors="none",
                edgecolors=line.get_color(),
                linewidths=1.5,
                clip_on=False,
                zorder=3,
                gid="unstabilised",
            )
    labels = list(names)
    handles, labels = _shortened(handles, labels)
    if n_unstable:
        hollow = Line2D(
            [], [], marker="o", linestyle="none", markerfacecolor="none", markeredgecolor="0.3"
        )
        handles.append(hollow)
        labels.append(f"never stabilised ({n_unstable}; at the top)")
    ax.legend(handles, labels, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ticks = rows[["depth", "layer"]].drop_duplicates().sort_values("depth", kind="stable")
    depths = [float(d) for d in pd.unique(ticks["depth"])]
    names_at = ["/".join(str(v) for v in ticks.loc[ticks["depth"] == d, "layer"]) for d in depths]
    ax.set_xticks(depths, names_at, rotation=30 if len(depths) > 4 else 0)
    ax.set_xlim(min(depths) - 0.5, max(depths) + 0.5)
    # Explicit limits: the hollow markers sit at 96% of the height, above every step.
    finite = steps[stable]
    top = max(float(finite.max()) * 1.15, 1.0) if finite.size else 1.0
    ax.set_ylim(-0.04 * top, top)
    ax.set_xlabel("layer depth (input to output)")
    ax.set_ylabel("stabilisation step")
    ax.set_title(f"{label} ({n_unstable} of {len(rows)} never stabilised)" if n_unstable else label)
    return fig


def convergence(
    convergence: pd.DataFrame,
    *,
    path: str | os.PathLike[str],
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: float = _DPI,
) -> Path:
    """Write the stabilisation steps of :func:`convergence_figure` to a PNG.

    Parameters
    ----------
    convergence, metrics, title, figsize, dpi
        As :func:`convergence_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`convergence_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = convergence_figure(convergence, metrics=metrics, title=title, figsize=figsize, dpi=dpi)
    return _save(fig, path)


_ARCH_COLUMNS = ("events_surviving", "share_early", "mean_coordination")


def arch_comparison_figure(
    by_arch: pd.DataFrame,
    *,
    columns: Sequence[str] = _ARCH_COLUMNS,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Figure:
    """Draw a suite's per-architecture summary as bars, one small axes per column.

    Each axes has one bar per architecture (same colour in every axes, value written
    on top; "n/a" for NaN), so the columns, whose units differ, are read side by side.

    Parameters
    ----------
    by_arch : DataFrame
        A suite directory's ``analysis/by_arch.parquet``: columns ``arch`` and the
        numeric ``columns`` (means over the architecture's runs); with an ``n_runs``
        column the tick labels give the number of runs.
    columns : sequence of str, default=("events_surviving", "share_early", "mean_coordination")
        Numeric columns to draw, one axes each, left to right.
    title : str, optional
        Defaults to ``"by architecture (mean over runs)"``.
    figsize : (float, float), optional
        Inches; defaults to 2.8 inches of width per column and 3.8 of height.
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per column, titled with it; each bar is a ``Rectangle`` with
        ``gid="arch"`` whose height is the table's value. An empty table gives axes
        reading "no data".

    Raises
    ------
    ConfigError
        If ``columns`` is empty or a string, a column is missing or not numeric, or an
        arch appears twice (``overview.parquet`` has one row per run, not per arch).

    Examples
    --------
    >>> t = pd.DataFrame({"arch": ["cnn", "mlp"], "n_runs": [4, 4],
    ...                   "events_surviving": [4.5, 9.25], "share_early": [0.35, 0.72]})
    >>> fig = arch_comparison_figure(t, columns=["events_surviving", "share_early"])
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [4.5, 9.25]
    >>> [t.get_text() for t in fig.axes[1].get_xticklabels()]
    ['cnn\\n(4 runs)', 'mlp\\n(4 runs)']
    """
    if isinstance(columns, str):
        raise ConfigError(
            f"columns must be a sequence of column names; got the string {columns!r}. "
            f"Use [{columns!r}]."
        )
    if not len(columns):
        raise ConfigError(
            f"columns must name at least one numeric column of by_arch; got {columns!r}."
        )
    names = list(columns)
    hint = "Pass a suite directory's analysis/by_arch.parquet (traindyn analyze DIR)."
    table = _check_columns(by_arch, ("arch", *names), name="by_arch", hint=hint)
    numeric = [
        str(c) for c in table.columns if c != "arch" and pd.api.types.is_numeric_dtype(table[c])
    ]
    bad = [c for c in names if c not in numeric]
    if bad:
        raise ConfigError(
            f"columns must be numeric columns of by_arch; got {bad!r}. Numeric columns: "
            f"{numeric!r}."
        )
    duplicated = table.duplicated(["arch"])
    if duplicated.any():
        raise ConfigError(
            f"by_arch must have one row per arch; got {int(duplicated.sum())} duplicate "
            f"row(s), first {table.loc[duplicated, 'arch'].iloc[0]!r}. {hint}"
        )
    if figsize is None:
        figsize = (2.8 * len(names) + 0.6, 3.8)
    fig = _new_figure(figsize, dpi)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    fig.suptitle(title if title is not None else "by architecture (mean over runs)")
    archs = [str(a) for a in table["arch"]]
    ticks = archs
    if "n_runs" in table.columns:
        runs = table["n_runs"].to_numpy(dtype=np.float64, na_value=np.nan)
        ticks = [
            f"{a}\n({_plural(int(n), 'run')})" if np.isfinite(n) else a
            for a, n in zip(archs, runs, strict=True)
        ]
    x = np.arange(len(archs), dtype=np.float64)
    colours = _colours(len(archs))
    for ax, column in zip(axes, names, strict=True):
        ax.set_title(column, fontsize="medium")
        if not archs:
            _no_data(ax)
            continue
        values = table[column].to_numpy(dtype=np.float64, na_value=np.nan)
        ax.bar(x, values, color=colours, gid="arch")
        for xi, v in zip(x, values, strict=True):
            finite = bool(np.isfinite(v))
            ax.annotate(
                f"{v:.3g}" if finite else "n/a",
                xy=(xi, v if finite else 0.0),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize="small",
            )
        tilted = len(archs) > 2
        ax.set_xticks(
            x,
            ticks,
            rotation=30 if tilted else 0,
            ha="right" if tilted else "center",
            rotation_mode="anchor",
            fontsize="small",
        )
        finite_values = values[np.isfinite(values)]
        if finite_values.size and finite_values.min() >= 0:
            # Room above the tallest bar for its value.
            ax.set_ylim(0.0, float(finite_values.max()) * 1.15 or 1.0)
    return fig


def arch_comparison(
    by_arch: pd.DataFrame,
    *,
    path: str | os.PathLike[str],
    columns: Sequence[str] = _ARCH_COLUMNS,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Path:
    """Write the per-architecture bars of :func:`arch_comparison_figure` to a PNG.

    Parameters
    ----------
    by_arch, columns, title, figsize, dpi
        As :func:`arch_comparison_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`arch_comparison_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = arch_comparison_figure(by_arch, columns=columns, title=title, figsize=figsize, dpi=dpi)
    return _save(fig, path)


def event_types_figure(
    events: pd.DataFrame,
    *,
    layer_order: Sequence[str] | None = None,
    title: str | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Figure:
    """Draw the surviving events of a run: when, where, which jump type and shape.

    x is the event's step, y its layer (one row per layer, top to bottom in order of
    first appearance in the table, which is depth order in ``events.parquet``), colour
    the k-means jump type (``type``; -1, untyped, is grey) and marker the shape
    (circle: step, triangle: slope_change, square: drift, cross: other). Events of
    different metrics in one row are offset vertically, in the metrics' order of first
    appearance, so coinciding events stay visible. Events that do not survive are not
    drawn.

    Parameters
    ----------
    events : DataFrame
        ``analysis/events.parquet``: columns ``layer, step, survives, shape, type``, and
        ``metric`` (optional, for the offsets).
    layer_order : sequence of str, optional
        Layers (rows) to draw, top to bottom; defaults to every layer in the table,
        including those without a surviving event.
    title : str, optional
        Defaults to ``"surviving events by layer"``; the count is appended either way.
    step_scale : {"linear", "log"}, default="linear"
        As :func:`heatmap_figure`.
    figsize : (float, float), optional
        Inches; defaults to 8 wide and 0.45 inches of height per layer plus 1.6 (at
        least 3.5).
    dpi : float, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; each (type, shape) pair is one ``PathCollection`` with
        ``gid="event"`` whose offsets are ``(step, row + offset)``. With no surviving
        event, the axes reads "no surviving events".

    Raises
    ------
    ConfigError
        If a column is missing or ``layer_order`` names a layer not in the table.

    Examples
    --------
    >>> e = pd.DataFrame({"layer": ["l0", "l1", "l1"], "metric": "pr", "step": [10, 5, 40],
    ...                   "survives": [True, True, False], "type": [0, -1, 1],
    ...                   "shape": ["step", "slope_change", "step"]})
    >>> fig = event_types_figure(e)
    >>> fig.axes[0].get_title()
    'surviving events by layer (2 surviving events)'
    >>> sorted(tuple(o) for c in fig.axes[0].collections for o in c.get_offsets().tolist())
    [(5.0, 1.0), (10.0, 0.0)]
    """
    import matplotlib as mpl
    from matplotlib.lines import Line2D

    check_in(step_scale, _STEP_SCALES, name="step_scale")
    table = _check_columns(
        events, _EVENT_TYPE_COLUMNS, name="events", hint=_analysis_hint("events")
    )
    present = [str(v) for v in pd.unique(table["layer"].dropna())]
    _check_order(layer_order, name="layer_order")
    if layer_order is not None:
        unknown = [layer for layer in layer_order if layer not in present]
        if unknown:
            raise ConfigError(
                f"layer_order names layers without events: {unknown!r}. Layers in the "
                f"table: {present!r}."
            )
    layers = present if layer_order is None else list(layer_order)
    rows = table.loc[_flag(table["survives"]) & _in(table["layer"], layers)]
    if figsize is None:
        figsize = (8.0, max(3.5, 1.6 + 0.45 * len(layers)))
    fig = _new_figure(figsize, dpi)
    ax = fig.add_subplot()
    label = title if title is not None else "surviving events by layer"
    ax.set_title(f"{label} ({_plural(len(rows), 'surviving event')})")
    if rows.empty:
        _no_data(ax, "no surviving events")
        return fig
    row_of = {layer: i for i, layer in enumerate(layers)}
    y: NDArray[np.float64] = np.asarray(rows["layer"].astype(str).map(row_of), dtype=np.float64)
    if "metric" in rows.columns:
        metric_names = rows["metric"].astype(object).where(rows["metric"].notna(), "")
        order = {m: i for i, m in enumerate(pd.unique(metric_names))}
        # Spread over 60% of a row: neighbouring rows stay apart.
        spacing = 0.6 / len(order)
        y = (
            y
            + (metric_names.map(order).to_numpy(dtype=np.float64) - (len(order) - 1) / 2) * spacing
        )
    steps = rows["step"].to_numpy(dtype=np.float64)
    types = np.nan_to_num(rows["type"].to_numpy(dtype=np.float64, na_value=-1.0), nan=-1.0).astype(
        np.int64
    )
    shapes = rows["shape"].astype(object).where(rows["shape"].notna(), "unknown").astype(str)
    shapes_arr = shapes.to_numpy()
    tab10 = mpl.colormaps["tab10"]
    palette = [tab10(i) for i in range(10)]

    def colour(t: int) -> Any:
        return _NAN_COLOUR if t < 0 else palette[t % len(palette)]

    shape_names = [str(s) for s in pd.unique(shapes)]
    for t in sorted(set(types.tolist())):
        for shape in shape_names:
            mask = (types == t) & (shapes_arr == shape)
            if mask.any():
                ax.scatter(
                    steps[mask],
                    y[mask],
                    color=colour(t),
                    marker=_SHAPE_MARKERS.get(shape, "X"),
                    s=46,
                    edgecolors="black",
                    linewidths=0.5,
                    zorder=3,
                    gid="event",
                )
    handles: list[Any] = []
    labels: list[str] = []
    for t in sorted(set(types.tolist()), key=lambda v: (v < 0, v)):
        handles.append(Line2D([], [], marker="o", linestyle="none", color=colour(t)))
        count = int((types == t).sum())
        labels.append(f"untyped ({count})" if t < 0 else f"type {t} ({count})")
    handles, labels = _shortened(handles, labels)
    for shape in shape_names:
        marker = _SHAPE_MARKERS.get(shape, "X")
        handles.append(Line2D([], [], marker=marker, linestyle="none", color="0.45"))
        labels.append(f"{shape} ({int((shapes_arr == shape).sum())})")
    ax.legend(
        handles,
        labels,
        title="colour: type; marker: shape",
        fontsize="small",
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    ax.set_yticks(np.arange(len(layers)), layers)
    ax.set_ylim(len(layers) - 0.5, -0.5)  # first layer on top
    for i in range(1, len(layers)):
        ax.axhline(i - 0.5, color="0.9", linewidth=0.8, zorder=0)
    _set_step_scale(ax, step_scale)
    ax.set_xlabel("step")
    ax.set_ylabel("layer")
    return fig


def event_types(
    events: pd.DataFrame,
    *,
    path: str | os.PathLike[str],
    layer_order: Sequence[str] | None = None,
    title: str | None = None,
    step_scale: StepScale = "linear",
    figsize: tuple[float, float] | None = None,
    dpi: float = _DPI,
) -> Path:
    """Write the surviving events of :func:`event_types_figure` to a PNG.

    Parameters
    ----------
    events, layer_order, title, step_scale, figsize, dpi
        As :func:`event_types_figure`.
    path : str or path-like
        Where to write; must end in ``.png``. Parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        As :func:`event_types_figure`, or if ``path`` does not end in ``.png``.
    """
    fig = event_types_figure(
        events,
        layer_order=layer_order,
        title=title,
        step_scale=step_scale,
        figsize=figsize,
        dpi=dpi,
    )
    return _save(fig, path)
