"""Track a LightningModule trained by `lightning.pytorch.Trainer` (one callback).

Run:  .venv/bin/python examples/lightning_module.py
Then: the run directory `runs/example-lightning` holds the per-layer metrics of a small
MLP; a fit that raises ends the run "failed", and the callback's state is saved in
Lightning checkpoints so a resumed fit (`resume=True`) continues the same run.
Needs `pip install traindyn[lightning]`.
"""

from __future__ import annotations

import shutil
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

import traindyn as td
from traindyn.integrations import TraindynLightningCallback


class MLP(pl.LightningModule):
    def __init__(self, hidden: int = 64, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()  # recorded in run.json under "lightning"
        self.net = nn.Sequential(
            nn.Linear(20, hidden), nn.ReLU(), nn.Linear(hidden, 32), nn.ReLU(), nn.Linear(32, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        x, y = batch
        return {"loss": nn.functional.cross_entropy(self(x), y)}  # recorded as "loss"

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


torch.manual_seed(0)
x = torch.randn(2048, 20)
y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64,
                                     shuffle=True)  # fmt: skip

shutil.rmtree("runs/example-lightning", ignore_errors=True)
callback = TraindynLightningCallback((x[:256], y[:256]), "runs/example-lightning", every=10)
trainer = pl.Trainer(
    max_steps=200,
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[callback],
)
trainer.fit(MLP(), loader)

run = td.open_run(callback.run_path)
print(f"run: {run.path} ({run.manifest.status}, total_steps="
      f"{run.manifest.config['tracker']['total_steps']})")  # fmt: skip
print("hparams:", run.manifest.config["lightning"]["hparams"])
scalars = run.scalars.pivot_table(index="step", columns="name", values="value")
print(
    scalars[["loss", "lr", "probe_accuracy"]].dropna(subset=["probe_accuracy"]).round(4).to_string()
)
pr = run.metrics.query("metric == 'participation_ratio'")
print(pr.pivot(index="step", columns="layer", values="value").iloc[[0, -1]].round(2).to_string())
