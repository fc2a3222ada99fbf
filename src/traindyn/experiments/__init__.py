"""Experiments: datasets and a small model zoo, registered by name.

A client of capture and store, exactly like a user's own training loop.
"""

from __future__ import annotations

from traindyn.experiments.datasets import (
    DATASETS,
    INPUT_KINDS,
    Dataset,
    DatasetSpec,
    InputKind,
    default_data_root,
    load_dataset,
    probe_description,
    probe_split,
    read_idx,
    shuffle_train_labels,
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
    ViT,
    ViTConfig,
    ZooModel,
    build_model,
    config_from_dict,
    config_to_dict,
    model_from_config,
)
from traindyn.experiments.rebuild import Rebuilt, rebuild

__all__ = [
    "CNN",
    "DATASETS",
    "INPUT_KINDS",
    "MLP",
    "MODELS",
    "CNNConfig",
    "Dataset",
    "DatasetSpec",
    "InputKind",
    "MLPConfig",
    "ModelConfig",
    "ModelSpec",
    "Rebuilt",
    "Transformer",
    "TransformerConfig",
    "ViT",
    "ViTConfig",
    "ZooModel",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "default_data_root",
    "load_dataset",
    "model_from_config",
    "probe_description",
    "probe_split",
    "read_idx",
    "rebuild",
    "shuffle_train_labels",
]
