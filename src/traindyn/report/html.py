"""Self-contained HTML pages: the report of a run or a suite, and a comparison of two runs.

Every page inlines its styles, plotly.js (from the ``plotly`` package, so no network is
needed to view it) and ``assets/report.js``, which draws the figures in the browser
from the JSON payload of :mod:`traindyn.report.data`. Tables are rendered here, in
Python, with every value escaped. The live view (:mod:`traindyn.report.serve`) serves
the same pages with a flag that makes ``report.js`` poll for fresh payloads.

Plot containers are ``<div class="td-plot" data-plot="KIND">`` inside a
``<div class="td-scope">`` whose ``select.td-metric`` (and, for seed bands,
``select.td-group``) choose what the plots in the scope show. ``window.tdReady`` is a
Promise that resolves when every visible plot is drawn (tests wait on it).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from traindyn._version import __version__
from traindyn.report.data import downsample_rule

__all__ = ["page", "table_html"]

_DEFAULT_DIGITS = 4


@cache
def _asset(name: str) -> str:
    return resources.files("traindyn.report").joinpath("assets", name).read_text("utf-8")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    js: str = get_plotlyjs()
    return js


def _script_json(payload: Mapping[str, Any]) -> str:
    """JSON safe inside ``<script>``: every ``<`` is escaped, so no ``</script>`` or
    ``<!--`` in a name can end the element or change how the parser reads it."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def _fmt(value: Any, digits: int = _DEFAULT_DIGITS) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if np.isnan(x):
            return "–"
        if x != 0 and (abs(x) < 10 ** -(digits - 1) or abs(x) >= 1e6):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:,.{max(digits - 2, 1)}f}"
    return str(value)


def table_html(
    table: pd.DataFrame | None,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    *,
    caption: str | None = None,
    max_rows: int = 200,
    empty: str = "No rows.",
    css: str = "td-table",
) -> str:
    """An escaped HTML table of ``table``'s ``columns``.

    Parameters
    ----------
    table : DataFrame or None
    columns : sequence of str or mapping of column to heading, optional
        Columns to show (missing ones are skipped); default all.
    caption : str, optional
    max_rows : int, default=200
        Rows beyond this are left out, and the caption says how many.
    empty : str
        Text shown instead of an empty table.

    Examples
    --------
    >>> frame = pd.DataFrame({"a": [1.23456], "b": ["<x>"]})
    >>> print(table_html(frame))  # doctest: +NORMALIZE_WHITESPACE
    <table class="td-table"><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td
    class="num">1.23</td><td>&lt;x&gt;</td></tr></tbody></table>
    """
    if table is None or table.empty:
        return f'<p class="td-empty">{html.escape(empty)}</p>'
    if columns is None:
        headings = {str(c): str(c) for c in table.columns}
    elif isinstance(columns, Mapping):
        headings = {c: h for c, h in columns.items() if c in table.columns}
    else:
        headings = {c: c for c in columns if c in table.columns}
    shown = table.head(max_rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings.values())
    body = []
    for row in shown[list(headings)].itertuples(index=False):
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, (bool, np.bool_)
            )
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    note = caption or ""
    if len(table) > max_rows:
        note = f"{note} First {max_rows} of {len(table)} rows.".strip()
    cap = f"<caption>{html.escape(note)}</caption>" if note else ""
    return (
        f'<table class="{css}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def key_values(values: Mapping[str, Any], *, title: str) -> str:
    """A small two-column table of labelled values (the report header's cards)."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in values.items()
    )
    body = rows or '<tr><td class="td-empty">not recorded</td></tr>'
    return f'<div class="td-card"><h3>{html.escape(title)}</h3><table>{body}</table></div>'


def select_html(
    css: str, options: Iterable[str], *, label: str, selected: str | None = None
) -> str:
    """A labelled ``<select>`` of ``options``."""
    items = []
    for option in options:
        mark = " selected" if option == selected else ""
        text = html.escape(option)
        items.append(f'<option value="{text}"{mark}>{text}</option>')
    return (
        f'<label class="td-control">{html.escape(label)} '
        f'<select class="{css}">{"".join(items)}</select></label>'
    )


def plot_html(kind: str, *, caption: str = "", index: int | None = None, tall: bool = False) -> str:
    """A plot container that ``report.js`` fills (``data-plot`` names the figure)."""
    extra = f' data-index="{index}"' if index is not None else ""
    cls = "td-plot tall" if tall else "td-plot"
    cap = f'<p class="td-caption">{html.escape(caption)}</p>' if caption else ""
    return f'<figure><div class="{cls}" data-plot="{html.escape(kind)}"{extra}></div>{cap}</figure>'


def section(title: str, body: str, *, anchor: str) -> str:
    """A titled section of the page."""
    return f'<section id="{html.escape(anchor)}"><h2>{html.escape(title)}</h2>{body}</section>'


def page(
    *,
    title: str,
    subtitle: str,
    body: str,
    payload: Mapping[str, Any],
    max_points: int,
    live: Mapping[str, Any] | None = None,
    plotly_src: str | None = None,
) -> str:
    """The whole self-contained page.

    Parameters
    ----------
    title, subtitle : str
        Shown at the top and in the tab.
    body : str
        HTML of the sections (already escaped).
    payload : mapping
        The data :mod:`traindyn.report.data` built; embedded as JSON.
    max_points : int
        The display cap, stated in the footer with the downsampling rule.
    live : mapping, optional
        ``{"url": ..., "interval_ms": ...}``: poll ``url`` for fresh payloads (the live
        view). None for a static report.
    plotly_src : str, optional
        URL of plotly.js instead of inlining it (the live view serves it once).
    """
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    plotly = (
        f'<script src="{html.escape(plotly_src)}"></script>'
        if plotly_src
        else f"<script>{_plotly_js()}</script>"
    )
    config = {"live": dict(live) if live else None}
    footer = (
        f"<p>Generated {html.escape(generated)} by traindyn {html.escape(__version__)}. "
        f"{html.escape(downsample_rule(max_points))} The page needs no network: its "
        "scripts and data are inside this file.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_asset("report.css")}</style>
</head><body>
<header><h1>{html.escape(title)}</h1><p class="td-sub">{html.escape(subtitle)}</p>
<p class="td-live" hidden></p></header>
<main>{body}</main>
<footer>{footer}</footer>
<script id="td-data" type="application/json">{_script_json(payload)}</script>
<script id="td-config" type="application/json">{_script_json(config)}</script>
{plotly}
<script>{_asset("report.js")}</script>
</body></html>
"""
