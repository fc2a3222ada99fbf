"""Null controls: random-init and Gaussian bands measured on a run's probe."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from traindyn.analysis.chance import chance_bands, different_from_chance
from traindyn.capture.controls import null_controls
from traindyn.exceptions import ConfigError, ProbeError, StoreError
from traindyn.experiments import rebuild
from traindyn.experiments.suite import ExperimentSpec
from traindyn.experiments.trainer import train
from traindyn.metrics import measure
from traindyn.store import Run, open_run, save_checkpoint

D = 50
SPECTRAL_AND_ID = ["participation_ratio", "effective_rank", "twonn_dimension"]


def make_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def identity(d: int = D) -> nn.Sequential:
    """A layer whose output is its input: the probe itself is the representation."""
    net = nn.Sequential(nn.Linear(d, d))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(d))
        net[0].bias.zero_()
    return net


def curve(n: int = 200, d: int = D, seed: int = 0) -> torch.Tensor:
    """A closed curve (intrinsic dimension 1) whose covariance has 10 non-zero
    eigenvalues, isometrically embedded in d dimensions."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    parts = [np.stack([np.cos(k * t), np.sin(k * t)], 1) / k for k in range(1, 6)]
    q, _ = np.linalg.qr(rng.standard_normal((d, 10)))
    return torch.tensor(np.concatenate(parts, 1) @ q.T, dtype=torch.float32)


def gaussian(n: int = 200, d: int = 20, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.standard_normal((n, d)) * np.linspace(3, 0.3, d), dtype=torch.float32)


@pytest.fixture(scope="module")
def identity_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = Run.create(tmp_path_factory.mktemp("controls") / "identity", handle_signals=False)
    for step in (0, 5):
        save_checkpoint(identity(), run, step)
    run.finish()
    return run.path


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    run = Run.create(
        tmp_path_factory.mktemp("controls") / "mlp",
        probe={"mode": "probe", "n": 40, "shape": [40, 6]},
        handle_signals=False,
    )
    save_checkpoint(make_mlp(), run, 0)
    run.finish()
    return run.path


@pytest.fixture(scope="module")
def mlp_probe() -> torch.Tensor:
    return torch.randn(40, 6, generator=torch.Generator().manual_seed(1))


def test_the_table_has_the_declared_schema(mlp_run: Path, mlp_probe: torch.Tensor) -> None:
    t = null_controls(mlp_run, make_mlp(), mlp_probe, metrics=["stable_rank"], n_draws=3)
    assert list(t.columns) == ["step", "layer", "control", "draw", "metric", "value", "reason"]
    dtypes = ["int64", "string", "string", "int64", "string", "float64", "string"]
    assert [str(d) for d in t.dtypes] == dtypes
    assert set(t[t["control"] == "random_init"]["step"]) == {-1}
    assert set(t[t["control"] == "gaussian"]["step"]) == {0}
    assert len(t) == 2 * 2 * 3  # controls x layers (0, 2) x draws
    assert t["reason"].isna().all()


def test_gaussian_control_of_a_gaussian_has_its_participation_ratio(tmp_path: Path) -> None:
    run = Run.create(tmp_path / "g", handle_signals=False)
    save_checkpoint(identity(20), run, 0)
    run.finish()
    x = gaussian()
    observed = {m.metric: m.value for m in measure(x, SPECTRAL_AND_ID)}
    exact = null_controls(
        run, identity(20), x, controls="gaussian", metrics=SPECTRAL_AND_ID, n_draws=8
    )
    bands = chance_bands(exact).set_index("metric")
    # spectral metrics are functions of the covariance, which the exact draw keeps
    for metric in ("participation_ratio", "effective_rank"):
        assert bands.loc[metric, "mean"] == pytest.approx(observed[metric], rel=1e-5)
        assert bands.loc[metric, "sd"] < 1e-4 * observed[metric]
    # a Gaussian's TwoNN is the Gaussian band's, within sampling error
    z = (observed["twonn_dimension"] - bands.loc["twonn_dimension", "mean"]) / bands.loc[
        "twonn_dimension", "sd"
    ]
    assert abs(z) < 3
    expected = null_controls(
        run,
        identity(20),
        x,
        controls="gaussian",
        covariance="expected",
        metrics=["participation_ratio"],
        n_draws=8,
    )
    band = chance_bands(expected).iloc[0]
    # re-sampled covariance: the same PR up to a few sd (and its known downward bias)
    assert abs(observed["participation_ratio"] - band["mean"]) < 4 * band["sd"]
    assert band["mean"] < observed["participation_ratio"]
    decided = different_from_chance(_observed(x), chance_bands(exact))
    assert not decided["different"].any()


def _observed(x: torch.Tensor, steps: tuple[int, ...] = (0,)) -> pd.DataFrame:
    """The metrics table of the identity model: the probe's own metrics at each step."""
    values = measure(x, SPECTRAL_AND_ID)
    rows = [(step, "0", m.metric, m.value) for step in steps for m in values]
    return pd.DataFrame(rows, columns=["step", "layer", "metric", "value"])


def test_a_curve_has_twonn_far_from_its_gaussian_band(identity_run: Path) -> None:
    x = curve()
    t = null_controls(
        identity_run, identity(), x, controls="gaussian", metrics=SPECTRAL_AND_ID, n_draws=5
    )
    bands = chance_bands(t)
    assert set(bands["step"]) == {0, 5}
    decided = different_from_chance(_observed(x, (0, 5)), bands).set_index(["step", "metric"])
    for step in (0, 5):
        twonn = decided.loc[(step, "twonn_dimension")]
        assert twonn["value"] == pytest.approx(1.0, abs=0.15)  # a curve
        assert twonn["mean"] > 5  # a Gaussian with 10 directions of variance
        assert twonn["different"] and twonn["z"] < -3
        for metric in ("participation_ratio", "effective_rank"):
            assert not decided.loc[(step, metric), "different"]
    # the same weights at both steps and common random numbers: the same band
    assert (
        decided.loc[(0, "twonn_dimension"), "mean"] == decided.loc[(5, "twonn_dimension"), "mean"]
    )


def test_random_init_draw_reproduces_the_model_built_with_that_seed(
    mlp_run: Path, mlp_probe: torch.Tensor
) -> None:
    t = null_controls(
        mlp_run,
        make_mlp(),
        mlp_probe,
        controls="random_init",
        init=lambda seed: make_mlp(),
        n_draws=3,
        seed=7,
    )
    for draw in range(3):
        torch.manual_seed(7 + draw)
        net = make_mlp().eval()
        with torch.no_grad():
            hidden = net[0](mlp_probe)
            out = net(mlp_probe)
        for layer, acts in (("0", hidden), ("2", out)):
            got = t.query(f"draw == {draw} and layer == '{layer}'")["value"].tolist()
            assert got == [m.value for m in measure(acts)]
    # draws differ
    assert t.query("layer == '0' and metric == 'participation_ratio'")["value"].nunique() == 3


def test_default_reinit_equals_building_the_model_again(
    mlp_run: Path, mlp_probe: torch.Tensor
) -> None:
    """reset_parameters() in module order draws what the constructors draw."""
    built = null_controls(
        mlp_run,
        make_mlp(),
        mlp_probe,
        controls="random_init",
        init=lambda seed: make_mlp(),
        n_draws=2,
    )
    reset = null_controls(mlp_run, make_mlp(), mlp_probe, controls="random_init", n_draws=2)
    assert built["value"].tolist() == reset["value"].tolist()


def test_the_model_and_the_rng_are_left_as_they_were(
    mlp_run: Path, mlp_probe: torch.Tensor
) -> None:
    model = make_mlp().train()
    before = copy.deepcopy(model.state_dict())
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    null_controls(mlp_run, model, mlp_probe, n_draws=2, metrics=["stable_rank"])
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks for m in model.modules())


def test_suite_run_random_init_with_its_seed_is_its_step_zero(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        arch="mlp_medium",
        dataset="digits",
        seed=3,
        train={"steps": 2},
        tracking={"every": 1, "probe_per_class": 3},
    )
    train(spec, tmp_path / "r")
    rebuilt = rebuild(tmp_path / "r")
    t = null_controls(
        tmp_path / "r",
        rebuilt.model,
        rebuilt.probe,
        controls="random_init",
        init=rebuilt.initial_model,
        seed=3,
        n_draws=2,
        layers=spec.tracking.layers,
        metrics=spec.tracking.metrics,
    )
    tracked = open_run(tmp_path / "r").metrics.query("step == 0").set_index(["layer", "metric"])
    draw0 = t.query("draw == 0").set_index(["layer", "metric"])
    assert len(draw0) == len(tracked) > 0
    for key, row in draw0.iterrows():
        assert row["value"] == pytest.approx(tracked.loc[key, "value"], rel=1e-6)


def test_bad_input_raises_clear_errors(
    tmp_path: Path, mlp_run: Path, mlp_probe: torch.Tensor
) -> None:
    empty = Run.create(tmp_path / "empty", handle_signals=False)
    empty.finish()
    with pytest.raises(StoreError, match="has no checkpoints"):
        null_controls(empty.path, make_mlp(), mlp_probe)
    with pytest.raises(ConfigError, match=r"metric must be one of .* Did you mean"):
        null_controls(mlp_run, make_mlp(), mlp_probe, metrics=["participation_ration"])
    with pytest.raises(ConfigError, match="n_draws must be an integer >= 2"):
        null_controls(mlp_run, make_mlp(), mlp_probe, n_draws=1)
    with pytest.raises(ProbeError, match=r"does not match .*30 samples, recorded 40"):
        null_controls(mlp_run, make_mlp(), mlp_probe[:30])
    with pytest.raises(ConfigError, match="controls must be one of"):
        null_controls(mlp_run, make_mlp(), mlp_probe, controls=["shuffled"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"init must build .*'2.weight' has shape \(4, 16\)"):
        null_controls(
            mlp_run,
            make_mlp(),
            mlp_probe,
            controls="random_init",
            init=lambda s: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)),
        )
    with pytest.raises(ConfigError, match="covariance must be one of"):
        null_controls(mlp_run, make_mlp(), mlp_probe, covariance="full")  # type: ignore[arg-type]


def test_default_reinit_refuses_parameters_it_cannot_redraw(tmp_path: Path) -> None:
    class WithPosition(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 4)
            self.position = nn.Parameter(torch.zeros(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.fc(x) + self.position
            return out

    run = Run.create(tmp_path / "pos", handle_signals=False)
    save_checkpoint(WithPosition(), run, 0)
    run.finish()
    with pytest.raises(ConfigError, match=r"does not cover the parameters \['position'\]"):
        null_controls(run, WithPosition(), torch.randn(10, 6), controls="random_init")
