"""Intrinsic-dimension estimators: traindyn vs scikit-dimension, speed and accuracy.

Contenders, on the same float64 numpy array X of n points (default n = 2000):

- TwoNN: ``td.metrics.twonn_dimension(X)`` vs ``skdim.id.TwoNN().fit(X).dimension_``
  (both discard_fraction = 0.1, linear fit through the origin);
- MLE (Levina-Bickel, k = 20): ``td.metrics.mle_dimension(X, k=20)`` vs
  ``skdim.id.MLE().fit(X, n_neighbors=20, comb="mle").dimension_``: the MacKay-Ghahramani
  average of inverse local estimates, which is traindyn's convention. skdim's
  ``comb="mean"`` (the plain mean of the local estimates, biased upwards; the default of
  skdim <= 0.4, while the installed version's default is printed in the header) is shown
  for reference only and not timed.

Data sets with a known dimension (seeded):

- ``gauss10``: a standard Gaussian in R^10 (dimension 10);
- ``sphere9``: the unit sphere S^9 in R^10 (normalised Gaussian vectors), mapped into
  R^50 by a random orthonormal 50x10 matrix (dimension 9);
- ``linear5``: a standard Gaussian in a random 5-d linear subspace of R^100 (dimension 5).

Timing: one process, torch single-threaded, the four timed contenders interleaved
(A B C D A B C D ...), a warm-up call each, median over repeats. Target per data set and
estimator: traindyn >= 3x faster than skdim, and its absolute error against the true
dimension no larger than skdim's (the estimators are the same, so the values should agree
to rounding).

Run: ``.venv/bin/python benchmarks/intrinsic_dimension.py [--quick]``.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import warnings

import numpy as np
from _common import (
    add_common_arguments,
    format_table,
    interleaved_times,
    median,
    print_header,
    setup_threads,
    verdict,
)
from numpy.typing import NDArray

import traindyn as td

try:
    import skdim
except ImportError:  # pragma: no cover - the bench extra installs it
    skdim = None

K = 20
TARGET_SPEEDUP = 3.0
# "no larger error": equal estimators may differ by rounding in the last digits
ERROR_SLACK = 1e-9


def _orthonormal(rng: np.random.Generator, rows: int, cols: int) -> NDArray[np.float64]:
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


def make_datasets(n: int, seed: int) -> list[tuple[str, int, NDArray[np.float64]]]:
    rng = np.random.default_rng(seed)
    gauss = rng.standard_normal((n, 10))
    s = rng.standard_normal((n, 10))
    sphere = (s / np.linalg.norm(s, axis=1, keepdims=True)) @ _orthonormal(rng, 50, 10).T
    linear = rng.standard_normal((n, 5)) @ _orthonormal(rng, 100, 5).T
    return [
        ("gauss10 (R^10)", 10, np.ascontiguousarray(gauss)),
        ("sphere9 (S^9 in R^50)", 9, np.ascontiguousarray(sphere)),
        ("linear5 (R^5 in R^100)", 5, np.ascontiguousarray(linear)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--n", type=int, default=2000, help="points per data set")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (15; quick 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if skdim is None:
        print("scikit-dimension is not installed: bash scripts/install.sh --bench", file=sys.stderr)
        return 2
    setup_threads(args.threads, args.cpus)
    n = 500 if args.quick and args.n == 2000 else args.n
    repeats = args.repeats or (2 if args.quick else 15)
    comb_default = inspect.signature(skdim.id.MLE.fit).parameters["comb"].default
    print_header(
        "Intrinsic dimension: traindyn vs scikit-dimension",
        [
            f"traindyn {td.__version__}, scikit-dimension {_version('scikit-dimension')} "
            f"(MLE.fit default comb={comb_default!r})",
            f"n = {n} points per data set, k = {K}, {repeats} interleaved repeats, median",
        ],
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    time_rows = []
    err_rows = []
    verdicts = []
    for name, true_dim, X in make_datasets(n, args.seed):
        contenders = {
            "td_twonn": lambda X=X: td.metrics.twonn_dimension(X),
            "sk_twonn": lambda X=X: skdim.id.TwoNN().fit(X).dimension_,
            "td_mle": lambda X=X: td.metrics.mle_dimension(X, k=K),
            "sk_mle": lambda X=X: skdim.id.MLE().fit(X, n_neighbors=K, comb="mle").dimension_,
        }
        times = interleaved_times(contenders, repeats=repeats)
        values = {key: float(fn()) for key, fn in contenders.items()}
        sk_mean = float(skdim.id.MLE().fit(X, n_neighbors=K, comb="mean").dimension_)
        for est in ("twonn", "mle"):
            t_td = median(times[f"td_{est}"]) * 1e3
            t_sk = median(times[f"sk_{est}"]) * 1e3
            speedup = median(
                [s / t for t, s in zip(times[f"td_{est}"], times[f"sk_{est}"], strict=True)]
            )
            v_td, v_sk = values[f"td_{est}"], values[f"sk_{est}"]
            e_td, e_sk = abs(v_td - true_dim), abs(v_sk - true_dim)
            label = "TwoNN" if est == "twonn" else f"MLE k={K}"
            time_rows.append([name, label, t_td, t_sk, speedup])
            err_rows.append(
                [
                    name,
                    label,
                    true_dim,
                    v_td,
                    v_sk,
                    e_td,
                    e_sk,
                    abs(v_td - v_sk),
                    f"{sk_mean:.3f}" if est == "mle" else "-",
                ]
            )
            ok = speedup >= TARGET_SPEEDUP and e_td <= e_sk + ERROR_SLACK * true_dim
            verdicts.append(
                verdict(
                    ok,
                    f"{name} {label}: {speedup:.2f}x faster (>= {TARGET_SPEEDUP}), "
                    f"|error| {e_td:.4f} vs skdim {e_sk:.4f}",
                )
            )

    print(
        format_table(
            ["data", "estimator", "traindyn ms", "skdim ms", "speedup"],
            time_rows,
            title="Time (median ms)",
            markdown=args.markdown,
        )
    )
    print()
    print(
        format_table(
            [
                "data",
                "estimator",
                "true",
                "traindyn",
                "skdim",
                "abs err traindyn",
                "abs err skdim",
                "abs(td - skdim)",
                "skdim comb='mean'",
            ],
            err_rows,
            title="Estimates (skdim MLE with comb='mle'; comb='mean' for reference)",
            markdown=args.markdown,
        )
    )
    print()
    print("Targets:")
    for line in verdicts:
        print(line)
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
