from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from traindyn.exceptions import ConfigError
from traindyn.report import heatmap, heatmap_figure, trajectories, trajectories_figure

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
