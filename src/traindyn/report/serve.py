"""``traindyn serve DIR``: a local live view of the runs under a directory.

The server only reads. Writers append parquet parts under a temporary name and rename
them (the store contract), so a reader never sees half a part and never takes a lock:
a training process is not slowed or blocked by someone watching it. Each request
re-reads what it needs (a run's parts, a directory listing), which is what makes a page
follow a run while it trains.

Routes
------
``/``
    The runs under the directory, with status, sample count and last update.
``/run/<path>``
    A run's report page; while the run is running, the page fetches
    ``/api/run/<path>`` every ``interval_s`` and redraws when the run's files change.
``/api/run/<path>``
    The run's payload (:func:`traindyn.report.data.run_data`) as JSON.
``/static/plotly.js``
    plotly.js, served once and cached by the browser (no network needed).

``<path>`` is the run directory relative to the served directory; anything that
resolves outside it is refused.
"""

from __future__ import annotations

import html
import json
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from traindyn.exceptions import ConfigError, RunNotFound, StoreError
from traindyn.report.data import DEFAULT_MAX_POINTS, run_data
from traindyn.store import Run
from traindyn.store.run import MANIFEST_NAME, find_run_dirs

__all__ = ["LiveServer", "make_server"]

LOOPBACK = "127.0.0.1"


class LiveServer(ThreadingHTTPServer):
    """The live view's HTTP server; see the module docstring for its routes.

    Parameters
    ----------
    root : Path
        The served directory.
    address : (str, int)
        Host and port; port 0 picks a free one (see :attr:`url`).
    interval_s : float
        How often a running run's page polls for new rows.
    max_points : int
        Display cap per series.
    """

    daemon_threads = True  # a hung browser connection never keeps the process alive

    def __init__(
        self, root: Path, address: tuple[str, int], *, interval_s: float, max_points: int
    ) -> None:
        super().__init__(address, _Handler)
        self.root = root.resolve()
        self.interval_s = interval_s
        self.max_points = max_points

    @property
    def url(self) -> str:
        """``http://host:port/`` of the running server."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> threading.Thread:
        """Serve on a daemon thread (tests, notebooks); stop with :meth:`shutdown`."""
        thread = threading.Thread(target=self.serve_forever, name="traindyn-serve", daemon=True)
        thread.start()
        return thread


def make_server(
    root: str | Path,
    *,
    host: str = LOOPBACK,
    port: int = 8765,
    interval_s: float = 2.0,
    max_points: int = DEFAULT_MAX_POINTS,
) -> LiveServer:
    """A live-view server for the runs under ``root`` (not yet serving).

    Parameters
    ----------
    root : str or Path
        A directory of runs (or one run directory).
    host : str, default="127.0.0.1"
        Loopback by default: the view shows configs and paths, so exposing it on a
        network is a choice to make explicitly.
    port : int, default=8765
        0 picks a free port.
    interval_s : float, default=2.0
        Poll interval of a running run's page, seconds.
    max_points : int, default=250
        Display cap per series.

    Raises
    ------
    RunNotFound
        If ``root`` is not a directory.
    ConfigError
        If ``interval_s`` is not positive.
    """
    base = Path(root)
    if not base.is_dir():
        raise RunNotFound(f"{base} is not a directory; pass a directory of runs to serve.")
    if not interval_s > 0:
        raise ConfigError(f"interval_s must be positive; got {interval_s!r}.")
    return LiveServer(base, (host, port), interval_s=interval_s, max_points=max_points)


def _index(server: LiveServer) -> str:
    root = server.root
    rows = []
    single = (root / MANIFEST_NAME).is_file()
    for directory in [root] if single else find_run_dirs(root):
        rel = "." if directory == root else directory.relative_to(root).as_posix()
        try:
            run = Run(directory)
            manifest = run.manifest
            status = run.status + (" (writer gone)" if run.is_stale else "")
            parts = len(list((directory / "metrics").glob("part-*.parquet")))
            updated = manifest.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            rows.append(
                f'<tr><td><a href="/run/{html.escape(rel)}">{html.escape(run.id)}</a></td>'
                f'<td>{html.escape(status)}</td><td class="num">{parts}</td>'
                f"<td>{html.escape(updated)}</td></tr>"
            )
        except (StoreError, OSError, ValueError) as error:
            rows.append(
                f'<tr><td>{html.escape(rel)}</td><td class="td-bad">unreadable: '
                f"{html.escape(str(error))}</td><td></td><td></td></tr>"
            )
    from traindyn.report.html import _asset

    now = datetime.now(UTC).strftime("%H:%M:%S UTC")
    body = "".join(rows) or '<tr><td colspan="4">No runs yet.</td></tr>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>traindyn serve: {html.escape(root.name)}</title><style>{_asset("report.css")}</style>
</head><body><header><h1>traindyn: {html.escape(str(root))}</h1>
<p class="td-sub">Runs under this directory; the list refreshes every 5 s (last {now}).</p>
</header><main><table class="td-table td-index"><thead><tr><th>run</th><th>status</th>
<th>metric parts</th><th>last update</th></tr></thead><tbody>{body}</tbody></table></main>
</body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server: LiveServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would bury the training output."""

    def _send(self, status: int, body: bytes, content_type: str, *, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=86400" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, "application/json")

    def _run(self, rel: str) -> Run:
        root = self.server.root
        target = (root / unquote(rel)).resolve()
        if target != root and root not in target.parents:
            raise RunNotFound(f"{rel!r} is outside the served directory.")
        if not (target / MANIFEST_NAME).is_file():
            raise RunNotFound(f"{rel!r} is not a run under {root} (no {MANIFEST_NAME}).")
        return Run(target)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, _index(self.server).encode(), "text/html; charset=utf-8")
            elif path == "/static/plotly.js":
                from traindyn.report.html import _plotly_js

                self._send(HTTPStatus.OK, _plotly_js().encode(), "text/javascript", cache=True)
            elif path.startswith("/api/run/"):
                run = self._run(path.removeprefix("/api/run/"))
                payload = run_data(run, max_points=self.server.max_points)
                body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
                self._send(HTTPStatus.OK, body, "application/json")
            elif path.startswith("/run/"):
                from traindyn.report.build import run_page

                rel = path.removeprefix("/run/")
                run = self._run(rel)
                text = run_page(
                    run,
                    max_points=self.server.max_points,
                    live={
                        "url": f"/api/run/{rel}",
                        "interval_ms": int(self.server.interval_s * 1000),
                    },
                    plotly_src="/static/plotly.js",
                )
                self._send(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")
            elif path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no page {path!r}; try /")
        except RunNotFound as error:
            self._error(HTTPStatus.NOT_FOUND, str(error))
        except (StoreError, OSError, ValueError) as error:
            # A run caught between two writes (or a corrupt part): the page retries.
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, f"{type(error).__name__}: {error}")
