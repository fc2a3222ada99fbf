"""Post-hoc measurement over saved checkpoints equals measuring the loaded weights directly."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from traindyn.capture import (
    checkpoint_representations,
    compare_checkpoints,
    measure_checkpoints,
    write_checkpoint_comparison,
)
from traindyn.exceptions import CheckpointMismatch, ConfigError, MetricError, ProbeError, StoreError
from traindyn.experiments import build_model
from traindyn.metrics import (
    DEFAULT_METRICS,
    attention_entropy,
    effective_rank,
    energy_rank,
    filter_similarity,
    linear_cka,
    nuclear_norm_ratio,
    participation_ratio,
    reduce_activation,
    stable_rank,
)
from traindyn.store import Run, open_run, save_checkpoint

STEPS = (0, 10, 20)
DIRECT: dict[str, Callable[[torch.Tensor], float]] = {
    "participation_ratio": participation_ratio,
    "effective_rank": effective_rank,
    "stable_rank": stable_rank,
    "energy_rank": energy_rank,
    "nuclear_norm_ratio": nuclear_norm_ratio,
}


def make_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def perturb(model: nn.Module, scale: float = 0.3) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


def save_series(
    model: nn.Module, path: Path, steps: tuple[int, ...]
) -> tuple[Run, dict[int, dict]]:
    """Save ``model`` at each step, perturbing it in between; return the states saved."""
    run = Run.create(path, handle_signals=False)
    states = {}
    for step in steps:
        save_checkpoint(model, run, step)
        states[step] = copy.deepcopy(model.state_dict())
        perturb(model)
    run.finish()
    return run, states


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, dict]]:
    torch.manual_seed(0)
    run, states = save_series(make_mlp(), tmp_path_factory.mktemp("posthoc") / "mlp", STEPS)
    return run.path, states


@pytest.fixture(scope="module")
def probe() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 6, generator=g)
    y = torch.arange(3).repeat_interleave(20)
    return x, y


def direct_outputs(state: dict, x: torch.Tensor, model: nn.Module | None = None) -> dict:
    """Every child's output of a Sequential loaded with ``state``, computed by hand."""
    net = copy.deepcopy(model) if model is not None else make_mlp()
    net.load_state_dict(state)
    net.eval()
    outs = {}
    h = x
    with torch.no_grad():
        for name, child in net.named_children():
            h = child(h)
            outs[name] = h
    return outs


def test_measured_checkpoints_equal_metrics_of_the_loaded_weights(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, states = mlp_run
    table = measure_checkpoints(path, make_mlp(), probe)
    assert list(table.columns) == ["step", "layer", "metric", "value", "reason"]
    assert len(table) == len(STEPS) * 3 * len(DEFAULT_METRICS)
    assert table["reason"].isna().all()
    for step in STEPS:
        outs = direct_outputs(states[step], probe[0])
        for layer in ("0", "2", "4"):
            for metric, fn in DIRECT.items():
                row = table.query(f"step == {step} and layer == '{layer}' and metric == '{metric}'")
                assert row["value"].item() == pytest.approx(fn(outs[layer]), rel=1e-9)
    # the checkpoints differ, so the trajectory is not flat
    pr = table.query("layer == '2' and metric == 'participation_ratio'")["value"]
    assert pr.nunique() == len(STEPS)


def test_model_weights_mode_and_hooks_are_restored(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, _ = mlp_run
    torch.manual_seed(5)
    model = make_mlp().train()
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    measure_checkpoints(path, model, probe[0], steps=[10])
    compare_checkpoints(path, model, probe[0])
    assert all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)


def test_steps_are_validated_against_the_saved_checkpoints(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, _ = mlp_run
    table = measure_checkpoints(path, make_mlp(), probe[0], steps=[20, 0], metrics="stable_rank")
    assert sorted(set(table["step"])) == [0, 20]
    with pytest.raises(
        StoreError, match=r"steps \[15\] have no checkpoint.*available steps: 0, 10, 20"
    ):
        measure_checkpoints(path, make_mlp(), probe[0], steps=[10, 15])
    with pytest.raises(ConfigError, match="steps must hold integers"):
        measure_checkpoints(path, make_mlp(), probe[0], steps=[1.5])  # type: ignore[list-item]


def test_run_without_checkpoints_is_refused(tmp_path: Path) -> None:
    Run.create(tmp_path / "empty", handle_signals=False).finish()
    with pytest.raises(StoreError, match="has no checkpoints"):
        measure_checkpoints(tmp_path / "empty", make_mlp(), torch.randn(4, 6))


def test_a_model_that_does_not_fit_raises_checkpoint_mismatch(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, _ = mlp_run
    wrong = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(CheckpointMismatch, match=r"0\.weight"):
        measure_checkpoints(path, wrong, probe[0])
    with pytest.raises(CheckpointMismatch):
        compare_checkpoints(path, wrong, probe[0])


def test_per_class_rows_equal_metrics_of_each_class(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, states = mlp_run
    x, y = probe
    table = measure_checkpoints(
        path, make_mlp(), (x, y), steps=[20], metrics=["participation_ratio"], per_class=True
    )
    assert list(table.columns) == ["step", "layer", "class", "metric", "value", "reason"]
    assert list(table.query("layer == '2'")["class"]) == ["0", "1", "2", "mean"]
    outs = direct_outputs(states[20], x)
    for layer in ("0", "2", "4"):
        rows = table.query(f"layer == '{layer}'").set_index("class")["value"]
        per = [participation_ratio(outs[layer][y == c]) for c in range(3)]
        for c in range(3):
            assert rows[str(c)] == pytest.approx(per[c], rel=1e-9)
        assert rows["mean"] == pytest.approx(np.mean(per), rel=1e-9)
        assert rows[str(0)] != pytest.approx(participation_ratio(outs[layer]), rel=1e-3)


def test_per_class_mean_is_nan_when_a_class_cannot_be_measured(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, _ = mlp_run
    x, y = probe
    y = y.clone()
    y[0] = 7  # a class with one sample
    table = measure_checkpoints(
        path, make_mlp(), (x, y), steps=[0], metrics=["stable_rank"], per_class=True
    )
    lonely = table.query("`class` == '7'")
    assert lonely["value"].isna().all() and lonely["reason"].str.contains("at least 2").all()
    mean = table.query("`class` == 'mean'")
    assert mean["value"].isna().all() and mean["reason"].str.startswith("class 7:").all()
    assert table.query("`class` == '1'")["value"].notna().all()


def test_per_class_needs_labels(mlp_run: tuple[Path, dict], probe: tuple) -> None:
    path, _ = mlp_run
    with pytest.raises(ConfigError, match="per_class=True needs class labels"):
        measure_checkpoints(path, make_mlp(), probe[0], per_class=True)


@pytest.mark.parametrize(
    ("probe_x", "error", "match"),
    [
        (torch.zeros(0, 6), ProbeError, "at least 2 samples"),
        (torch.full((4, 6), math.nan), ProbeError, "finite"),
        ([[1.0] * 6] * 4, ProbeError, "tensor"),
    ],
)
def test_bad_probes_are_refused(
    mlp_run: tuple[Path, dict], probe_x: object, error: type[Exception], match: str
) -> None:
    path, _ = mlp_run
    with pytest.raises(error, match=match):
        measure_checkpoints(path, make_mlp(), probe_x)
    with pytest.raises(error, match=match):
        compare_checkpoints(path, make_mlp(), probe_x)


def test_reference_model_measures_its_layers_on_the_model_outputs(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, states = mlp_run
    torch.manual_seed(3)
    judge = nn.Sequential(nn.Linear(3, 10), nn.Tanh(), nn.Linear(10, 4)).train()
    judge_before = copy.deepcopy(judge.state_dict())
    table = measure_checkpoints(
        path,
        make_mlp(),
        probe[0],
        reference=judge,
        to_reference=lambda out: 2.0 * out,
        metrics=["participation_ratio"],
    )
    assert sorted(set(table["layer"])) == ["0", "2"]  # the judge's layers, not the model's
    for step in STEPS:
        generated = direct_outputs(states[step], probe[0])["4"]
        feats = direct_outputs(judge_before, 2.0 * generated, model=judge)
        for layer in ("0", "2"):
            value = table.query(f"step == {step} and layer == '{layer}'")["value"].item()
            assert value == pytest.approx(participation_ratio(feats[layer]), rel=1e-9)
    assert judge.training
    assert all(torch.equal(judge_before[k], v) for k, v in judge.state_dict().items())


def test_reference_options_are_validated(mlp_run: tuple[Path, dict], probe: tuple) -> None:
    path, _ = mlp_run
    model = make_mlp()
    with pytest.raises(ConfigError, match=r"to_reference .* needs reference="):
        measure_checkpoints(path, model, probe[0], to_reference=lambda o: o)
    with pytest.raises(ConfigError, match="reference must be a separate"):
        measure_checkpoints(path, model, probe[0], reference=model)


def test_checkpoint_representations_are_the_reduced_layer_outputs(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, states = mlp_run
    reps = checkpoint_representations(path, make_mlp(), probe[0], steps=[0, 20], layers="**")
    assert list(reps) == [0, 20]
    assert list(reps[0]) == ["0", "1", "2", "3", "4"]
    for step in (0, 20):
        outs = direct_outputs(states[step], probe[0])
        for name, rep in reps[step].items():
            assert torch.allclose(rep, outs[name])


def test_compare_defaults_to_early_mid_late_and_cka_matches(
    tmp_path: Path, probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    torch.manual_seed(2)
    run, states = save_series(make_mlp(), tmp_path / "four", (0, 5, 50, 500))
    c = compare_checkpoints(run.path, make_mlp(), probe[0])
    assert c.steps == (0, 5, 500) and c.layers == ("0", "2", "4")
    outs = {s: direct_outputs(states[s], probe[0]) for s in c.steps}
    row = c.across_steps.query("layer == '2' and step_a == 0 and step_b == 500")
    assert row["cka"].item() == pytest.approx(linear_cka(outs[0]["2"], outs[500]["2"]), rel=1e-9)
    assert len(c.across_steps) == 3 * 3 * 3 and len(c.across_layers) == 3 * 3 * 3
    diag = c.across_steps.query("step_a == step_b")["cka"]
    assert np.allclose(diag, 1.0)
    row = c.across_layers.query("step == 5 and layer_a == '0' and layer_b == '4'")
    assert row["cka"].item() == pytest.approx(linear_cka(outs[5]["0"], outs[5]["4"]), rel=1e-9)
    # hidden units: the ReLU modules, stats of their outputs
    assert sorted(set(c.hidden_units["module"])) == ["1", "3"]
    assert c.attention_entropy.empty and c.filter_similarity.empty and not c.skipped
    with pytest.raises(ConfigError, match="reduce must be one of 'mean', 'flatten'"):
        compare_checkpoints(run.path, make_mlp(), probe[0], reduce="per_position")


def test_planted_dead_units_appear_in_the_hidden_unit_table(
    tmp_path: Path, probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    torch.manual_seed(4)
    model = make_mlp()
    run = Run.create(tmp_path / "dead", handle_signals=False)
    save_checkpoint(model, run, 0)
    with torch.no_grad():
        model[0].bias[[2, 5, 9]] = -1e3  # never positive on any probe input
    save_checkpoint(model, run, 1)
    run.finish()
    c = compare_checkpoints(run.path, make_mlp(), probe[0], units=["1", "3"])
    table = c.hidden_units.set_index(["step", "module"])
    assert table.loc[(1, "1"), "dead_fraction"] == pytest.approx(3 / 16)
    assert table.loc[(0, "1"), "dead_fraction"] < 3 / 16
    assert table.loc[(1, "1"), "n_units"] == 16
    assert table.loc[(1, "1"), "sparsity"] >= 3 / 16


def test_transformer_attention_entropy_and_identical_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("transformer_shallow", input_shape=(1, 8, 8), n_classes=10)
    run = Run.create(tmp_path / "tf", handle_signals=False)
    save_checkpoint(model, run, 0)
    save_checkpoint(model, run, 5)  # the same weights again
    state0 = copy.deepcopy(model.state_dict())
    perturb(model, 0.2)
    save_checkpoint(model, run, 9)
    run.finish()
    x = torch.randn(24, 1, 8, 8)
    fresh = build_model("transformer_shallow", input_shape=(1, 8, 8), n_classes=10)
    c = compare_checkpoints(run.path, fresh, x)
    assert c.steps == (0, 5, 9) and not c.skipped
    ent = c.attention_entropy
    assert set(ent["module"]) == {"encoder.layers.0.self_attn"}
    assert len(ent) == 3 * 2  # steps x heads
    assert ((ent["entropy"] >= 0) & (ent["entropy"] <= ent["max_entropy"])).all()
    assert ent["max_entropy"].eq(math.log(8)).all()  # 8 row tokens
    # the hook's weights are the module's own: recompute them by hand for step 0
    ref = copy.deepcopy(fresh)
    ref.load_state_dict(state0)
    ref.eval()
    with torch.no_grad():
        layer = ref.encoder.layers[0]
        h = layer.norm1(ref.embed(ref.tokens(x)) + ref.pos_embedding)
        _, w = layer.self_attn(h, h, h, need_weights=True, average_attn_weights=False)
    expected = attention_entropy(w)
    got = ent.query("step == 0").sort_values("head")["entropy"].to_numpy()
    assert np.allclose(got, expected, atol=1e-6)
    sim = c.attention_similarity
    same = sim.query("step_a == 0 and step_b == 5")
    assert len(same) == 2
    assert np.allclose(same["js_divergence"], 0.0, atol=1e-12)
    assert np.allclose(same["correlation"], 1.0, atol=1e-9)
    moved = sim.query("step_a == 0 and step_b == 9")
    assert (moved["js_divergence"] > 1e-4).all()
    same_cka = c.across_steps.query("step_a == 0 and step_b == 5")["cka"]
    assert np.allclose(same_cka, 1.0, atol=1e-9)
    assert c.hidden_units.empty  # GELU is applied functionally inside the encoder layer


def make_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(96, 3)
    )


def test_cnn_with_permuted_channels_matches_filters_and_keeps_cka(tmp_path: Path) -> None:
    torch.manual_seed(6)
    model = make_cnn()
    run = Run.create(tmp_path / "cnn", handle_signals=False)
    save_checkpoint(model, run, 0)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():  # relabel conv 0's channels: the same function
        model[0].weight.copy_(model[0].weight[perm])
        model[0].bias.copy_(model[0].bias[perm])
        model[2].weight.copy_(model[2].weight[:, perm])
    save_checkpoint(model, run, 1)
    run.finish()
    x = torch.randn(30, 1, 8, 8)
    c = compare_checkpoints(run.path, make_cnn(), x, layers=["0", "2", "5"])
    f0 = c.filter_similarity.query("module == '0'")
    assert f0["permuted"].item() == pytest.approx(1.0)
    assert f0["matched"].item() < 0.9
    f2 = c.filter_similarity.query("module == '2'")  # its input channels moved
    assert f2["permuted"].item() < 1.0
    direct = filter_similarity(model[2].weight, model[2].weight)
    assert direct.mean_matched == pytest.approx(1.0)
    # a channel permutation is orthogonal: CKA 1; the later layers are unchanged
    cka = c.across_steps.query("step_a == 0 and step_b == 1").set_index("layer")["cka"]
    assert np.allclose(cka.to_numpy(), 1.0, atol=1e-9)
    assert sorted(set(c.hidden_units["module"])) == ["1", "3"]
    assert set(c.hidden_units["n_units"]) == {4, 6}  # channels are the units


def test_layer_without_representation_raises(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = make_mlp()
            self.unused = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    torch.manual_seed(0)
    model = Skips()
    run = Run.create(mlp_run[0].parent / "skips", handle_signals=False)
    save_checkpoint(model, run, 0)
    run.finish()
    with pytest.raises(MetricError, match="'unused' has no representation at step 0: layer did"):
        checkpoint_representations(run.path, model, probe[0], layers=["net.0", "unused"])
    table = measure_checkpoints(run.path, model, probe[0], layers=["unused"], metrics="stable_rank")
    assert table["value"].isna().all() and table["reason"].str.contains("did not run").all()


def test_write_checkpoint_comparison_round_trips(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, _ = mlp_run
    c = compare_checkpoints(path, make_mlp(), probe[0], steps=[0, 20])
    written = write_checkpoint_comparison(path, c, name="cc")
    assert len(written) == 7 and all(p.is_file() for p in written)
    run = open_run(path)
    back = run.read_analysis("cc_across_steps")
    assert back["cka"].tolist() == c.across_steps["cka"].tolist()
    assert run.read_analysis("cc_filter_similarity").empty
    summary = run.read_analysis("cc")
    assert summary["steps"] == [0, 20] and summary["layers"] == ["0", "2", "4"]


def test_reduce_rule_is_applied_to_conv_outputs(tmp_path: Path) -> None:
    torch.manual_seed(7)
    model = make_cnn()
    run = Run.create(tmp_path / "cnn-reduce", handle_signals=False)
    save_checkpoint(model, run, 0)
    run.finish()
    x = torch.randn(20, 1, 8, 8)
    with torch.no_grad():
        out = model[0](x)
    for rule in ("mean", "flatten", "per_position"):
        table = measure_checkpoints(
            run.path, make_cnn(), x, layers="0", metrics="participation_ratio", reduce=rule
        )
        X = reduce_activation(out, rule=rule, layout="channels_first")
        assert table["value"].item() == pytest.approx(participation_ratio(X), rel=1e-9)


def test_reused_activation_module_is_skipped_with_the_reason(
    tmp_path: Path, probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    torch.manual_seed(8)
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(6, 8), relu, nn.Linear(8, 4), relu, nn.Linear(4, 3))
    run = Run.create(tmp_path / "reused", handle_signals=False)
    save_checkpoint(model, run, 0)
    run.finish()
    c = compare_checkpoints(run.path, model, probe[0])
    assert c.hidden_units.empty
    assert c.skipped == (
        "hidden units of '1' at step 0: module ran 2 times in a pass of 1 chunk(s); a reused "
        "module has no single representation: measure a distinct module instead",
    )


def test_probe_in_chunks_gives_the_same_values(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    path, _ = mlp_run
    whole = measure_checkpoints(path, make_mlp(), probe, per_class=True, metrics="stable_rank")
    chunked = measure_checkpoints(
        path, make_mlp(), probe, per_class=True, metrics="stable_rank", probe_batch_size=16
    )
    assert np.allclose(whole["value"], chunked["value"], rtol=1e-9)
    assert whole[["step", "layer", "class"]].equals(chunked[["step", "layer", "class"]])


def test_probe_noise_is_the_half_sample_spread_of_each_loaded_checkpoint(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    from traindyn.analysis.noise import half_sample_spread
    from traindyn.capture import probe_noise

    path, states = mlp_run
    model = make_mlp()
    before = copy.deepcopy(model.state_dict())
    table = probe_noise(path, model, probe, n_resamples=6, seed=2)
    assert list(table.columns) == ["step", "layer", "metric", "noise"]
    assert [str(t) for t in table.dtypes] == ["int64", "string", "string", "float64"]
    assert len(table) == len(STEPS) * 3 * len(DEFAULT_METRICS)
    assert table["step"].tolist() == sorted(table["step"].tolist())
    for step in (0, 20):
        outs = direct_outputs(states[step], probe[0])
        for layer in ("0", "2", "4"):
            expected = half_sample_spread(outs[layer], DEFAULT_METRICS, n_resamples=6, seed=2)
            got = table.query(f"step == {step} and layer == '{layer}'").set_index("metric")
            for metric, value in expected.items():
                assert got.loc[metric, "noise"] == pytest.approx(value, rel=1e-9), (layer, metric)
    assert table["noise"].notna().all()
    assert (table.query("metric != 'energy_rank'")["noise"] > 0).all()
    # Another seed draws other halves: another (but similar) spread.
    other = probe_noise(path, model, probe[0], steps=[0], metrics="participation_ratio", seed=3)
    first = table.query("step == 0 and metric == 'participation_ratio'")["noise"].to_numpy()
    assert not np.allclose(other["noise"].to_numpy(), first)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_probe_noise_is_nan_where_a_metric_or_a_checkpoint_fails(tmp_path: Path) -> None:
    from traindyn.capture import probe_noise

    torch.manual_seed(0)
    model = make_mlp()
    run = Run.create(tmp_path / "diverged", handle_signals=False)
    save_checkpoint(model, run, 0)
    with torch.no_grad():
        model[4].weight.fill_(float("nan"))
    save_checkpoint(model, run, 5)
    run.finish()
    x = torch.randn(24, 6, generator=torch.Generator().manual_seed(0))
    # Halves of 12 rows: mle_dimension (k = 20) cannot be measured; stable_rank can.
    table = probe_noise(run, make_mlp(), x, metrics=["mle_dimension", "stable_rank"])
    by = table.set_index(["step", "layer", "metric"])["noise"]
    assert by.xs("mle_dimension", level="metric").isna().all()
    assert by.loc[(0, "4", "stable_rank")] > 0
    assert np.isnan(by.loc[(5, "4", "stable_rank")])  # NaN activations: no crash
    assert by.loc[(5, "2", "stable_rank")] == by.loc[(0, "2", "stable_rank")]  # unchanged layers


def test_probe_noise_validates(
    mlp_run: tuple[Path, dict], probe: tuple[torch.Tensor, torch.Tensor]
) -> None:
    from traindyn.capture import probe_noise

    path, _ = mlp_run
    with pytest.raises(ConfigError, match=r"got 'per_position'.*reduce='mean'"):
        probe_noise(path, make_mlp(), probe[0], reduce="per_position")
    with pytest.raises(ConfigError, match="n_resamples must be an integer >= 2"):
        probe_noise(path, make_mlp(), probe[0], n_resamples=1)
    with pytest.raises(ProbeError, match="at least 4 samples to be split in halves; got 3"):
        probe_noise(path, make_mlp(), probe[0][:3])
    with pytest.raises(ConfigError, match="participation_ratio"):
        probe_noise(path, make_mlp(), probe[0], metrics=["participation"])
