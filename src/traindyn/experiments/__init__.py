"""Experiments: bundled datasets and a small model zoo, registered by name.

A client of capture and store, exactly like a user's own training loop.
"""

from __future__ import annotations

from traindyn.experiments.datasets import (
    DATASETS,
    Dataset,
    DatasetSpec,
    load_dataset,
    probe_description,
    probe_split,
)
from traindyn.experiments.models import (
    CNN,
    MLP,
    MODELS,
    CNNConfig,
    MLPConfig,
    ModelConfig,
    ModelSpec,
    Transformer,
    TransformerConfig,
    ZooModel,
    build_model,
    config_from_dict,
    config_to_dict,
    model_from_config,
)

__all__ = [
    "CNN",
    "DATASETS",
    "MLP",
    "MODELS",
    "CNNConfig",
    "Dataset",
    "DatasetSpec",
    "MLPConfig",
    "ModelConfig",
    "ModelSpec",
    "Transformer",
    "TransformerConfig",
    "ZooModel",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "load_dataset",
    "model_from_config",
    "probe_description",
    "probe_split",
]
