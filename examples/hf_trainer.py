"""Track a Hugging Face model trained by `transformers.Trainer` (one callback).

Run:  .venv/bin/python examples/hf_trainer.py
Then: the run directory `runs/example-hf-trainer` holds the per-layer metrics of a tiny
BERT (built from a config: nothing is downloaded) learning a synthetic token task.
Needs `pip install traindyn[huggingface]`.
"""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hub

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import traindyn as td
from traindyn.integrations import TraindynCallback

SEQ_LEN = 8


class TokenClasses(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Class 0 sequences use tokens 1-49, class 1 tokens 50-99."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.input_ids = torch.randint(1, 50, (n, SEQ_LEN), generator=g) + 49 * self.labels[:, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        mask = torch.ones(SEQ_LEN, dtype=torch.long)
        return {"input_ids": self.input_ids[i], "attention_mask": mask, "labels": self.labels[i]}


torch.manual_seed(0)
config = BertConfig(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=SEQ_LEN,
)
model = BertForSequenceClassification(config)
held_out = TokenClasses(64, seed=2)
probe = ({"input_ids": held_out.input_ids, "attention_mask": torch.ones(64, SEQ_LEN).long()},
         held_out.labels)  # fmt: skip

shutil.rmtree("runs/example-hf-trainer", ignore_errors=True)
callback = TraindynCallback(probe, "runs/example-hf-trainer", every=5)
args = TrainingArguments(
    output_dir="hf-trainer-output",
    max_steps=40,
    per_device_train_batch_size=16,
    learning_rate=2e-3,
    logging_steps=10,
    save_strategy="no",
    report_to=[],
    use_cpu=True,
    disable_tqdm=True,  # the Trainer prints its logs instead of a progress bar
)
trainer = Trainer(model=model, args=args, train_dataset=TokenClasses(1024, seed=1),
                  callbacks=[callback])  # fmt: skip
with callback:  # if training raises, the run ends "failed" with the error
    trainer.train()

run = td.open_run(callback.run_path)
print(f"run: {run.path} ({run.manifest.status}, total_steps="
      f"{run.manifest.config['tracker']['total_steps']})")  # fmt: skip
scalars = run.scalars.pivot_table(index="step", columns="name", values="value")
print(scalars[["loss", "lr", "probe_accuracy"]].round(4).to_string())
rank = run.metrics.query("metric == 'effective_rank'")
print(rank.pivot(index="step", columns="layer", values="value").iloc[[0, -1]].round(2).to_string())
