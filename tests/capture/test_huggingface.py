"""Tracking a Hugging Face model: built from a config, so no weights are downloaded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import traindyn as td

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=50,
        n_positions=16,
        bos_token_id=None,
        eos_token_id=None,
    )
    return transformers.GPT2LMHeadModel(config)


def test_gpt2_blocks_are_tracked_with_token_accuracy(gpt2: torch.nn.Module, tmp_path: Path) -> None:
    ids = torch.randint(0, 50, (12, 10), generator=torch.Generator().manual_seed(1))
    probe = ({"input_ids": ids[:, :-1], "attention_mask": torch.ones(12, 9)}, ids[:, 1:])
    with td.Tracker(gpt2, probe=probe, run=tmp_path / "r", every=1) as tr:
        tr.step(0)
        tr.step(1)
    run = td.open_run(tmp_path / "r")
    assert td.capture.default_layers(gpt2) == ["transformer.h.0", "transformer.h.1", "lm_head"]
    assert run.manifest.config["tracker"]["layouts"]["transformer.h.0"] == "channels_last"
    m = run.metrics
    assert set(m["layer"]) == {"transformer.h.0", "transformer.h.1", "lm_head"}
    assert m["value"].map(math.isfinite).all()
    scalars = run.scalars.set_index("name")["value"]
    assert gpt2.training  # restored after the probe passes
    gpt2.eval()
    with torch.no_grad():
        logits = gpt2(input_ids=ids[:, :-1]).logits
    gpt2.train()
    expected = (logits.argmax(-1) == ids[:, 1:]).double().mean().item()
    assert scalars["probe_accuracy"].iloc[-1] == pytest.approx(expected)
