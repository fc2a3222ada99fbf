"""Many runs under one root (a sweep on shared storage), queried with DuckDB over parquet.

Nothing is copied: the tables of every run are read in place with
``read_parquet([...], union_by_name = true)``, so parts written by older versions (with
fewer columns) and runs still being written are read alongside finished ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from traindyn.exceptions import ConfigError, RunNotFound, StoreError
from traindyn.store.run import (
    MANIFEST_NAME,
    METRICS_DIR,
    ROW_KEYS,
    SCALARS_DIR,
    Run,
    StoreWarning,
    find_run_dirs,
    list_parts,
    manifest_is_stale,
    read_manifest,
    to_frame,
)
from traindyn.store.schema import METRICS_SCHEMA, SCALARS_SCHEMA, RunManifest

__all__ = ["Runs", "open_runs"]

_SQL_TYPES = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.float64(): "DOUBLE"}
_TABLES = {METRICS_DIR: METRICS_SCHEMA, SCALARS_DIR: SCALARS_SCHEMA}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            # A temporary file can be renamed away while we walk.
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


class Runs:
    """The runs found under one root directory.

    Get one with :func:`open_runs`. Each run is identified by its directory's path
    relative to the root, with ``/`` separators (``"seed0"``, ``"sweep-a/seed0"``); in
    the usual flat layout that is also its manifest id. The set of runs is fixed when
    opened; their tables are re-read at every query, so a live run shows new rows.

    Parameters
    ----------
    root : str or os.PathLike
        Directory the runs were discovered under.
    run_dirs : mapping of str to Path
        Run id to run directory.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> for seed in range(2):
    ...     with Run.create(f"{root}/seed{seed}", handle_signals=False) as run:
    ...         run.append_scalars(0, {"loss": 1.0 + seed})
    >>> runs = open_runs(root)
    >>> runs.ids
    ['seed0', 'seed1']
    >>> runs.query("SELECT run, value FROM scalars ORDER BY run")
         run  value
    0  seed0    1.0
    1  seed1    2.0
    """

    def __init__(self, root: str | os.PathLike[str], run_dirs: Mapping[str, Path]) -> None:
        self._root = Path(root)
        self._dirs = dict(sorted(run_dirs.items()))
        self._lock = threading.Lock()  # one DuckDB connection is not safe across threads

    @property
    def root(self) -> Path:
        """Directory the runs were discovered under."""
        return self._root

    @property
    def ids(self) -> list[str]:
        """Run ids (paths relative to the root), sorted."""
        return list(self._dirs)

    def __len__(self) -> int:
        return len(self._dirs)

    def __iter__(self) -> Iterator[Run]:
        return (Run(path) for path in self._dirs.values())

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._dirs

    def __getitem__(self, run_id: str) -> Run:
        """Return the run with id ``run_id`` (read-only).

        Raises
        ------
        RunNotFound
            If there is no such id; the message lists the ids.
        """
        if run_id not in self._dirs:
            shown = ", ".join(repr(i) for i in self.ids[:20])
            raise RunNotFound(f"no run {run_id!r} under {self._root}; runs are: {shown or 'none'}.")
        return Run(self._dirs[run_id])

    def __repr__(self) -> str:
        return f"Runs({str(self._root)!r}, n_runs={len(self)})"

    # ---------------------------------------------------------------------------- tables

    @property
    def manifests(self) -> pd.DataFrame:
        """One row per run: ``id``, ``status``, ``is_stale``, ``created_at``,
        ``updated_at``, ``finished_at`` (UTC), ``n_steps`` (distinct steps with any
        metric or scalar row), ``size_bytes`` (every file of the run directory) and
        ``path``, sorted by id."""
        with self._lock:
            con = self._connect(with_runs=False)
            try:
                return to_frame(self._manifest_table(_step_counts(con)))
            finally:
                con.close()

    def _manifest_table(self, n_steps: Mapping[str, int]) -> pa.Table:
        rows = []
        for run_id, path in self._dirs.items():
            manifest = self._read_manifest(path)
            if manifest is None:
                continue
            rows.append(
                {
                    "id": run_id,
                    "status": manifest.status,
                    "is_stale": manifest_is_stale(manifest),
                    "created_at": manifest.created_at,
                    "updated_at": manifest.updated_at,
                    "finished_at": manifest.finished_at,
                    "n_steps": n_steps.get(run_id, 0),
                    "size_bytes": _dir_size(path),
                    "path": str(path),
                }
            )
        return pa.Table.from_pylist(rows, schema=_MANIFESTS_SCHEMA)

    @staticmethod
    def _read_manifest(path: Path) -> RunManifest | None:
        try:
            return read_manifest(path / MANIFEST_NAME)
        except (StoreError, RunNotFound) as exc:
            warnings.warn(f"skipping run {path}: {exc}", StoreWarning, stacklevel=4)
            return None

    @property
    def metrics(self) -> pd.DataFrame:
        """Metrics of every run: ``run`` plus the columns of :attr:`Run.metrics`, sorted by
        run and step (write order within a step)."""
        return self._ordered(METRICS_DIR)

    @property
    def scalars(self) -> pd.DataFrame:
        """Scalars of every run: ``run`` plus the columns of :attr:`Run.scalars`, sorted by
        run and step (write order within a step)."""
        return self._ordered(SCALARS_DIR)

    def _ordered(self, table: str) -> pd.DataFrame:
        columns = ", ".join(["run", *_TABLES[table].names])
        return self.query(
            f"SELECT {columns} FROM _{table}_latest ORDER BY run, step, filename, file_row_number"
        )

    def query(self, sql: str) -> pd.DataFrame:
        """Run DuckDB SQL over the views ``metrics``, ``scalars`` and ``runs``.

        ``metrics`` and ``scalars`` have a ``run`` column (the run id) followed by the
        columns of the table; ``runs`` has the columns of :attr:`manifests`.

        Parameters
        ----------
        sql : str
            One SQL statement.

        Returns
        -------
        DataFrame
            The result, with string columns as ``pd.StringDtype()``; empty (no columns)
            for a statement that returns no rows.

        Raises
        ------
        ConfigError
            If DuckDB rejects the statement; the message repeats DuckDB's and lists the
            views.
        StoreError
            If the parquet parts cannot be read.

        Notes
        -----
        A part DuckDB cannot read (truncated, corrupt) is skipped with a
        :class:`StoreWarning` naming the file, and the query is re-run without it.
        """
        with self._lock:
            skip: set[str] = set()
            while True:
                con: duckdb.DuckDBPyConnection | None = None
                try:
                    con = self._connect(with_runs=_mentions_runs(sql), skip=skip)
                    relation = con.sql(sql)
                    if relation is None:
                        return pd.DataFrame()
                    return to_frame(relation.to_arrow_table())
                except duckdb.Error as exc:
                    bad = {
                        part
                        for table in _TABLES
                        for part, _ in self._parts(table)
                        if part in str(exc) and part not in skip
                    }
                    if not bad:
                        raise ConfigError(
                            f"query failed: {exc}\nViews: metrics(run, "
                            f"{', '.join(METRICS_SCHEMA.names)}), scalars(run, "
                            f"{', '.join(SCALARS_SCHEMA.names)}), runs("
                            f"{', '.join(_MANIFESTS_SCHEMA.names)})."
                        ) from exc
                    reason = str(exc).splitlines()[0]  # the rest quotes the whole file list
                    for part in sorted(bad):
                        warnings.warn(
                            f"skipping {part}: DuckDB cannot read it ({reason}). It is probably "
                            "left over from an interrupted write; delete it to silence this "
                            "warning.",
                            StoreWarning,
                            stacklevel=3,
                        )
                    skip |= bad
                finally:
                    if con is not None:
                        con.close()

    def _parts(self, table: str) -> list[tuple[str, str]]:
        return [
            (str(part), run_id)
            for run_id, path in self._dirs.items()
            for part in list_parts(path / table)
        ]

    def _connect(
        self, *, with_runs: bool, skip: set[str] | frozenset[str] = frozenset()
    ) -> duckdb.DuckDBPyConnection:
        """Guts of every query: a fresh in-memory connection with the views defined."""
        con = duckdb.connect()
        parts = {table: self._parts(table) for table in _TABLES}
        everything = [p for table_parts in parts.values() for p in table_parts]
        con.register(
            "_parts",
            pa.table(
                {"file": [f for f, _ in everything], "run": [r for _, r in everything]},
                schema=pa.schema([("file", pa.string()), ("run", pa.string())]),
            ),
        )
        for table, schema in _TABLES.items():
            files = [f for f, _ in parts[table] if f not in skip]
            if files:
                source = (
                    f"SELECT p.run, t.* FROM read_parquet([{', '.join(map(_quote, files))}], "
                    "union_by_name = true, filename = true, file_row_number = true) AS t "
                    "JOIN _parts AS p ON t.filename = p.file"
                )
            else:
                typed = ", ".join(f"CAST(NULL AS {_SQL_TYPES[f.type]}) AS {f.name}" for f in schema)
                source = (
                    f"SELECT CAST(NULL AS VARCHAR) AS run, {typed}, "
                    "CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS BIGINT) AS file_row_number "
                    "WHERE false"
                )
            con.execute(f"CREATE TEMP VIEW _{table}_ordered AS {source}")
            columns = ", ".join(
                f"CAST({f.name} AS {_SQL_TYPES[f.type]}) AS {f.name}" for f in schema
            )
            keys = ", ".join(ROW_KEYS[table])
            con.execute(
                f"CREATE TEMP VIEW _{table}_latest AS SELECT * FROM _{table}_ordered "
                # one value per key, the latest part winning (see run.ROW_KEYS)
                f"QUALIFY row_number() OVER (PARTITION BY run, {keys} "
                "ORDER BY filename DESC, file_row_number DESC) = 1"
            )
            con.execute(f"CREATE TEMP VIEW {table} AS SELECT run, {columns} FROM _{table}_latest")
        if with_runs:
            con.register("_runs", self._manifest_table(_step_counts(con)))
            con.execute("CREATE TEMP VIEW runs AS SELECT * FROM _runs")
        return con


def _step_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows: list[tuple[str, int]] = con.sql(
        "SELECT run, count(DISTINCT step) FROM "
        "(SELECT run, step FROM metrics UNION ALL SELECT run, step FROM scalars) GROUP BY run"
    ).fetchall()
    return {str(run): int(n) for run, n in rows}


def _mentions_runs(sql: str) -> bool:
    # Building the runs view reads every run.json and walks every run directory for its
    # size, so it is only built for statements that can refer to it.
    return re.search(r"\bruns\b", sql, flags=re.IGNORECASE) is not None


_MANIFESTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("status", pa.string()),
        ("is_stale", pa.bool_()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("n_steps", pa.int64()),
        ("size_bytes", pa.int64()),
        ("path", pa.string()),
    ]
)


def open_runs(root: str | os.PathLike[str]) -> Runs:
    """Find every run under ``root`` (at any depth; ``root`` itself may be a run).

    Parameters
    ----------
    root : str or os.PathLike
        A directory of runs, e.g. ``"runs/"`` or a sweep on shared storage.

    Returns
    -------
    Runs
        Possibly empty: an empty root gives empty tables, not an error. Run directories
        whose ``run.json`` is invalid are skipped with a :class:`StoreWarning`.

    Raises
    ------
    RunNotFound
        If ``root`` does not exist or is not a directory.
    """
    path = Path(os.path.abspath(root))
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise RunNotFound(
            f"cannot open runs under {path}: it {what}. Pass the directory that holds the "
            "run directories (use open_run for one run)."
        )
    run_dirs: dict[str, Path] = {}
    for run_dir in find_run_dirs(path):
        if Runs._read_manifest(run_dir) is None:
            continue
        run_id = path.name if run_dir == path else run_dir.relative_to(path).as_posix()
        run_dirs[run_id] = run_dir
    return Runs(path, run_dirs)
