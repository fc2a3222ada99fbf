"""Evidence for events: the level-shift statistic, the AR(1) noise model, surrogate nulls,
tail p-values, shapes, survival and replication, each against a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ruptures
from scipy.signal import lfilter
from scipy.stats import expon

from traindyn.analysis import (
    Series,
    ar1_noise,
    detect_jumps,
    event_evidence,
    event_shapes,
    replication,
    scan_null,
    tail_pvalue,
    trajectory,
)
from traindyn.analysis.level_shift import apply_weights, ar1_variance, shift_weights
from traindyn.exceptions import ConfigError


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = rng.normal(0, np.sqrt(1 - phi * phi), n + 200)
    return lfilter([1.0], [1.0, -phi], u)[200:]


def _series(values: np.ndarray, name: str = "fc") -> Series:
    return Series(name, "pr", np.arange(len(values)) * 5, values)


# ------------------------------------------------------------------- level shift


def test_white_noise_weights_are_two_separate_least_squares_lines() -> None:
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 100, 60))
    y = rng.normal(size=60)
    idx = np.array([30])
    w = shift_weights(x, idx, 8, phi=0.0)
    x0 = (x[29] + x[30]) / 2
    before = np.polyval(np.polyfit(x[22:30], y[22:30], 1), x0)
    after = np.polyval(np.polyfit(x[30:38], y[30:38], 1), x0)
    assert apply_weights(w.delta, w.start, y)[0] == pytest.approx(after - before, rel=1e-9)
    slopes = np.polyfit(x[30:38], y[30:38], 1)[0] - np.polyfit(x[22:30], y[22:30], 1)[0]
    assert apply_weights(w.slope_change, w.start, y)[0] == pytest.approx(slopes, rel=1e-9)


def test_gls_weights_match_an_explicit_prais_winsten_fit() -> None:
    phi, n, i, window = 0.7, 50, 25, 8
    x = np.arange(n, dtype=float)
    y = _ar1(phi, n, 3) + np.where(x >= i, 1.0, 0.0)
    lo, hi = i - window, i + window
    u = x[lo:hi] - (x[i - 1] + x[i]) / 2
    h = (x[lo:hi] >= x[i]).astype(float)
    X = np.column_stack([np.ones(hi - lo), u, h, u * h])
    P = np.eye(hi - lo) - phi * np.eye(hi - lo, k=-1)
    P[0, 0] = np.sqrt(1 - phi * phi)
    beta = np.linalg.lstsq(P @ X, P @ y[lo:hi], rcond=None)[0]
    w = shift_weights(x, np.array([i]), window, phi=phi)
    assert apply_weights(w.delta, w.start, y)[0] == pytest.approx(beta[2], rel=1e-8)
    # Its variance under the same noise: sigma^2 [(X'P'PX)^-1]_22.
    cov = np.linalg.inv((P @ X).T @ (P @ X)) * (1 - phi * phi)
    assert ar1_variance(w.delta, phi)[0] == pytest.approx(cov[2, 2], rel=1e-8)


def test_a_line_has_no_shift_at_any_position_or_noise_model() -> None:
    x = np.arange(40.0)
    for phi in (0.0, 0.5, 0.95):
        w = shift_weights(x, np.arange(1, 40), 8, phi=phi)
        shift = apply_weights(w.delta, w.start, 3.0 - 0.2 * x)
        assert np.abs(shift).max() < 1e-9


# ------------------------------------------------------------------- noise model


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ar1_noise_recovers_the_autocorrelation_on_average(phi: float) -> None:
    estimates = [ar1_noise(_ar1(phi, 400, seed)).phi for seed in range(40)]
    # The local-slope removal adds about +0.1 at phi = 0 (documented: it errs high).
    assert phi - 0.05 < float(np.mean(estimates)) < phi + 0.13


def test_ar1_noise_is_not_fooled_by_a_fast_decay_or_a_jump() -> None:
    t = np.arange(400.0)
    rng = np.random.default_rng(1)
    v = 10 * np.exp(-t / 10) + np.where(t >= 200, 3.0, 0.0) + rng.normal(0, 0.05, 400)
    noise = ar1_noise(v)
    assert noise.phi < 0.25 and noise.sd == pytest.approx(0.05, rel=0.2)


# ------------------------------------------------------------------------ p-values


def test_tail_pvalues_follow_an_exponential_tail_beyond_the_sample() -> None:
    null = expon.rvs(size=2000, random_state=0)
    s = np.array([1.0, 3.0, 9.0, 12.0])
    p = tail_pvalue(null, s)
    empirical = [(1 + (null >= v).sum()) / (1 + len(null)) for v in s[:2]]
    assert p[:2] == pytest.approx(empirical, rel=1e-12)  # enough null values reach them
    assert p[2:] == pytest.approx(expon.sf(s[2:]), rel=0.5)  # fitted tail: e^-9, e^-12
    assert (np.diff(p) < 0).all() and (p > 0).all()


def test_scan_pvalues_are_calibrated_on_white_and_ar1_noise() -> None:
    # The largest event of a pure-noise series: P(p < 0.05) must be about 0.05 or less.
    for phi in (0.0, 0.8):
        smallest = []
        for seed in range(60):
            s = _series(_ar1(phi, 300, seed))
            events = detect_jumps([s], total_steps=1500, detector="scan")
            out = event_evidence([s], events, n_surrogates=199)
            smallest.append(out["p_ar1"].min() if len(out) else 1.0)
        assert np.mean(np.array(smallest) < 0.05) <= 0.12, phi


def test_the_block_null_keeps_heavy_tails() -> None:
    # Student-t (df 2) noise: outliers the Gaussian AR(1) null does not expect; the block
    # null, built from the series' own innovations, makes the largest one unremarkable.
    v = np.random.default_rng(5).standard_t(2, 400)
    s = _series(v)
    level_ar, _ = scan_null(s, null="ar1", n_surrogates=199)
    level_block, _ = scan_null(s, null="block", n_surrogates=199)
    assert np.median(level_block.maxima) > 1.3 * np.median(level_ar.maxima)


# --------------------------------------------------------------------------- shapes


def test_a_pure_linear_drift_yields_no_step() -> None:
    # ruptures cuts a drift into several steps; every candidate here is labelled drift.
    v = trajectory(400, slope=0.01, noise=0.1, seed=2)
    cuts = ruptures.Pelt(model="l2", min_size=2, jump=1).fit(v).predict(pen=3 * 0.1**2 * 6)
    assert len(cuts) > 3
    s = _series(v)
    for detector in ("scan", "pelt"):
        events = detect_jumps([s], total_steps=2000, detector=detector)
        assert len(events)
        out = event_evidence([s], events, n_surrogates=199)
        assert (out["shape"] != "step").all() and not out["survives"].any()


def test_shapes_tell_a_step_a_kink_and_a_curve_apart() -> None:
    t = np.arange(300.0)
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 0.05, 300)
    cases = {
        "step": np.where(t >= 150, 1.0, 0.0),
        "slope_change": np.maximum(t - 150, 0) * 0.1,
        "drift": 1e-4 * (t - 100) ** 2,
    }
    for shape, clean in cases.items():
        out = event_shapes(_series(clean + noise), [150])
        assert out["shape"].item() == shape
        if shape != "drift":
            assert abs(out["location"].item() - 150 * 5) <= 10


# ------------------------------------------------------------------------- survival


def test_evidence_columns_and_survival_rule() -> None:
    rng = np.random.default_rng(8)
    t = np.arange(300)
    real = _series(np.where(t >= 120, 2.0, 0.0) + rng.normal(0, 0.2, 300), "real")
    quiet = _series(rng.normal(0, 0.2, 300), "quiet")
    events = detect_jumps([real, quiet], total_steps=1500, detector="scan")
    out = event_evidence([real, quiet], events, n_surrogates=199)
    kept = out[out["survives"]]
    assert kept[["layer", "location", "shape"]].values.tolist() == [["real", 600, "step"]]
    assert (kept["q_value"] <= 0.05).all() and (kept["snr"] >= 4).all()
    # q-values are BH-adjusted p-values: never below the p-value, same order.
    assert (out["q_value"] >= out["p_value"] - 1e-15).all()
    # By default the block null checks the survivors only, and p_value is p_ar1.
    assert kept["p_block"].notna().all() and (kept["p_block"] <= 0.05).all()
    assert out.loc[out["q_value"] > 0.05, "p_block"].isna().all()
    assert (out["p_value"] == out["p_ar1"]).all()
    # With null="both" it decides wherever p_ar1 <= alpha.
    both = event_evidence([real, quiet], events, n_surrogates=199, null="both")
    assert both.loc[both["p_ar1"] <= 0.05, "p_block"].notna().all()
    assert (both["p_value"] >= out["p_value"]).all()


def test_bad_input_is_named() -> None:
    s = _series(np.zeros(50))
    events = pd.DataFrame({"layer": ["fc"], "metric": ["pr"], "step": [100], "snr": [5.0]})
    with pytest.raises(ConfigError, match="must have columns layer, metric, step, snr"):
        event_evidence([s], events.drop(columns="snr"))
    with pytest.raises(ConfigError, match="alpha must be in"):
        event_evidence([s], events, alpha=1.5)
    with pytest.raises(ConfigError, match="no such series"):
        event_evidence([], events)
    with pytest.raises(ConfigError, match="not sampled steps"):
        event_evidence([s], events.assign(step=[101]))
    with pytest.raises(ConfigError, match="null must be"):
        event_evidence([s], events, null="iaaft")  # type: ignore[arg-type]


def test_replication_counts_seeds_with_the_same_change_nearby() -> None:
    def table(locations: list[int], survives: list[bool]) -> pd.DataFrame:
        n = len(locations)
        return pd.DataFrame(
            {
                "layer": ["fc"] * n,
                "metric": ["pr"] * n,
                "shape": ["step"] * n,
                "location": locations,
                "survives": survives,
            }
        )

    out = replication(
        {
            "s0": table([100, 500], [True, True]),
            "s1": table([110, 900], [True, False]),
            "s2": table([95], [True]),
        },
        tolerance=20,
    )
    assert out["s0"]["replicated_in"].tolist() == [3, 1]
    assert out["s1"]["replicated_in"].tolist() == [3, 0]  # a dead event replicates nowhere
    assert (out["s2"]["n_seeds"] == 3).all()
    with pytest.raises(ConfigError, match="tolerance must be >= 0"):
        replication({}, tolerance=-1)
