"""Run-vs-run comparisons, bootstrap intervals, seed statistics and early~best correlation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from traindyn.analysis.compare import (
    COMPARISON_COLUMNS,
    SEED_BANDS_COLUMNS,
    SEED_STATISTICS_COLUMNS,
    bootstrap_ci,
    compare_all,
    compare_runs,
    early_best_correlation,
    seed_bands,
    seed_statistics,
)
from traindyn.analysis.phases import Phase
from traindyn.exceptions import ConfigError

STEPS = np.arange(0, 10_001, 500)


def metrics(values: np.ndarray, *, layer: str = "judge", metric: str = "betti_1") -> pd.DataFrame:
    values = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(
        {
            "step": np.arange(values.size, dtype=np.int64) * 500,
            "layer": layer,
            "metric": metric,
            "value": values,
            "reason": pd.NA,
        }
    )


def scalars(values: np.ndarray, name: str = "hierarchy") -> pd.DataFrame:
    values = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(
        {"step": np.arange(values.size, dtype=np.int64), "name": name, "value": values}
    )


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's d by the textbook formula (pooled variance with n - 1 weights)."""
    na, nb = a.size, b.size
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


@pytest.fixture(scope="module")
def holes() -> tuple[np.ndarray, np.ndarray]:
    """Seed 000: adversarial holes fluctuate 6.4-8.0 around 7.19; pedagogical mean 4.88."""
    rng = np.random.default_rng(0)
    adversarial = rng.uniform(6.4, 8.0, STEPS.size)
    adversarial += 7.19 - adversarial.mean()
    pedagogical = np.linspace(5.7, 4.4, STEPS.size) + rng.normal(0, 0.1, STEPS.size)
    pedagogical += 4.88 - pedagogical.mean()
    return adversarial, pedagogical


# --------------------------------------------------------------------------- one run per side


def test_seed_000_adversarial_has_47_percent_more_holes(
    holes: tuple[np.ndarray, np.ndarray],
) -> None:
    adversarial, pedagogical = holes
    c = compare_runs(metrics(adversarial), metrics(pedagogical), metric="betti_1")
    assert (c.metric, c.layer, c.name, c.statistic) == ("betti_1", "judge", None, "mean")
    assert c.mean_a == pytest.approx(7.19) and c.mean_b == pytest.approx(4.88)
    assert c.difference == pytest.approx(2.31)
    assert c.relative_difference == pytest.approx(47.34, abs=0.01)
    assert c.text() == "7.19 vs 4.88 mean (47.3% more)"
    assert c.text(percent_digits=0) == "7.19 vs 4.88 mean (47% more)"


def test_single_runs_effect_size_is_over_time_points(holes: tuple[np.ndarray, np.ndarray]) -> None:
    adversarial, pedagogical = holes
    c = compare_runs(metrics(adversarial), metrics(pedagogical), metric="betti_1")
    assert c.effect_over == "time" and (c.n_runs_a, c.n_runs_b) == (1, 1)
    assert (c.n_a, c.n_b) == (STEPS.size, STEPS.size)
    assert c.std_a == pytest.approx(adversarial.std(ddof=1))
    d = cohens_d(adversarial, pedagogical)
    assert c.cohens_d == pytest.approx(d)
    # Student's t is d / sqrt(1/na + 1/nb): an independent check of the pooled std
    t = stats.ttest_ind(adversarial, pedagogical).statistic
    assert c.cohens_d / math.sqrt(2 / STEPS.size) == pytest.approx(t)
    df = 2 * STEPS.size - 2
    assert c.hedges_g == pytest.approx(d * (1 - 3 / (4 * df - 1)))
    # no interval or p-value from autocorrelated time points
    assert math.isnan(c.ci_low) and math.isnan(c.ci_high) and math.isnan(c.p_value)
    assert c.reason is not None and ">= 2 runs (seeds) per side; got 1 and 1" in c.reason


def test_single_runs_with_another_statistic_have_no_effect_size() -> None:
    c = compare_runs(
        metrics([1.0, 2.0, 3.0]), metrics([1.0, 1.5, 1.0]), metric="betti_1", statistic="final"
    )
    assert (c.mean_a, c.mean_b, c.difference) == (3.0, 1.0, 2.0)
    assert c.relative_difference == 200.0
    assert math.isnan(c.cohens_d) and math.isnan(c.hedges_g)
    assert c.reason is not None and "needs statistic='mean'; got 'final'" in c.reason


def test_window_and_statistics() -> None:
    a = metrics([0.0, 1.0, 2.0, 10.0])  # steps 0, 500, 1000, 1500
    b = metrics([0.0, 0.0, 0.0, 0.0])
    assert compare_runs(a, b, metric="betti_1", window=(0, 1500)).mean_a == 1.0
    assert compare_runs(a, b, metric="betti_1", window=Phase("late", 1000, 2000)).mean_a == 6.0
    expected = {"mean": 3.25, "median": 1.5, "first": 0.0, "final": 10.0, "max": 10.0, "min": 0.0}
    for statistic, value in expected.items():
        c = compare_runs(a, b, metric="betti_1", statistic=statistic)  # type: ignore[arg-type]
        assert c.mean_a == value, statistic
    zero = compare_runs(a, b, metric="betti_1")
    assert math.isnan(zero.relative_difference) and "mean_b is 0" in (zero.reason or "")


# --------------------------------------------------------------------------- seeds


def seed_runs(means: np.ndarray, noise: float = 0.05) -> list[pd.DataFrame]:
    """One run per seed: a flat trajectory at ``mean`` plus zero-mean noise."""
    rng = np.random.default_rng(int(1000 * abs(means).sum()) % 2**32)
    runs = []
    for m in means:
        wiggle = rng.normal(0, noise, 10)
        runs.append(scalars(m + wiggle - wiggle.mean(), name="acc"))
    return runs


def test_seeds_effect_size_ci_and_welch_against_scipy() -> None:
    per_seed_a = np.array([0.81, 0.84, 0.80, 0.86, 0.83])
    per_seed_b = np.array([0.95, 1.00, 0.97, 0.99])
    c = compare_runs(seed_runs(per_seed_a), seed_runs(per_seed_b), name="acc")
    assert c.effect_over == "seeds" and (c.n_runs_a, c.n_runs_b, c.n_a, c.n_b) == (5, 4, 5, 4)
    assert c.mean_a == pytest.approx(per_seed_a.mean()) and c.mean_b == pytest.approx(
        per_seed_b.mean()
    )
    assert c.std_b == pytest.approx(per_seed_b.std(ddof=1))
    assert c.cohens_d == pytest.approx(cohens_d(per_seed_a, per_seed_b))
    assert c.hedges_g == pytest.approx(c.cohens_d * (1 - 3 / (4 * 7 - 1)))
    welch = stats.ttest_ind(per_seed_a, per_seed_b, equal_var=False)
    assert c.p_value == pytest.approx(welch.pvalue)
    assert c.ci_low < c.difference < c.ci_high < 0
    assert (c.ci_low, c.ci_high) == pytest.approx(bootstrap_ci(per_seed_a, per_seed_b))
    assert c.reason is None


def test_mapping_of_runs_and_one_versus_several() -> None:
    a = {"s0": scalars([1.0, 2.0]), "s1": scalars([3.0, 4.0])}
    c = compare_runs(a, scalars([0.0, 1.0]), name="hierarchy")
    assert c.effect_over == "seeds" and (c.n_a, c.n_b) == (2, 1)
    # per-run means 1.5, 3.5 vs 0.5; pooled std from side a alone: SS = 2 with 1 dof
    assert c.cohens_d == pytest.approx((2.5 - 0.5) / math.sqrt(2.0))
    assert math.isnan(c.ci_low) and "got 2 and 1" in (c.reason or "")


def test_bootstrap_ci_covers_the_truth_and_shrinks_with_seeds() -> None:
    rng = np.random.default_rng(42)
    true_difference = 1.0
    widths = []
    for n in (4, 16, 64):
        a = rng.normal(true_difference, 1.0, n)
        b = rng.normal(0.0, 1.0, n)
        low, high = bootstrap_ci(a, b, rng=7)
        assert low < true_difference < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # the percentile interval of a mean difference is close to the normal one
    assert widths[2] == pytest.approx(2 * 1.96 * math.sqrt(2 / 64), rel=0.25)


def test_identical_groups_give_an_interval_around_zero() -> None:
    values = np.array([0.2, 0.5, 0.3, 0.9, 0.4])
    low, high = bootstrap_ci(values, values.copy())
    assert low < 0 < high
    assert low == pytest.approx(-high, abs=0.05)
    c = compare_runs(seed_runs(values), seed_runs(values), name="acc")
    assert c.difference == pytest.approx(0, abs=1e-12) and c.cohens_d == pytest.approx(0, abs=1e-9)
    assert c.p_value == pytest.approx(1.0)
    assert c.ci_low <= 0 <= c.ci_high


def test_bootstrap_is_reproducible_and_accepts_a_generator() -> None:
    a, b = [1.0, 2.0, 4.0], [0.0, 1.0, 1.5]
    assert bootstrap_ci(a, b, rng=3) == bootstrap_ci(a, b, rng=3)
    gen = np.random.default_rng(3)
    x, y = np.linspace(0, 1, 20) ** 2, np.linspace(0, 1, 20)
    assert bootstrap_ci(x, y, rng=gen, n_boot=200) != bootstrap_ci(x, y, rng=gen, n_boot=200)
    low90, high90 = bootstrap_ci(a, b, confidence=0.9)
    low99, high99 = bootstrap_ci(a, b, confidence=0.99)
    assert low99 <= low90 and high90 <= high99


@pytest.mark.parametrize(
    ("a", "kwargs", "match"),
    [
        ([1.0], {}, r"values_a must be a 1-D array of at least 2 values .*got shape \(1,\)"),
        ([1.0, math.nan], {}, r"values_a must be finite; got \[1\.0, nan\]"),
        ([[1.0, 2.0]], {}, "values_a must be a 1-D array"),
        ([1.0, 2.0], {"confidence": 1.5}, r"confidence must be a number in \(0, 1\).*got 1\.5"),
        ([1.0, 2.0], {"n_boot": 0}, "n_boot must be an integer >= 1, e.g. 10000; got 0"),
    ],
)
def test_bootstrap_validation(a: list[object], kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        bootstrap_ci(a, [0.0, 1.0], **kwargs)  # type: ignore[arg-type]


def test_constant_seeds_have_no_welch_test() -> None:
    c = compare_runs(
        [scalars([1.0]), scalars([1.0])], [scalars([2.0]), scalars([2.0])], name="hierarchy"
    )
    assert math.isnan(c.p_value) and math.isnan(c.cohens_d)
    assert "pooled std is 0" in (c.reason or "") and "Welch test is undefined" in (c.reason or "")
    assert (c.ci_low, c.ci_high) == (-1.0, -1.0)


# --------------------------------------------------------------------------- selection errors


def two_layers() -> pd.DataFrame:
    return pd.concat([metrics([1.0, 2.0], layer="fc1"), metrics([3.0, 4.0], layer="fc2")])


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "match"),
    [
        (
            two_layers(),
            two_layers(),
            {"metric": "betti_1"},
            r"layer is required: metric 'betti_1' has several layers; pass one of \['fc1', 'fc2'\]",
        ),
        (
            two_layers(),
            two_layers(),
            {"metric": "betti_1", "layer": "fc9"},
            r"layer must be a layer with metric 'betti_1'; got 'fc9'\. Available: \['fc1', 'fc2'\]",
        ),
        (
            two_layers(),
            two_layers(),
            {"metric": "pr"},
            r"metric must be a metric in the tables; got 'pr'\. Available: \['betti_1'\]",
        ),
        (two_layers(), two_layers(), {"name": "loss"}, "these are metrics tables.*got name='loss'"),
        (two_layers(), two_layers(), {}, "metric is required for metrics tables"),
        (scalars([1.0]), scalars([1.0]), {"metric": "x"}, "these are scalars tables.*metric='x'"),
        (
            scalars([1.0]),
            scalars([1.0]),
            {"name": "loss"},
            r"got 'loss'\. Available: \['hierarchy'\]",
        ),
        (scalars([1.0]), two_layers(), {"name": "hierarchy"}, "all tables must be of one kind"),
        (
            [],
            scalars([1.0]),
            {"name": "hierarchy"},
            "a must hold at least one table; got an empty list",
        ),
        (
            "runs/a",
            scalars([1.0]),
            {"name": "hierarchy"},
            "a must be a DataFrame, a sequence .*got str",
        ),
        (
            scalars([1.0]),
            scalars([1.0], name="loss"),
            {"name": "loss"},
            "name='loss' is not in any table of a; it has hierarchy",
        ),
        (
            scalars([1.0]),
            scalars([1.0]),
            {"name": "hierarchy", "statistic": "best"},
            "statistic must be one of 'mean', .*; got 'best'",
        ),
        (
            scalars([1.0]),
            scalars([1.0]),
            {"name": "hierarchy", "window": (5, 5)},
            r"Phase 'window' end must be > start \(5\)",
        ),
        (
            scalars([1.0]),
            scalars([1.0]),
            {"name": "hierarchy", "window": 5},
            r"window must be a Phase or a \(start, end\) pair of steps; got 5",
        ),
    ],
)
def test_compare_runs_validation(
    a: object, b: object, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        compare_runs(a, b, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- compare_all


def test_compare_all_has_one_row_per_shared_series() -> None:
    def table(shift: float, extra: bool) -> pd.DataFrame:
        parts = [
            metrics(np.array([1.0, 2.0, 3.0]) + shift, layer="fc1", metric="pr"),
            metrics(np.array([5.0, 3.0, 1.0]) + shift, layer="fc2", metric="pr"),
            metrics(np.array([2.0, 2.5, 2.0]) * (1 + shift), layer="fc1", metric="twonn"),
        ]
        if extra:
            parts.append(metrics([9.0, 9.0], layer="fc3", metric="pr"))
        return pd.concat(parts, ignore_index=True)

    a = [table(0.1, True), table(0.3, True)]
    b = [table(0.0, False), table(-0.1, False), table(0.05, False)]
    out = compare_all(a, b)
    assert list(out.columns) == ["layer", "metric", *COMPARISON_COLUMNS]
    assert list(zip(out["layer"], out["metric"], strict=True)) == [
        ("fc1", "pr"),
        ("fc1", "twonn"),
        ("fc2", "pr"),
    ]
    for _, row in out.iterrows():
        one = compare_runs(a, b, metric=row["metric"], layer=row["layer"])
        for column in COMPARISON_COLUMNS:
            expected = getattr(one, column)
            if isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(row[column]), column
            else:
                assert row[column] == expected, column
    assert out["n_runs_a"].dtype == np.int64 and out["cohens_d"].dtype == np.float64
    assert out["mean_a"].iloc[0] == pytest.approx(2.2)
    nothing_shared = compare_all(a, metrics([1.0], layer="other"))
    assert nothing_shared.empty and list(nothing_shared.columns) == list(out.columns)


def test_compare_all_on_scalars() -> None:
    a = pd.concat([scalars([2.0, 1.0], "loss"), scalars([0.5, 0.7], "acc")])
    b = pd.concat([scalars([3.0, 2.0], "loss"), scalars([0.4, 0.4], "acc")])
    out = compare_all(a, b, statistic="final")
    assert list(out.columns) == ["name", *COMPARISON_COLUMNS]
    assert out.set_index("name")["difference"].to_dict() == pytest.approx(
        {"acc": 0.3, "loss": -1.0}
    )


# --------------------------------------------------------------------------- seed_statistics


def test_seed_statistics_against_numpy() -> None:
    rng = np.random.default_rng(3)
    trajectories = rng.normal(0, 1, (6, 12))
    runs = {
        f"s{i}": pd.concat(
            [metrics(t, layer="fc1", metric="pr"), metrics(2 * t, layer="fc2", metric="pr")]
        )
        for i, t in enumerate(trajectories)
    }
    out = seed_statistics(runs, statistic="final")
    assert list(out.columns) == ["layer", "metric", *SEED_STATISTICS_COLUMNS]
    finals = trajectories[:, -1]
    row = out.set_index("layer").loc["fc1"]
    assert row["n_seeds"] == 6
    assert row["mean"] == pytest.approx(finals.mean()) and row["std"] == pytest.approx(
        finals.std(ddof=1)
    )
    assert (row["min"], row["max"]) == (pytest.approx(finals.min()), pytest.approx(finals.max()))
    assert out.set_index("layer").loc["fc2", "mean"] == pytest.approx(2 * finals.mean())

    best = seed_statistics(runs, statistic="max").set_index("layer").loc["fc1", "mean"]
    assert best == pytest.approx(trajectories.max(axis=1).mean())
    window = seed_statistics(runs, statistic="mean", window=(0, 1500)).set_index("layer")
    assert window.loc["fc1", "mean"] == pytest.approx(trajectories[:, :3].mean())


def test_seed_003_variance_analysis() -> None:
    # "Variance analysis (LR=5e-4, 3 runs): Mean -0.762, Std 0.020, Range [-0.783, -0.735]"
    runs = [scalars([0.4, v, v + 0.05]) for v in (-0.783, -0.768, -0.735)]
    seed003 = seed_statistics(runs, statistic="min", ddof=0).iloc[0]
    assert seed003["n_seeds"] == 3
    assert round(seed003["mean"], 3) == -0.762 and round(seed003["std"], 3) == 0.020
    assert (seed003["min"], seed003["max"]) == (-0.783, -0.735)
    # the seed's std was numpy's default ddof=0; the unbiased one is larger
    assert round(seed_statistics(runs, statistic="min").iloc[0]["std"], 3) == 0.025


def test_seed_statistics_counts_runs_with_the_series() -> None:
    runs = [
        scalars([1.0, 2.0]),
        pd.concat([scalars([3.0]), scalars([5.0], "loss")]),
        scalars([math.nan]),
    ]
    out = seed_statistics(runs).set_index("name")
    assert out.loc["hierarchy", "n_seeds"] == 2 and out.loc["hierarchy", "mean"] == 2.5
    assert out.loc["loss", "n_seeds"] == 1 and math.isnan(out.loc["loss", "std"])
    with pytest.raises(ConfigError, match="ddof must be an integer >= 0; got -1"):
        seed_statistics(runs, ddof=-1)


# --------------------------------------------------------------------------- early ~ best


def test_seed_003_init_best_rho_is_092() -> None:
    # 25 runs whose best ranks follow their initial ranks but for two swaps (10 and 2
    # apart): sum d^2 = 2 * (10^2 + 2^2) = 208, rho = 1 - 6 * 208 / (25 * 624) = 0.92.
    ranks = np.arange(25)
    best_ranks = ranks.copy()
    best_ranks[[0, 10]] = best_ranks[[10, 0]]
    best_ranks[[12, 14]] = best_ranks[[14, 12]]
    init = -0.7 + 0.05 * ranks  # good inits near -0.7, inverted ones up to +0.5
    best = -0.78 + 0.004 * best_ranks  # the lower, the better
    runs = {
        f"seed{i}": scalars([init[i], best[i], best[i] + 0.02, best[i] + 0.05]) for i in range(25)
    }
    c = early_best_correlation(runs, name="hierarchy", mode="min")
    assert c.rho == pytest.approx(0.92) and c.n == 25 and c.reason is None
    expected = stats.spearmanr(init, best)
    assert c.rho == pytest.approx(expected.statistic) and c.p_value == pytest.approx(
        expected.pvalue
    )
    assert c.runs[:2] == ("seed0", "seed1") and c.early == pytest.approx(tuple(init))


def test_early_value_options_against_scipy() -> None:
    rng = np.random.default_rng(5)
    trajectories = rng.normal(0, 1, (8, 6))
    runs = [metrics(t) for t in trajectories]  # steps 0, 500, ..., 2500
    at_1000 = early_best_correlation(runs, metric="betti_1", early_step=1200)
    expected = stats.spearmanr(trajectories[:, 2], trajectories.max(axis=1)).statistic
    assert at_1000.rho == pytest.approx(expected)
    mean_early = early_best_correlation(runs, metric="betti_1", early_window=(0, 1000), mode="min")
    expected = stats.spearmanr(trajectories[:, :2].mean(axis=1), trajectories.min(axis=1)).statistic
    assert mean_early.rho == pytest.approx(expected)
    before = early_best_correlation(runs, metric="betti_1", early_step=-1)
    assert before.n == 0 and math.isnan(before.rho)


def test_early_best_correlation_is_nan_with_a_reason() -> None:
    few = early_best_correlation([scalars([0.1, 0.5]), scalars([0.2, 0.6])], name="hierarchy")
    assert math.isnan(few.rho) and math.isnan(few.p_value) and few.n == 2
    assert (
        few.reason == "Spearman's rho needs at least 3 runs with an early and a best value; got 2."
    )
    flat = early_best_correlation([scalars([0.0, v]) for v in (1.0, 2.0, 3.0)], name="hierarchy")
    assert math.isnan(flat.rho) and flat.reason == "the early values are all equal (0.0)."
    with pytest.raises(ConfigError, match="give early_step or early_window, not both"):
        early_best_correlation(
            [scalars([0.0])], name="hierarchy", early_step=1, early_window=(0, 2)
        )
    with pytest.raises(ConfigError, match="mode must be one of 'max', 'min'; got 'best'"):
        early_best_correlation([scalars([0.0])], name="hierarchy", mode="best")  # type: ignore[arg-type]


def many_runs() -> tuple[pd.DataFrame, np.ndarray]:
    """Five runs x two layers x one metric x four steps, with NaN, Inf and a missing row.

    Returns the long table and the values as an array (run, layer, step); NaN where a
    value is missing, non-finite or absent.
    """
    rng = np.random.default_rng(7)
    values = rng.normal(size=(5, 2, 4)) + np.arange(4)
    values[1, 0, 2] = np.nan
    values[2, 0, 2] = np.inf
    values[3, 1, 0] = -np.inf
    rows = [
        (f"r{r}", step, f"layers.{layer}", "pr", values[r, layer, j])
        for r in range(5)
        for layer in (1, 0)  # layers.1 first: the output keeps order of appearance
        for j, step in enumerate([0, 10, 20, 30])
        if not (r == 4 and layer == 1 and step == 30)  # a step this run did not sample
    ]
    table = pd.DataFrame(rows, columns=["run", "step", "layer", "metric", "value"])
    table["reason"] = pd.NA
    truth = np.where(np.isfinite(values), values, np.nan)
    truth[4, 1, 3] = np.nan
    return table, truth


def test_seed_bands_against_numpy() -> None:
    table, truth = many_runs()
    groups = {"r3": "b", "r0": "a", "r1": "a", "r2": "a", "r4": "b", "elsewhere": "c"}
    bands = seed_bands(table, groups)
    assert list(bands.columns) == list(SEED_BANDS_COLUMNS)
    assert bands.dtypes[["step", "n"]].tolist() == [np.dtype("int64")] * 2
    assert bands.dtypes[["mean", "min", "max"]].tolist() == [np.dtype("float64")] * 3
    # groups in mapping order, layers in order of first appearance, steps ascending
    assert bands[["group", "layer"]].drop_duplicates().values.tolist() == [
        ["b", "layers.1"],
        ["b", "layers.0"],
        ["a", "layers.1"],
        ["a", "layers.0"],
    ]
    assert len(bands) == 16
    members = {"a": [0, 1, 2], "b": [3, 4]}
    for row in bands.itertuples(index=False):
        layer = int(row.layer.split(".")[1])
        j = row.step // 10
        x = truth[members[row.group], layer, j]
        x = x[np.isfinite(x)]
        assert row.n == x.size
        if x.size:
            assert row.mean == pytest.approx(np.mean(x), rel=1e-12)
            assert (row.min, row.max) == (np.min(x), np.max(x))
        else:
            assert math.isnan(row.mean) and math.isnan(row.min) and math.isnan(row.max)
    # a NaN and an Inf at (a, layers.0, 20): one finite value left
    cell = bands.query("group == 'a' and layer == 'layers.0' and step == 20")
    assert cell["n"].item() == 1 and cell["mean"].item() == truth[0, 0, 2]
    # a run that did not sample step 30 only lowers n
    assert bands.query("group == 'b' and layer == 'layers.1' and step == 30")["n"].item() == 1


def test_seed_bands_leaves_out_unmapped_runs_and_empty_tables() -> None:
    table, truth = many_runs()
    bands = seed_bands(table, {"r0": "solo"})
    assert set(bands["group"]) == {"solo"} and (bands["n"] == 1).all()
    expected = truth[0, [1, 0], :].ravel()
    np.testing.assert_array_equal(bands["mean"].to_numpy(), expected)
    empty = seed_bands(table.iloc[:0], {"r0": "solo"})
    assert empty.empty and list(empty.columns) == list(SEED_BANDS_COLUMNS)
    assert empty.dtypes["n"] == np.dtype("int64")


@pytest.mark.parametrize(
    ("table", "groups", "match"),
    [
        ("not a table", {"r0": "a"}, "metrics must be a pandas DataFrame"),
        ("no run column", {"r0": "a"}, r"metrics must have columns run, .*missing run.*assign"),
        ("ok", ["r0"], "groups must be a mapping of run id to group name"),
        ("ok", {"r9": "a"}, r"groups must map runs of the table; got runs \['r9'\].*'r0'"),
        ("doubled", {"r0": "a"}, r"one value per \(run, step, layer, metric\).*\['r0', 0"),
    ],
)
def test_seed_bands_validation(table: str, groups: object, match: str) -> None:
    good, _ = many_runs()
    tables = {
        "not a table": good.to_dict(),
        "no run column": good.drop(columns="run"),
        "ok": good,
        "doubled": pd.concat([good, good]),
    }
    with pytest.raises(ConfigError, match=match):
        seed_bands(tables[table], groups)  # type: ignore[arg-type]
