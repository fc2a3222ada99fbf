from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from traindyn.exceptions import ConfigError
from traindyn.report import (
    arch_comparison,
    arch_comparison_figure,
    bands,
    bands_figure,
    cka_matrices,
    cka_matrix,
    cka_matrix_figure,
    convergence,
    convergence_figure,
    event_types,
    event_types_figure,
    heatmap,
    heatmap_figure,
    temporal,
    temporal_figure,
    trajectories,
    trajectories_figure,
)

LAYERS = ["layers.0", "layers.1", "layers.2"]
STEPS = [0, 5, 10, 50]  # uneven on purpose: cells must sit on a real step axis


def _table(nan_at: tuple[str, int] | None = None) -> pd.DataFrame:
    rows = []
    for i, layer in enumerate(LAYERS):
        for j, step in enumerate(STEPS):
            value = float(10 * i + j)
            if nan_at == (layer, step):
                value = np.nan
            rows.append((step, layer, "participation_ratio", value))
            rows.append((step, layer, "effective_rank", 1.0))
    table = pd.DataFrame(rows, columns=["step", "layer", "metric", "value"])
    table["step"] = table["step"].astype("int64")
    table["reason"] = np.where(table["value"].isna(), "non-finite activations", "")
    return table


def _scalars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.repeat(STEPS, 2).astype("int64"),
            "name": ["loss", "accuracy"] * len(STEPS),
            "value": [2.3, 0.1, 1.0, 0.5, 0.5, 0.8, 0.2, 0.95],
        }
    )


def _mesh(fig: Any) -> Any:
    """The QuadMesh of a heatmap: its array is the layer x step grid."""
    return fig.axes[0].collections[0]


def _at(image: np.ndarray[Any, Any], ax: Any, x: float, y: float) -> np.ndarray[Any, Any]:
    """Colour of ``image`` (rows top-down) at data coordinates (x, y) of ``ax``."""
    px, py = ax.transData.transform((x, y))  # display pixels, origin bottom left
    colour: np.ndarray[Any, Any] = image[round(image.shape[0] - py), round(px)]
    return colour


def _pixel(fig: Any, x: float, y: float, ax: Any) -> np.ndarray[Any, Any]:
    """RGBA (0..1) of the rendered figure at data coordinates (x, y) of ``ax``."""
    fig.canvas.draw()
    return _at(np.asarray(fig.canvas.buffer_rgba(), dtype=np.float64) / 255, ax, x, y)


def test_import_does_not_import_matplotlib() -> None:
    code = (
        "import sys, traindyn, traindyn.report, traindyn.experiments; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_heatmap_writes_png_of_expected_size(tmp_path: Path) -> None:
    import matplotlib.image

    out = heatmap(_table(), "participation_ratio", path=tmp_path / "sub" / "hm.png")
    assert out == tmp_path / "sub" / "hm.png"
    assert out.exists()
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (450, 800)

    small = heatmap(
        _table(), "participation_ratio", path=tmp_path / "s.png", figsize=(4, 3), dpi=50
    )
    assert matplotlib.image.imread(small).shape[:2] == (150, 200)


def test_heatmap_array_layout() -> None:
    fig = heatmap_figure(_table(), "participation_ratio")
    ax = fig.axes[0]
    data = _mesh(fig).get_array()
    assert data.shape == (len(LAYERS), len(STEPS))
    expected = 10 * np.arange(3)[:, None] + np.arange(4)[None, :]
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert [t.get_text() for t in ax.get_yticklabels()] == LAYERS
    assert ax.get_xlabel() == "step"
    assert fig.axes[1].get_ylabel() == "participation_ratio"  # the colour bar
    # Cell edges halfway between uneven steps: 0 | 2.5 | 7.5 | 30 | 70.
    edges = _mesh(fig).get_coordinates()[0, :, 0]
    np.testing.assert_allclose(edges, [-2.5, 2.5, 7.5, 30.0, 70.0])


def test_heatmap_largest_value_drawn_in_its_cell(tmp_path: Path) -> None:
    import matplotlib.image

    fig = heatmap_figure(_table(), "participation_ratio")
    ax = fig.axes[0]
    mesh = _mesh(fig)
    top = np.asarray(mesh.cmap(mesh.norm(23.0)))  # layers.2 at step 50
    bottom = np.asarray(mesh.cmap(mesh.norm(0.0)))  # layers.0 at step 0
    # Layer rows are drawn top to bottom at y = 0.5, 1.5, 2.5 (inverted axis).
    np.testing.assert_allclose(_pixel(fig, 50.0, 2.5, ax), top, atol=2 / 255)
    np.testing.assert_allclose(_pixel(fig, 0.0, 0.5, ax), bottom, atol=2 / 255)
    # Rows run top to bottom in layer order on the image itself.
    _, y_first = ax.transData.transform((0.0, 0.5))
    _, y_last = ax.transData.transform((0.0, 2.5))
    assert y_first > y_last

    # The PNG holds the same pixels as the canvas.
    out = heatmap(_table(), "participation_ratio", path=tmp_path / "hm.png")
    png = matplotlib.image.imread(out)
    np.testing.assert_allclose(_at(png, ax, 50.0, 2.5), top, atol=2 / 255)


def test_heatmap_nan_cells_are_grey_and_counted() -> None:
    fig = heatmap_figure(_table(nan_at=("layers.1", 10)), "participation_ratio")
    ax = fig.axes[0]
    assert ax.get_title() == "participation_ratio by layer (grey: 1 NaN cell)"
    rgba = _pixel(fig, 10.0, 1.5, ax)
    np.testing.assert_allclose(rgba[:3], [0x9E / 255] * 3, atol=2 / 255)
    mesh = _mesh(fig)
    assert int(np.isnan(np.ma.filled(mesh.get_array(), np.nan)).sum()) == 1


def test_heatmap_missing_cells_counted_separately() -> None:
    table = _table(nan_at=("layers.0", 0))
    table = table.drop(table.index[(table["layer"] == "layers.2") & (table["step"] == 5)])
    fig = heatmap_figure(table, "participation_ratio", title="PR")
    assert fig.axes[0].get_title() == "PR (grey: 1 NaN cell, 1 missing)"


def test_heatmap_all_nan_draws_without_warning() -> None:
    table = _table()
    table["value"] = np.nan
    fig = heatmap_figure(table, "participation_ratio")
    fig.canvas.draw()
    assert "12 NaN cells" in fig.axes[0].get_title()


def test_heatmap_layer_order_and_single_step() -> None:
    table = _table()
    table = table[table["step"] == 10]
    fig = heatmap_figure(table, "participation_ratio", layer_order=["layers.2", "layers.0"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["layers.2", "layers.0"]
    np.testing.assert_array_equal(np.asarray(_mesh(fig).get_array()), [[22.0], [2.0]])


def test_heatmap_unknown_metric_lists_available() -> None:
    with pytest.raises(
        ConfigError, match=r"metric must be one of .*'participation_ratio', 'effective_rank'.*'pr'"
    ):
        heatmap_figure(_table(), "pr")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layer_order": ["layers.9"]}, r"layer_order names layers without .*'layers.9'"),
        ({"layer_order": "layers.0"}, "layer_order must be a sequence"),
        ({"layer_order": ["layers.0", "layers.0"]}, "must not repeat"),
    ],
)
def test_heatmap_bad_layer_order(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        heatmap_figure(_table(), "participation_ratio", **kwargs)


def test_heatmap_table_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing value"):
        heatmap_figure(_table().drop(columns="value"), "participation_ratio")
    with pytest.raises(ConfigError, match="must be a pandas DataFrame"):
        heatmap_figure({"step": [0]}, "participation_ratio")  # type: ignore[arg-type]
    doubled = pd.concat([_table(), _table()])
    with pytest.raises(ConfigError, match=r"one value per \(step, layer\).*drop_duplicates"):
        heatmap_figure(doubled, "participation_ratio")
    with pytest.raises(ConfigError, match=r"path must end in \.png.*hm\.png"):
        heatmap(_table(), "participation_ratio", path=tmp_path / "hm.svg")


def test_trajectories_png(tmp_path: Path) -> None:
    import matplotlib.image

    out = trajectories(_table(), "participation_ratio", path=tmp_path / "t.png")
    assert matplotlib.image.imread(out).shape[:2] == (450, 800)
    with_scalars = trajectories(
        _table(), "participation_ratio", path=tmp_path / "ts.png", scalars=_scalars()
    )
    assert matplotlib.image.imread(with_scalars).shape[:2] == (950, 800)


def test_trajectories_lines() -> None:
    fig = trajectories_figure(
        _table(nan_at=("layers.1", 10)), "participation_ratio", scalars=_scalars()
    )
    metric_ax, loss_ax, accuracy_ax = fig.axes
    lines = metric_ax.get_lines()
    assert [line.get_label() for line in lines] == LAYERS
    np.testing.assert_array_equal(lines[2].get_xdata(), STEPS)
    np.testing.assert_array_equal(lines[2].get_ydata(), [20.0, 21.0, 22.0, 23.0])
    assert np.isnan(np.asarray(lines[1].get_ydata())[2])  # a gap, not a dropped point
    assert loss_ax.get_ylabel() == "loss"
    assert accuracy_ax.get_ylabel() == "accuracy"
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_ydata(), [2.3, 1.0, 0.5, 0.2])
    assert accuracy_ax.get_xlabel() == "step"


def test_trajectories_scalar_selection_and_errors() -> None:
    fig = trajectories_figure(
        _table(), "participation_ratio", scalars=_scalars(), scalar_names=["accuracy"]
    )
    assert [ax.get_ylabel() for ax in fig.axes] == ["participation_ratio", "accuracy"]
    with pytest.raises(ConfigError, match=r"scalar_names must be names .*\['lr'\]"):
        trajectories_figure(
            _table(), "participation_ratio", scalars=_scalars(), scalar_names=["lr"]
        )
    with pytest.raises(ConfigError, match="scalars must have columns step, name, value"):
        trajectories_figure(
            _table(), "participation_ratio", scalars=_scalars().rename(columns={"name": "key"})
        )
    with pytest.raises(ConfigError, match="metric must be one of"):
        trajectories_figure(_table(), "nope")


def test_figures_leave_pyplot_alone(tmp_path: Path) -> None:
    # A fresh interpreter: drawing must not import pyplot nor pick a backend for the user.
    code = f"""
import sys
import pandas as pd
from traindyn.report import heatmap, trajectories
t = pd.DataFrame({{"step": [0, 1], "layer": "a", "metric": "m", "value": [1.0, 2.0]}})
heatmap(t, "m", path={str(tmp_path / "h.png")!r})
trajectories(t, "m", path={str(tmp_path / "t.png")!r})
import matplotlib
print("matplotlib.pyplot" in sys.modules, matplotlib.rcParams._get_backend_or_none())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "None"]


@pytest.mark.parametrize("draw", [heatmap_figure, trajectories_figure])
def test_log_step_scale(draw: Any) -> None:
    fig = draw(_table(), "participation_ratio", step_scale="log")
    assert fig.axes[0].get_xscale() == "symlog"
    with pytest.raises(ConfigError, match="step_scale must be one of 'linear', 'log'"):
        draw(_table(), "participation_ratio", step_scale="exp")


# ------------------------------------------------------------ trajectories overlays


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": ["layers.0", "layers.1", "layers.2", "layers.2", "layers.1", "layers.0"],
            "metric": ["participation_ratio"] * 4 + ["effective_rank", "participation_ratio"],
            "step": [5, 10, 50, 5, 10, 0],
            "survives": [True, True, False, True, True, pd.NA],
            "shape": ["step", "slope_change", "step", "step", "step", "step"],
        }
    )


def _critical() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": ["layers.0", "layers.2", "layers.2", "layers.1"],
            "metric": ["participation_ratio"] * 3 + ["effective_rank"],
            "start": [0, 5, 10, 0],
            "end": [10, 10, 50, 50],
        }
    )


def _phases() -> pd.DataFrame:
    # As analysis/phases.parquet: one row per phase and series; the figure needs each
    # phase once.
    rows = [
        (name, start, end, layer)
        for name, start, end in [("early", 0, 5), ("mid", 5, 25), ("late", 25, 50)]
        for layer in LAYERS
    ]
    return pd.DataFrame(rows, columns=["phase", "start", "end", "layer"])


def _with_gid(artists: Any, gid: str) -> list[Any]:
    return [a for a in artists if a.get_gid() == gid]


def _layer_lines(ax: Any) -> list[Any]:
    return [line for line in ax.get_lines() if line.get_gid() is None]


def test_trajectories_draw_surviving_events_in_layer_colours() -> None:
    import matplotlib.colors as mcolors

    fig = trajectories_figure(_table(), "participation_ratio", scalars=_scalars(), events=_events())
    metric_ax, loss_ax, accuracy_ax = fig.axes
    colours = {line.get_label(): line.get_color() for line in _layer_lines(metric_ax)}
    assert list(colours) == LAYERS  # the layer lines are unchanged
    lines = _with_gid(metric_ax.get_lines(), "event")
    # Surviving participation_ratio events only: not the step-50 one (survives False),
    # the effective_rank one, nor the one whose survival is unknown (NA).
    drawn = sorted((line.get_xdata()[0], mcolors.to_hex(line.get_color())) for line in lines)
    assert drawn == sorted(
        [
            (5, mcolors.to_hex(colours["layers.0"])),
            (10, mcolors.to_hex(colours["layers.1"])),
            (5, mcolors.to_hex(colours["layers.2"])),
        ]
    )
    assert {line.get_linestyle() for line in lines} == {"--"}
    np.testing.assert_array_equal(lines[0].get_ydata(), [0, 1])  # full height
    for scalar_ax in (loss_ax, accuracy_ax):
        ticks = _with_gid(scalar_ax.get_lines(), "event")
        assert sorted(t.get_xdata()[0] for t in ticks) == [5, 5, 10]
        np.testing.assert_allclose(ticks[0].get_ydata(), [0.85, 1.0])  # a short tick
        # the scalar's own line is still first and untouched
        np.testing.assert_array_equal(scalar_ax.get_lines()[0].get_xdata(), STEPS)
    texts = [t.get_text() for t in metric_ax.get_legend().get_texts()]
    assert texts == [*LAYERS, "3 surviving events (2 step, 1 slope_change)"]


def test_trajectories_events_only_of_drawn_layers() -> None:
    fig = trajectories_figure(
        _table(), "participation_ratio", layer_order=["layers.2"], events=_events()
    )
    lines = _with_gid(fig.axes[0].get_lines(), "event")
    assert [line.get_xdata()[0] for line in lines] == [5]
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["layers.2", "1 surviving event (1 step)"]
    none = _events().assign(survives=False)
    fig = trajectories_figure(_table(), "participation_ratio", events=none)
    assert _with_gid(fig.axes[0].get_lines(), "event") == []
    assert fig.axes[0].get_legend().get_texts()[-1].get_text() == "0 surviving events"


def test_trajectories_shade_critical_periods() -> None:
    fig = trajectories_figure(
        _table(), "participation_ratio", scalars=_scalars(), critical=_critical()
    )
    ax = fig.axes[0]
    colours = {line.get_label(): line.get_color() for line in _layer_lines(ax)}
    spans = _with_gid(ax.patches, "critical")
    assert sorted((p.get_x(), p.get_x() + p.get_width()) for p in spans) == [
        (0, 10),
        (5, 10),
        (10, 50),
    ]
    import matplotlib.colors as mcolors

    for span in spans:
        rgba = span.get_facecolor()
        assert rgba[3] == pytest.approx(0.12)
        assert mcolors.to_hex(rgba[:3]) in {mcolors.to_hex(colours[k]) for k in colours}
    first = min(spans, key=lambda p: (p.get_x(), p.get_width()))
    assert mcolors.to_hex(first.get_facecolor()[:3]) == mcolors.to_hex(colours["layers.0"])
    # only on the metric axes
    assert all(_with_gid(other.patches, "critical") == [] for other in fig.axes[1:])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[-1] == "3 critical periods"


def test_trajectories_phase_bands_on_every_panel() -> None:
    fig = trajectories_figure(_table(), "participation_ratio", scalars=_scalars(), phases=_phases())
    for ax in fig.axes:
        spans = _with_gid(ax.patches, "phase")
        assert [(p.get_x(), p.get_x() + p.get_width()) for p in spans] == [
            (0, 5),
            (5, 25),
            (25, 50),
        ]
        greys = [tuple(p.get_facecolor()) for p in spans]
        assert greys[0] == greys[2] != greys[1]  # alternating
        assert all(min(g[:3]) > 0.85 for g in greys)  # light
        assert all(p.get_zorder() < line.get_zorder() for p in spans for line in ax.get_lines())
    names = _with_gid(fig.axes[0].texts, "phase")
    assert [t.get_text() for t in names] == ["early", "mid", "late"]
    assert [t.xy[0] for t in names] == [0, 5, 25]
    assert all(_with_gid(ax.texts, "phase") == [] for ax in fig.axes[1:])
    # the names get headroom above the highest value
    assert fig.axes[0].get_ylim()[1] > 23.0 + 0.1 * 23.0


def test_trajectories_overlays_together_and_png(tmp_path: Path) -> None:
    import matplotlib.image

    out = trajectories(
        _table(),
        "participation_ratio",
        path=tmp_path / "t.png",
        scalars=_scalars(),
        events=_events(),
        critical=_critical(),
        phases=_phases(),
        step_scale="log",
    )
    assert matplotlib.image.imread(out).shape[:2] == (950, 800)
    fig = trajectories_figure(
        _table(),
        "participation_ratio",
        events=_events(),
        critical=_critical(),
        phases=_phases(),
        step_scale="log",
    )
    assert fig.axes[0].get_xscale() == "symlog"
    assert fig.axes[0].get_xlim()[0] > -1.0  # phases do not widen the log axis to -15


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"events": _events().drop(columns="survives")}, r"events must have .*survives.*'events'"),
        ({"critical": _critical().drop(columns="end")}, r"critical_periods"),
        ({"phases": _phases().rename(columns={"phase": "name"})}, "phases must have columns"),
        ({"events": [1, 2]}, "events must be a pandas DataFrame"),
    ],
)
def test_trajectories_overlay_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        trajectories_figure(_table(), "participation_ratio", **kwargs)


def test_legend_shows_ends_of_a_long_layer_list() -> None:
    rows = [(s, f"blocks.{i}", "pr", float(i + s)) for i in range(20) for s in (0, 1)]
    table = pd.DataFrame(rows, columns=["step", "layer", "metric", "value"])
    fig = trajectories_figure(table, "pr")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(_layer_lines(fig.axes[0])) == 20  # every layer is drawn
    assert texts == [
        *(f"blocks.{i}" for i in range(5)),
        "... 10 more",
        *(f"blocks.{i}" for i in range(15, 20)),
    ]


# ------------------------------------------------------------------------ seed bands


def _bands() -> pd.DataFrame:
    from traindyn.analysis import seed_bands

    rows = []
    for run, offset in [("a0", 0.0), ("a1", 2.0), ("a2", 4.0)]:
        for layer, base in [("fc1", 10.0), ("fc2", 20.0)]:
            for step in STEPS:
                rows.append((run, step, layer, "pr", base + offset + step / 10))
    for run, offset in [("c0", 1.0), ("c1", -1.0)]:
        for step in STEPS:
            value = np.nan if (run == "c1" and step == 10) else 5.0 + offset
            rows.append((run, step, "conv", "pr", value))
    metrics = pd.DataFrame(rows, columns=["run", "step", "layer", "metric", "value"])
    groups = {"a0": "mlp", "a1": "mlp", "a2": "mlp", "c0": "cnn", "c1": "cnn"}
    return seed_bands(metrics, groups)


def test_bands_mean_lines_and_min_max_bands() -> None:
    table = _bands()
    fig = bands_figure(table, "pr")
    mlp_ax, cnn_ax = fig.axes[:2]
    assert mlp_ax.get_title() == "mlp\nmean and range over 3 seeds"
    assert cnn_ax.get_title() == "cnn\nmean and range over 1-2 seeds"
    lines = mlp_ax.get_lines()
    assert [line.get_label() for line in lines] == ["fc1", "fc2"]
    steps = np.array(STEPS, dtype=np.float64)
    np.testing.assert_allclose(lines[0].get_ydata(), 12.0 + steps / 10)  # mean of 0, 2, 4
    np.testing.assert_allclose(lines[1].get_ydata(), 22.0 + steps / 10)
    collections = _with_gid(mlp_ax.collections, "band")
    assert len(collections) == 2
    # The band polygon of fc1 runs from min (offset 0) to max (offset 4) at each step.
    vertices = collections[0].get_paths()[0].vertices
    for step in steps:
        at = np.unique(vertices[np.isclose(vertices[:, 0], step), 1])
        np.testing.assert_allclose(
            [at.min(), at.max()], [10 + step / 10, 14 + step / 10], atol=1e-12
        )
    # cnn: the NaN of c1 at step 10 leaves one seed there, so the band is flat
    conv = cnn_ax.get_lines()[0]
    np.testing.assert_allclose(conv.get_ydata(), [5.0, 5.0, 6.0, 5.0])  # steps 0, 5, 10, 50
    assert conv.get_color() != lines[0].get_color()  # layers keep distinct colours
    assert fig.get_suptitle() == "pr by layer across seeds"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["fc1", "fc2", "conv"]


def test_bands_grid_group_order_and_png(tmp_path: Path) -> None:
    import matplotlib.image

    table = _bands()
    four = pd.concat([table, table.assign(group=table["group"] + "_b")], ignore_index=True)
    fig = bands_figure(four, "pr", groups=["cnn_b", "mlp", "cnn", "mlp_b"], title="PR")
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert [ax.get_title().split("\n")[0] for ax in visible] == ["cnn_b", "mlp", "cnn", "mlp_b"]
    assert len(fig.axes) == 6  # a 2 x 3 grid, the last two cells hidden
    assert fig.get_suptitle() == "PR"
    out = bands(table, "pr", path=tmp_path / "b.png", figsize=(6, 3), dpi=50)
    assert matplotlib.image.imread(out).shape[:2] == (150, 300)
    with pytest.raises(ConfigError, match=r"groups must be groups with 'pr' values.*\['gpt'\]"):
        bands_figure(table, "pr", groups=["gpt"])
    with pytest.raises(ConfigError, match=r"bands must have columns group, .*seed_bands"):
        bands_figure(table.drop(columns="n"), "pr")
    with pytest.raises(ConfigError, match="metric must be one of"):
        bands_figure(table, "er")


# ------------------------------------------------------------------------------ CKA


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real compare_checkpoints on a tiny MLP saved at three steps, written and read back."""
    import torch
    from torch import nn

    from traindyn.capture import compare_checkpoints, write_checkpoint_comparison
    from traindyn.store import Run, open_run, save_checkpoint

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    run = Run.create(tmp_path_factory.mktemp("cka") / "run", handle_signals=False)
    for step in (0, 10, 20):
        save_checkpoint(net, run, step)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.5 * torch.randn_like(p))
    run.finish()
    c = compare_checkpoints(run.path, net, torch.randn(40, 5), layers=["0", "2", "4"])
    write_checkpoint_comparison(run.path, c)
    return c, open_run(run.path)


def test_cka_matrices_from_stored_tables(comparison: Any) -> None:
    c, run = comparison
    for table in (c.across_steps, run.read_analysis("checkpoint_comparison_across_steps")):
        matrices = cka_matrices(table)
        assert list(matrices) == ["0", "2", "4"]
        for layer, (labels, matrix) in matrices.items():
            assert labels == ["step 0", "step 10", "step 20"]
            rows = table.loc[table["layer"] == layer]
            for a, b, value in rows[["step_a", "step_b", "cka"]].itertuples(index=False):
                assert matrix[[0, 10, 20].index(a), [0, 10, 20].index(b)] == value
            np.testing.assert_allclose(np.diag(matrix), 1.0)
            np.testing.assert_array_equal(matrix, matrix.T)
            assert not np.allclose(matrix, 1.0)  # the checkpoints differ
    for table in (c.across_layers, run.read_analysis("checkpoint_comparison_across_layers")):
        matrices = cka_matrices(table)
        assert list(matrices) == ["step 0", "step 10", "step 20"]
        labels, matrix = matrices["step 10"]
        assert labels == ["0", "2", "4"]
        row = table.query("step == 10 and layer_a == '0' and layer_b == '4'")
        assert matrix[0, 2] == row["cka"].item()


def test_cka_matrices_mirror_one_sided_pairs_and_leave_missing_nan() -> None:
    t = pd.DataFrame(
        {
            "step": 5,
            "layer_a": ["enc", "enc", "dec", "enc"],
            "layer_b": ["enc", "dec", "dec", "head"],
            "cka": [1.0, 0.4, 1.0, 0.7],
            "reason": pd.NA,
        }
    )
    labels, matrix = cka_matrices(t)["step 5"]
    assert labels == ["enc", "dec", "head"]
    np.testing.assert_array_equal(
        matrix, [[1.0, 0.4, 0.7], [0.4, 1.0, np.nan], [0.7, np.nan, np.nan]]
    )
    assert cka_matrices(t.iloc[:0]) == {}
    with pytest.raises(ConfigError, match=r"layer, step_a, step_b, cka .*step, layer_a"):
        cka_matrices(t.drop(columns="layer_b"))
    with pytest.raises(ConfigError, match="one value per"):
        cka_matrices(pd.concat([t, t]))


def test_cka_matrix_figure_values_and_fixed_limits(comparison: Any) -> None:
    c, _ = comparison
    labels, matrix = cka_matrices(c.across_steps)["2"]
    fig = cka_matrix_figure(matrix, labels=labels, title="CKA of layer 2")
    ax = fig.axes[0]
    mesh = ax.collections[0]
    np.testing.assert_array_equal(np.ma.filled(mesh.get_array(), np.nan), matrix)
    assert mesh.get_clim() == (0.0, 1.0)
    assert ax.get_title() == "CKA of layer 2"
    texts = _with_gid(ax.texts, "cka")
    assert [t.get_text() for t in texts] == [f"{v:.2f}" for v in matrix.ravel()]
    assert [t.get_position() for t in texts][:2] == [(0.5, 0.5), (1.5, 0.5)]
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert fig.axes[1].get_ylabel() == "linear CKA"
    # the diagonal (1.0) is drawn in the top colour of the scale (off the cell's text)
    top = np.asarray(mesh.cmap(1.0))
    np.testing.assert_allclose(_pixel(fig, 0.15, 0.15, ax), top, atol=2 / 255)


def test_cka_matrix_figure_nan_large_and_errors(tmp_path: Path) -> None:
    import matplotlib.image

    m = np.eye(3)
    m[0, 2] = m[2, 0] = np.nan
    fig = cka_matrix_figure(m, labels=["a", "b", "c"])
    assert fig.axes[0].get_title() == "linear CKA (grey: 2 NaN cells)"
    assert [t.get_text() for t in fig.axes[0].texts].count("NaN") == 2
    big = cka_matrix_figure(np.eye(13), labels=[str(i) for i in range(13)])
    assert len(big.axes[0].texts) == 0  # no room for numbers
    assert (
        len(
            cka_matrix_figure(np.eye(13), labels=list("abcdefghijklm"), annotate=True).axes[0].texts
        )
        == 169
    )
    out = cka_matrix(m, labels=["a", "b", "c"], path=tmp_path / "c.png", figsize=(4, 3))
    assert matplotlib.image.imread(out).shape[:2] == (300, 400)
    with pytest.raises(ConfigError, match=r"square array of shape \(n, n\); got shape \(2, 3\)"):
        cka_matrix_figure(np.ones((2, 3)), labels=["a", "b"])
    with pytest.raises(ConfigError, match="labels must be a sequence of 3 names"):
        cka_matrix_figure(np.eye(3), labels=["a", "b"])
    with pytest.raises(ConfigError, match="1 infinite value"):
        cka_matrix_figure(np.array([[1.0, np.inf], [0.0, 1.0]]), labels=["a", "b"])
    with pytest.raises(ConfigError, match="must be a square array of numbers"):
        cka_matrix_figure([["x", "y"]], labels=["a"])


# ------------------------------------------------------------------------- temporal


def _temporal_run() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": ["fc1"] * 3 + ["fc2"] * 3 + ["fc1"] * 3,
            "metric": ["pr"] * 6 + ["er"] * 3,
            "window": ["early", "mid", "late"] * 3,
            "share": [0.5, 0.48, 0.02, np.nan, np.nan, np.nan, 0.2, 0.3, 0.5],
        }
    )


def _segments(ax: Any) -> list[Any]:
    return _with_gid(ax.patches, "share")


def test_temporal_bars_per_metric_from_a_directory_table() -> None:
    t = pd.DataFrame(
        {
            "metric": ["*", "*", "*", "pr", "pr", "pr"],
            "window": ["early", "mid", "late", "mid", "early", "late"],  # pr rows shuffled
            "change": 1.0,
            "share": [0.65, 0.30, 0.05, 0.25, 0.70, 0.05],
        }
    )
    fig = temporal_figure(t)
    ax = fig.axes[0]
    segments = _segments(ax)
    # windows in order of first appearance; within a window, bars top to bottom
    assert [round(float(p.get_width()), 2) for p in segments] == [0.65, 0.7, 0.3, 0.25, 0.05, 0.05]
    assert [float(p.get_x()) for p in segments[2:4]] == [0.65, 0.7]  # stacked
    assert [t.get_text() for t in ax.get_yticklabels()] == ["all metrics (pooled)", "pr"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["early", "mid", "late"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(
        ["65%", "70%", "30%", "25%", "5%", "5%"]
    )
    assert ax.get_xlim() == (0.0, 1.0)


def test_temporal_bars_per_layer_and_nan_shares(tmp_path: Path) -> None:
    import matplotlib.image

    fig = temporal_figure(_temporal_run(), by="layer", metric="pr")
    ax = fig.axes[0]
    assert ax.get_title() == "pr: share of change per window, by layer"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fc1", "fc2"]
    widths = [round(float(p.get_width()), 2) for p in _segments(ax)]
    assert widths == [0.5, 0.0, 0.48, 0.0, 0.02, 0.0]  # NaN shares draw nothing
    texts = [t.get_text() for t in ax.texts]
    assert "50%" in texts and "48%" in texts and "2%" not in texts  # too narrow to label
    assert "no change above noise" in texts
    out = temporal(_temporal_run(), by="layer", metric="er", path=tmp_path / "t.png")
    assert matplotlib.image.imread(out).shape[:2] == (int(1.8 * 100), 800)


def test_temporal_accepts_pooled_run_tables_and_explains_errors() -> None:
    from traindyn.analysis import pool_temporal

    run = _temporal_run().assign(change=1.0, signal=[5.0, 4.8, 0.2, 0, 0, 0, 2.0, 3.0, 5.0])
    pooled = pool_temporal(run, by=["metric"])
    fig = temporal_figure(pooled)
    widths = [round(float(p.get_width()), 2) for p in _segments(fig.axes[0])]
    assert widths == [0.2, 0.5, 0.3, 0.48, 0.5, 0.02]  # pool_temporal sorts: er, pr
    with pytest.raises(ConfigError, match=r"one share per \(metric, window\).*pool_temporal"):
        temporal_figure(_temporal_run())
    with pytest.raises(ConfigError, match=r"metric is required with by='layer'.*\['pr', 'er'\]"):
        temporal_figure(_temporal_run(), by="layer")
    with pytest.raises(ConfigError, match="layer column with by='layer'"):
        temporal_figure(pooled, by="layer")
    with pytest.raises(ConfigError, match="metric selects the layers drawn with by='layer'"):
        temporal_figure(pooled, metric="pr")
    with pytest.raises(ConfigError, match="by must be one of 'metric', 'layer'"):
        temporal_figure(pooled, by="run")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"temporal must have columns .*'temporal'"):
        temporal_figure(pooled.drop(columns="share"))


# ---------------------------------------------------------------------- convergence


def _convergence() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": ["l0", "l1", "l2"] * 2,
            "metric": ["pr"] * 3 + ["er"] * 3,
            "depth": [0, 1, 2] * 2,
            "stabilized": [True, True, False, True, pd.NA, True],
            "stabilization_step": pd.array([30, 20, None, 100, None, 40], dtype="Int64"),
        }
    )


def test_convergence_lines_and_hollow_markers_for_unstabilised_layers() -> None:
    import matplotlib.colors as mcolors

    fig = convergence_figure(_convergence())
    ax = fig.axes[0]
    pr, er = ax.get_lines()
    np.testing.assert_array_equal(pr.get_xdata(), [0, 1, 2])
    np.testing.assert_array_equal(pr.get_ydata(), [30, 20, np.nan])
    np.testing.assert_array_equal(er.get_ydata(), [100, np.nan, 40])
    hollow = _with_gid(ax.collections, "unstabilised")
    assert [c.get_offsets().tolist() for c in hollow] == [[[2.0, 0.96]], [[1.0, 0.96]]]
    for c, line in zip(hollow, (pr, er), strict=True):
        assert c.get_facecolor().size == 0 or c.get_facecolor()[0][3] == 0  # hollow
        assert mcolors.to_hex(c.get_edgecolor()[0]) == mcolors.to_hex(line.get_color())
    assert ax.get_title() == "stabilisation step by layer depth (2 of 6 never stabilised)"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["pr", "er", "never stabilised (2; at the top)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["l0", "l1", "l2"]
    assert ax.get_ylim()[1] > 100 / 0.96  # the hollow markers sit above every step


def test_convergence_selection_all_stable_and_empty(tmp_path: Path) -> None:
    import matplotlib.image

    fig = convergence_figure(_convergence(), metrics=["er"], title="er")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["er"]
    assert fig.axes[0].get_title() == "er (1 of 3 never stabilised)"
    stable = _convergence().iloc[[0, 1]]
    fig = convergence_figure(stable)
    assert _with_gid(fig.axes[0].collections, "unstabilised") == []
    assert fig.axes[0].get_title() == "stabilisation step by layer depth"
    empty = convergence_figure(_convergence().iloc[:0])
    assert [t.get_text() for t in empty.axes[0].texts] == ["no data"]
    out = convergence(_convergence(), path=tmp_path / "c.png")
    assert matplotlib.image.imread(out).shape[:2] == (450, 800)
    with pytest.raises(ConfigError, match=r"metrics must be metrics in the convergence .*'sr'"):
        convergence_figure(_convergence(), metrics=["sr"])
    with pytest.raises(ConfigError, match="convergence must have columns"):
        convergence_figure(_convergence().drop(columns="depth"))


# ---------------------------------------------------------------- arch comparison


def _by_arch() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arch": ["cnn_shallow", "mlp_medium", "transformer_shallow"],
            "n_runs": [4, 4, 3],
            "events_surviving": [4.5, 9.25, 1.25],
            "share_early": [0.35, 0.72, np.nan],
            "mean_coordination": [0.59, 0.68, 0.71],
            "note": ["a", "b", "c"],
        }
    )


def test_arch_comparison_bar_heights_are_table_values() -> None:
    table = _by_arch()
    fig = arch_comparison_figure(table)
    assert len(fig.axes) == 3
    for ax, column in zip(
        fig.axes, ["events_surviving", "share_early", "mean_coordination"], strict=True
    ):
        assert ax.get_title() == column
        heights = [p.get_height() for p in _with_gid(ax.patches, "arch")]
        np.testing.assert_array_equal(heights, table[column].to_numpy())
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [
        "cnn_shallow\n(4 runs)",
        "mlp_medium\n(4 runs)",
        "transformer_shallow\n(3 runs)",
    ]
    assert [t.get_text() for t in fig.axes[1].texts] == ["0.35", "0.72", "n/a"]
    colours = [tuple(p.get_facecolor()) for p in fig.axes[0].patches]
    assert colours == [tuple(p.get_facecolor()) for p in fig.axes[2].patches]  # same per arch
    assert len(set(colours)) == 3
    assert fig.get_suptitle() == "by architecture (mean over runs)"


def test_arch_comparison_columns_empty_and_errors(tmp_path: Path) -> None:
    import matplotlib.image

    fig = arch_comparison_figure(_by_arch(), columns=["n_runs"])
    assert [p.get_height() for p in fig.axes[0].patches] == [4, 4, 3]
    empty = arch_comparison_figure(_by_arch().iloc[:0])
    assert all([t.get_text() for t in ax.texts] == ["no data"] for ax in empty.axes)
    out = arch_comparison(_by_arch(), path=tmp_path / "a.png", columns=["share_early"])
    assert matplotlib.image.imread(out).shape[:2] == (380, 340)
    with pytest.raises(ConfigError, match=r"numeric columns of by_arch; got \['note'\]"):
        arch_comparison_figure(_by_arch(), columns=["note"])
    with pytest.raises(ConfigError, match=r"by_arch must have columns arch, .*missing loss"):
        arch_comparison_figure(_by_arch(), columns=["loss"])
    with pytest.raises(ConfigError, match=r"Use \['share_early'\]"):
        arch_comparison_figure(_by_arch(), columns="share_early")
    with pytest.raises(ConfigError, match="columns must name at least one numeric column"):
        arch_comparison_figure(_by_arch(), columns=[])
    with pytest.raises(ConfigError, match=r"one row per arch.*'cnn_shallow'"):
        arch_comparison_figure(pd.concat([_by_arch(), _by_arch()]))


# ---------------------------------------------------------------------- event types


def _typed_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": ["l0", "l0", "l1", "l1", "l2", "l2", "l3"],
            "metric": ["pr", "er", "pr", "pr", "er", "pr", "pr"],
            "step": [10, 10, 40, 5, 70, 20, 90],
            "survives": [True, True, True, False, True, True, False],
            "shape": ["step", "step", "slope_change", "step", "drift", "step", "step"],
            "type": [0, 1, -1, 0, 1, 0, 2],
        }
    )


def _points(ax: Any) -> list[tuple[float, float, Any, Any]]:
    """(x, y, face colour, marker path size) of every event marker."""
    out = []
    for c in _with_gid(ax.collections, "event"):
        for x, y in c.get_offsets().tolist():
            out.append((x, round(y, 6), tuple(np.round(c.get_facecolor()[0], 6)), c))
    return sorted(out, key=lambda p: (p[0], p[1]))


def test_event_types_positions_colours_and_markers() -> None:
    import matplotlib as mpl
    import matplotlib.colors as mcolors

    fig = event_types_figure(_typed_events())
    ax = fig.axes[0]
    assert ax.get_title() == "surviving events by layer (5 surviving events)"
    # rows: every layer of the table, including l3 whose event did not survive
    assert [t.get_text() for t in ax.get_yticklabels()] == ["l0", "l1", "l2", "l3"]
    assert ax.get_ylim() == (3.5, -0.5)
    points = _points(ax)
    # two metrics (pr first): pr sits 0.15 above its row, er 0.15 below
    assert [(x, y) for x, y, _, _ in points] == [
        (10.0, -0.15),
        (10.0, 0.15),
        (20.0, 1.85),
        (40.0, 0.85),
        (70.0, 2.15),
    ]
    tab10 = mpl.colormaps["tab10"]
    grey = tuple(np.round(mcolors.to_rgba("#9e9e9e"), 6))
    colours = [c for _, _, c, _ in points]
    assert colours[0] == colours[2] == tuple(np.round(tab10(0), 6))  # type 0
    assert colours[1] == colours[4] == tuple(np.round(tab10(1), 6))  # type 1
    assert colours[3] == grey  # untyped
    # one collection per (type, shape): markers by shape
    by_shape = {}
    for _, _, _, c in points:
        by_shape.setdefault(id(c), c)
    assert len(by_shape) == 4  # (0, step), (1, step), (1, drift), (-1, slope_change)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [
        "type 0 (2)",
        "type 1 (2)",
        "untyped (1)",
        "step (3)",
        "slope_change (1)",
        "drift (1)",
    ]


def test_event_types_marker_shapes_differ() -> None:
    one_metric = _typed_events().drop(columns="metric")
    fig = event_types_figure(one_metric, layer_order=["l2", "l1"], title="run 7")
    ax = fig.axes[0]
    assert ax.get_title() == "run 7 (3 surviving events)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["l2", "l1"]
    offsets = sorted(
        (tuple(o), c.get_paths()[0].vertices.shape[0])
        for c in _with_gid(ax.collections, "event")
        for o in c.get_offsets().tolist()
    )
    # no metric column: no offsets; circle, square and triangle paths differ
    assert [o for o, _ in offsets] == [(20.0, 0.0), (40.0, 1.0), (70.0, 0.0)]
    assert len({n for _, n in offsets}) == 3


def test_event_types_without_surviving_events_and_errors(tmp_path: Path) -> None:
    import matplotlib.image

    fig = event_types_figure(_typed_events().assign(survives=False))
    ax = fig.axes[0]
    assert ax.get_title() == "surviving events by layer (0 surviving events)"
    assert [t.get_text() for t in ax.texts] == ["no surviving events"]
    assert event_types_figure(_typed_events().iloc[:0]).axes[0].texts[0].get_text() == (
        "no surviving events"
    )
    out = event_types(_typed_events(), path=tmp_path / "e.png")
    assert matplotlib.image.imread(out).shape[:2] == (350, 800)  # at least 3.5 inches high
    with pytest.raises(ConfigError, match=r"events must have columns .*missing type"):
        event_types_figure(_typed_events().drop(columns="type"))
    with pytest.raises(ConfigError, match=r"layer_order names layers without events: \['l9'\]"):
        event_types_figure(_typed_events(), layer_order=["l9"])


# ------------------------------------------------------------------------ all figures


def test_empty_tables_draw_without_warnings() -> None:
    # filterwarnings = error: any matplotlib or numpy warning fails this test.
    figures = [
        temporal_figure(pd.DataFrame({"metric": [], "window": [], "share": []})),
        convergence_figure(_convergence().iloc[:0]),
        arch_comparison_figure(_by_arch().iloc[:0]),
        event_types_figure(_typed_events().iloc[:0]),
        trajectories_figure(
            _table(),
            "participation_ratio",
            events=_events().iloc[:0],
            critical=_critical().iloc[:0],
            phases=_phases().iloc[:0],
        ),
        bands_figure(_bands().assign(n=0, mean=np.nan, min=np.nan, max=np.nan), "pr"),
    ]
    for fig in figures:
        fig.canvas.draw()
    assert figures[-1].axes[0].get_title() == "mlp\nno finite values"


def test_every_figure_is_exported() -> None:
    import traindyn.report as report
    import traindyn.report.figures as figures

    assert set(figures.__all__) <= set(report.__all__)
    for name in figures.__all__:
        assert getattr(report, name) is getattr(figures, name)
