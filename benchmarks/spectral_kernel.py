"""Cost of the spectral metrics against the minimal eigenvalue computation and ndtracker.

Contenders, on float32 CPU tensors of shape (n, d):

- ours: ``td.metrics.spectral_metrics(X)`` (validation, float64 centring and scaling,
  rounding-noise floor, one ``eigvalsh`` of the smaller Gram/covariance matrix, the five
  metrics, one host transfer);
- bare: the least work that yields the same eigenvalues: ``Xd = X.double(); Xc = Xd -
  Xd.mean(0); M = Xc @ Xc.T`` if n <= d else ``Xc.T @ Xc``; ``torch.linalg.eigvalsh(M)``;
- ndtracker: ``ndt.compute_all_metrics(X)`` (float32 ``torch.linalg.svd`` of the
  uncentred X with singular vectors, four metrics).

Timing: one process, torch single-threaded, the three contenders interleaved (A B C A B C
...), a warm-up call each, median over repeats. Target: ours <= 1.3 x bare.

Agreement: ndtracker's definitions differ from ours in two ways. It does not centre X,
and its "participation ratio" is (Σσ)² / Σσ² over singular values, whereas ours (Gao et
al. 2017) is (Σλ)² / Σλ² = (Σσ²)² / Σσ⁴ over covariance eigenvalues. Stable rank
(‖X‖_F² / σ_max²), nuclear-norm ratio (Σσ / σ_max) and the 90%-energy count (ours
``energy_rank``, theirs ``cumulative_90``) have the same formulas. The agreement table
therefore feeds ndtracker the centred X (``X - X.mean(0)``) and compares stable rank,
nuclear-norm ratio and energy rank directly, and its participation ratio against
(Σσ)² / Σσ² computed from ``td.metrics.spectrum(X)``. It also shows how far ndtracker's
values on the raw (uncentred) X are from ours, which is what a user of both would see.

Data: ReLU features of a Gaussian latent, ``relu(G @ W)`` with G (n, 64) and W (64, d)
Gaussian, plus an offset of 1: non-zero mean, decaying spectrum, like a hidden layer.

Run: ``.venv/bin/python benchmarks/spectral_kernel.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch
from _common import (
    add_common_arguments,
    format_table,
    interleaved_times,
    median,
    print_header,
    setup_threads,
    verdict,
)

import traindyn as td

try:
    import ndt
except ImportError:  # pragma: no cover - the bench extra installs it
    ndt = None

SHAPES = [(64, 256), (512, 256), (512, 1024), (2048, 512)]
TARGET = 1.3


def make_x(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 64, generator=g)
    weights = torch.randn(64, d, generator=g) / 8.0
    return (torch.relu(latent @ weights) + 1.0).to(torch.float32)


def bare_eigvalsh(X: torch.Tensor) -> torch.Tensor:
    Xd = X.double()
    Xc = Xd - Xd.mean(dim=0, keepdim=True)
    n, d = Xc.shape
    M = Xc @ Xc.T if n <= d else Xc.T @ Xc
    return torch.linalg.eigvalsh(M)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if ndt is None:
        print("ndtracker is not installed: bash scripts/install.sh --bench", file=sys.stderr)
        return 2
    setup_threads(args.threads, args.cpus)
    budget = 0.3 if args.quick else 2.0  # seconds per contender per shape
    lo, hi = (3, 30) if args.quick else (7, 300)
    print_header(
        "Spectral kernel: td.metrics.spectral_metrics vs bare eigvalsh vs ndtracker",
        [
            f"traindyn {td.__version__}, ndtracker {ndt.__version__}",
            "float32 CPU input; interleaved repeats, median; "
            f"about {budget} s per contender per shape",
        ],
    )

    rows = []
    agree_rows = []
    verdicts = []
    for n, d in SHAPES:
        X = make_x(n, d, args.seed)
        contenders = {
            "ours": lambda X=X: td.metrics.spectral_metrics(X),
            "bare": lambda X=X: bare_eigvalsh(X),
            "ndt": lambda X=X: ndt.compute_all_metrics(X),
        }
        one_round = sum(_time_once(f) for f in contenders.values())
        repeats = max(lo, min(hi, int(len(contenders) * budget / one_round)))
        times = interleaved_times(contenders, repeats=repeats)
        ours, bare, theirs = (median(times[k]) * 1e3 for k in ("ours", "bare", "ndt"))
        ratio = median([a / b for a, b in zip(times["ours"], times["bare"], strict=True)])
        rows.append([f"{n}x{d}", repeats, ours, bare, theirs, ratio, theirs / bare, theirs / ours])
        ok = ratio <= TARGET
        verdicts.append(verdict(ok, f"{n}x{d}: ours / bare = {ratio:.2f} <= {TARGET}"))

        # agreement (not timed)
        m = td.metrics.spectral_metrics(X)
        lam = torch.from_numpy(td.metrics.spectrum(X))
        sig = lam.clamp(min=0).sqrt()
        pr_sigma = float(sig.sum() ** 2 / (sig * sig).sum())
        Xc = X - X.mean(dim=0, keepdim=True)
        sr_c, pr_c, ce_c, nn_c = ndt.compute_all_metrics(Xc)
        sr_r, pr_r, ce_r, nn_r = ndt.compute_all_metrics(X)
        agree_rows.append(
            [
                f"{n}x{d}",
                m["stable_rank"],
                sr_c,
                rel(sr_c, m["stable_rank"]),
                m["nuclear_norm_ratio"],
                nn_c,
                rel(nn_c, m["nuclear_norm_ratio"]),
                f"{m['energy_rank']:.0f}/{ce_c}",
                pr_sigma,
                pr_c,
                rel(pr_c, pr_sigma),
                m["participation_ratio"],
                f"{sr_r:.3g}/{nn_r:.3g}/{ce_r}/{pr_r:.3g}",
            ]
        )

    print(
        format_table(
            [
                "shape",
                "repeats",
                "ours ms",
                "bare ms",
                "ndt ms",
                "ours/bare",
                "ndt/bare",
                "ndt/ours",
            ],
            rows,
            title="Time (median ms) and ratios",
            markdown=args.markdown,
        )
    )
    print()
    print(
        format_table(
            [
                "shape",
                "SR ours",
                "SR ndt(c)",
                "rel diff",
                "NNR ours",
                "NNR ndt(c)",
                "rel diff",
                "E90 ours/ndt(c)",
                "(Σσ)²/Σσ² ours",
                "PR ndt(c)",
                "rel diff",
                "PR ours (Σλ)²/Σλ²",
                "ndt raw SR/NNR/E90/PR",
            ],
            agree_rows,
            title="Agreement: ndt(c) = ndtracker on the centred X; ndt raw = on X as given",
            markdown=args.markdown,
        )
    )
    print()
    print("Targets:")
    for line in verdicts:
        print(line)
    return 0


def _time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return max(time.perf_counter() - t0, 1e-6)


if __name__ == "__main__":
    sys.exit(main())
