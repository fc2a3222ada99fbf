"""Jump detection: planted steps found at their step, drift and noise judged as noise."""

from __future__ import annotations

import numpy as np
import pytest
import ruptures as rpt

from traindyn.analysis.jumps import detect_jumps, jump_types, pelt, zscore_events
from traindyn.analysis.synthetic import trajectory
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

STEPS = np.arange(400, dtype=np.int64) * 5


def _series(values: np.ndarray, layer: str = "fc", metric: str = "pr") -> Series:
    return Series(layer, metric, STEPS[: len(values)], values)


def _surviving(values: np.ndarray, **kw: object) -> list[int]:
    events = detect_jumps([_series(values)], total_steps=2000, **kw)  # type: ignore[arg-type]
    return events.loc[~events["below_floor"], "step"].tolist()


@pytest.mark.parametrize("seed", range(20))
def test_pelt_equals_ruptures(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 90))
    values = rng.normal(0, 1, n) + np.repeat(rng.normal(0, 3, 5), -(-n // 5))[:n]
    penalty = float(rng.uniform(0.5, 25))
    min_size = int(rng.integers(1, 4))
    theirs = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(values).predict(pen=penalty)
    assert pelt(values, penalty=penalty, min_size=min_size).tolist() == theirs[:-1]


@pytest.mark.parametrize("detector", ["pelt", "zscore"])
@pytest.mark.parametrize("at", [3, 150, 397])
def test_planted_step_is_found_at_its_step(detector: str, at: int) -> None:
    values = trajectory(400, jumps={at: 0.5}, noise=0.02, seed=at)
    found = _surviving(values, detector=detector)
    assert STEPS[at] in found
    if detector == "pelt":
        assert found == [STEPS[at]]
    events = detect_jumps([_series(values)], total_steps=2000, detector=detector)  # type: ignore[arg-type]
    row = events[events["step"] == STEPS[at]].iloc[0]
    assert row["delta"] == pytest.approx(0.5, abs=0.05)
    assert row["phase"] == pytest.approx(STEPS[at] / 2000)
    assert row["speed"] == pytest.approx(row["magnitude"] / 5)
    assert row["snr"] > 10


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("detector", ["pelt", "zscore"])
def test_smooth_drift_yields_no_jump_above_the_floor(detector: str, seed: int) -> None:
    linear = trajectory(400, slope=-0.02, noise=0.01, seed=seed)
    curved = trajectory(400, decay=(5.0, 60.0), noise=0.01, seed=seed)
    noiseless = trajectory(400, slope=0.013)
    for values in (linear, curved, noiseless):
        assert _surviving(values, detector=detector) == []


def test_pure_noise_has_no_pelt_event_and_zscore_events_are_judged_noise() -> None:
    values = trajectory(400, noise=1.0, seed=3)
    assert len(zscore_events(values)) > 5  # seed 001's detector: ~5% of samples
    assert _surviving(values, detector="pelt") == []
    events = detect_jumps([_series(values)], total_steps=2000, detector="zscore")
    assert events["below_floor"].mean() > 0.9


def test_jumps_of_1e_11_are_below_float_precision() -> None:
    # Seed 002: "jumps" of 1e-11 on a dimensionality of ~10 were rounding noise.
    values = trajectory(400, level=10.0, jumps={200: 1e-11}, noise=1e-12, seed=0)
    events = detect_jumps([_series(values)], total_steps=2000, detector="zscore")
    assert len(events) > 0 and events["below_floor"].all()
    assert (events["precision_ratio"] < 1).all()


def test_integer_metric_needs_more_than_one_quantum() -> None:
    one = np.r_[np.full(200, 4.0), np.full(200, 5.0)]
    five = np.r_[np.full(200, 4.0), np.full(200, 9.0)]
    assert _surviving(one) == []
    assert _surviving(five) == [1000]


def test_probe_noise_raises_the_floor() -> None:
    values = trajectory(400, jumps={200: 0.5}, noise=0.01, seed=1)
    quiet = detect_jumps([_series(values)], total_steps=2000)
    loud = detect_jumps([_series(values)], total_steps=2000, probe_noise={("fc", "pr"): 1.0})
    assert not quiet["below_floor"].iloc[0] and loud["below_floor"].all()
    assert loud["noise_floor"].iloc[0] == 1.0


def test_jump_types_recover_planted_groups_and_skip_noise() -> None:
    series = [
        _series(trajectory(400, jumps={40: 0.3}, noise=0.01, seed=i), layer=f"small{i}")
        for i in range(4)
    ] + [
        _series(trajectory(400, jumps={300: 3.0}, noise=0.01, seed=i), layer=f"big{i}")
        for i in range(4)
    ]
    events = detect_jumps(series, total_steps=2000)
    types = jump_types(events, k=2)
    kept = events[~events["below_floor"]]
    assert len(kept) == 8
    labels = types.labels[~events["below_floor"].to_numpy()]
    small = kept["layer"].str.startswith("small").to_numpy()
    assert len(set(labels[small])) == 1 and len(set(labels[~small])) == 1
    assert set(labels[small]) != set(labels[~small])
    assert (types.labels[events["below_floor"].to_numpy()] == -1).all()
    assert types.centres["n"].tolist() == [4, 4]
    assert types.centres["magnitude"].iloc[0] == pytest.approx(0.3, abs=0.05)


def test_jump_types_with_fewer_events_than_k() -> None:
    values = trajectory(400, jumps={100: 1.0}, noise=0.01)
    events = detect_jumps([_series(values)], total_steps=2000)
    assert len(jump_types(events, k=5).centres) == 1


def test_bad_options_are_named() -> None:
    s = [_series(trajectory(50))]
    with pytest.raises(ConfigError, match="detector must be one of 'scan', 'pelt', 'zscore'"):
        detect_jumps(s, total_steps=10, detector="cusum")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_snr must be"):
        detect_jumps(s, total_steps=10, min_snr=0)
    with pytest.raises(ConfigError, match="window must be an integer >= 1"):
        detect_jumps(s, total_steps=10, window=0)
    with pytest.raises(ConfigError, match="features"):
        jump_types(detect_jumps(s, total_steps=10), features=("size",))


def test_empty_and_constant_series_give_an_empty_table() -> None:
    events = detect_jumps([_series(np.full(50, 3.0)), _series(np.array([1.0]))], total_steps=10)
    assert events.empty and "snr" in events.columns
