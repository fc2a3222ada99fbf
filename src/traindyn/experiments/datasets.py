"""Bundled datasets and fixed probe sets; nothing is ever downloaded.

Every dataset is either shipped with a dependency (scikit-learn's ``digits``) or
generated locally from a seed (``mnist1d``), so a run on a machine with no network
gives the same tensors as everywhere else. Datasets are looked up by name in
:data:`DATASETS`; adding one is adding an entry there.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from traindyn.exceptions import ConfigError

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "load_dataset",
    "probe_description",
    "probe_split",
]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split held in memory as torch tensors.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"digits"``.
    x_train : Tensor of shape (n_train, *input_shape), float32
        Standardised training inputs.
    y_train : Tensor of shape (n_train,), int64
        Training labels in ``0 .. n_classes - 1``.
    x_test : Tensor of shape (n_test, *input_shape), float32
        Test inputs, standardised with the *training* mean and standard deviation.
    y_test : Tensor of shape (n_test,), int64
        Test labels.
    n_classes : int
        Number of classes.
    input_shape : tuple of int
        Shape of one input without the batch dimension, e.g. ``(1, 8, 8)``.
    description : str
        One line for manifests and reports.
    seed : int
        Seed that fixed the split (``digits``) or the generator (``mnist1d``).
    """

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    n_classes: int
    input_shape: tuple[int, ...]
    description: str
    seed: int


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: what a dataset looks like before it is loaded.

    Lets suites check that a model fits a dataset without generating the data.

    Parameters
    ----------
    description : str
        One line, copied into :attr:`Dataset.description`.
    input_shape : tuple of int
        Shape of one input without the batch dimension.
    n_classes : int
        Number of classes.
    n_train, n_test : int
        Split sizes.
    build : callable
        ``build(seed) -> (x_train, y_train, x_test, y_test)`` as numpy arrays, inputs
        already shaped ``(n, *input_shape)`` but not yet standardised.
    """

    description: str
    input_shape: tuple[int, ...]
    n_classes: int
    n_train: int
    n_test: int
    build: Callable[[int], tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]] = field(
        repr=False
    )


def _build_digits(
    seed: int,
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    # Imported here: scikit-learn takes about a second to import and most callers of
    # traindyn.experiments never touch digits.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    # Pixel values are integers 0..16; dividing by 16 maps them onto [0, 1].
    x = np.asarray(bunch.data, dtype=np.float64).reshape(-1, 1, 8, 8) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed
    )
    return x_train, y_train, x_test, y_test


def _build_mnist1d(
    seed: int,
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    # Imported here: mnist1d imports matplotlib.pyplot and requests at import time.
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    # make_dataset seeds Python's and numpy's global generators; restore them so that
    # loading data never changes the caller's random streams.
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global is what it seeds)
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    x_train = np.asarray(data["x"], dtype=np.float64)[:, None, :]
    x_test = np.asarray(data["x_test"], dtype=np.float64)[:, None, :]
    y_train = np.asarray(data["y"], dtype=np.int64)
    y_test = np.asarray(data["y_test"], dtype=np.int64)
    return x_train, y_train, x_test, y_test


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "digits": DatasetSpec(
            description=(
                "scikit-learn digits: 8x8 greyscale handwritten digits, 10 classes, "
                "stratified 80/20 split"
            ),
            input_shape=(1, 8, 8),
            n_classes=10,
            n_train=1437,
            n_test=360,
            build=_build_digits,
        ),
        "mnist1d": DatasetSpec(
            description=(
                "MNIST-1D (Greydanus 2020): 40-sample 1-D signals, 10 classes, "
                "generated locally from the seed"
            ),
            input_shape=(1, 40),
            n_classes=10,
            n_train=4000,
            n_test=1000,
            build=_build_mnist1d,
        ),
    }
)
"""Registry of bundled datasets, keyed by the name given to :func:`load_dataset`."""


def _check_seed(seed: Any, *, name: str = "seed") -> int:
    # numpy's legacy seeding accepts 0 .. 2**32 - 1.
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ConfigError(f"{name} must be an integer in [0, 2**32); got {seed!r}.")
    return int(seed)


def _check_name(name: Any) -> DatasetSpec:
    spec = DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        valid = ", ".join(repr(n) for n in DATASETS)
        raise ConfigError(f"dataset must be one of {valid}; got {name!r}.")
    return spec


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, seed: int) -> Dataset:
    spec = DATASETS[name]
    x_train, y_train, x_test, y_test = spec.build(seed)
    # One scalar mean and standard deviation from the training split: keeps the relative
    # intensities within an image (per-pixel scaling would blow up the near-constant
    # border pixels of digits) and leaks nothing from the test split.
    mean = float(x_train.mean())
    std = float(x_train.std())
    return Dataset(
        name=name,
        x_train=torch.from_numpy(((x_train - mean) / std).astype(np.float32)),
        y_train=torch.from_numpy(y_train.astype(np.int64)),
        x_test=torch.from_numpy(((x_test - mean) / std).astype(np.float32)),
        y_test=torch.from_numpy(y_test.astype(np.int64)),
        n_classes=spec.n_classes,
        input_shape=spec.input_shape,
        description=spec.description,
        seed=seed,
    )


def load_dataset(name: str, *, seed: int = 0) -> Dataset:
    """Load a bundled dataset by name, without any download.

    Inputs are float32, standardised with one mean and standard deviation computed on
    the training split; labels are int64. The result of each ``(name, seed)`` is cached
    in-process (``mnist1d`` takes about a second to generate); every call returns fresh
    tensors, so modifying them in place cannot corrupt later calls.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``"digits"`` (1797 images of shape (1, 8, 8),
        stratified 80/20 split drawn with ``seed``) or ``"mnist1d"`` (4000 train / 1000
        test signals of shape (1, 40), generated from ``seed``).
    seed : int, default=0
        Seed of the split or the generator. Python's and numpy's global random states
        are left unchanged.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        If ``name`` is not registered (the message lists the valid names) or ``seed``
        is not an integer in [0, 2**32).

    Examples
    --------
    >>> ds = load_dataset("digits")
    >>> tuple(ds.x_train.shape), tuple(ds.x_test.shape), ds.n_classes
    ((1437, 1, 8, 8), (360, 1, 8, 8), 10)
    >>> ds.x_train.dtype, ds.y_train.dtype
    (torch.float32, torch.int64)
    """
    _check_name(name)
    seed = _check_seed(seed)
    cached = _load_cached(name, seed)
    return dataclasses.replace(
        cached,
        x_train=cached.x_train.clone(),
        y_train=cached.y_train.clone(),
        x_test=cached.x_test.clone(),
        y_test=cached.y_test.clone(),
    )


def _probe_indices(dataset: Dataset, per_class: Any, seed: Any) -> torch.Tensor:
    """Guts of :func:`probe_split`: validate the options and pick test indices."""
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer):
        raise ConfigError(f"per_class must be a positive integer; got {per_class!r}.")
    if per_class < 1:
        raise ConfigError(f"per_class must be a positive integer; got {per_class!r}.")
    seed = _check_seed(seed)
    counts = torch.bincount(dataset.y_test, minlength=dataset.n_classes)
    smallest = int(counts.min())
    if smallest < per_class:
        short = [c for c in range(dataset.n_classes) if int(counts[c]) < per_class]
        detail = ", ".join(f"class {c} has {int(counts[c])}" for c in short)
        raise ConfigError(
            f"per_class must be at most {smallest} for the {dataset.name!r} test split; "
            f"got {per_class} ({detail}). Use per_class <= {smallest}."
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(dataset.n_classes):
        members = torch.nonzero(dataset.y_test == c).flatten()
        pick = members[torch.randperm(len(members), generator=generator)[:per_class]]
        chosen.append(torch.sort(pick).values)
    return torch.cat(chosen)


def probe_split(
    dataset: Dataset, *, per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a fixed, class-balanced probe set from the test split.

    The probe is what every measurement is computed on, so it must be the same at every
    step of a run and reproducible from the manifest: ``per_class`` samples of each
    class are drawn without replacement with a private generator seeded by ``seed``,
    and returned grouped by class (class 0 first), in test-set order within a class.

    Parameters
    ----------
    dataset : Dataset
        From :func:`load_dataset`.
    per_class : int
        Samples drawn from each class.
    seed : int, default=0
        Seed of the draw. The global torch generator is not used.

    Returns
    -------
    x : Tensor of shape (per_class * n_classes, *input_shape), float32
    y : Tensor of shape (per_class * n_classes,), int64
        Sorted ascending.

    Raises
    ------
    ConfigError
        If ``per_class`` is not a positive integer or exceeds the size of the smallest
        class of the test split (the message names the short classes).

    See Also
    --------
    probe_description : the same options as a manifest entry.

    Examples
    --------
    >>> ds = load_dataset("digits")
    >>> x, y = probe_split(ds, per_class=5)
    >>> tuple(x.shape), y[:6].tolist()
    ((50, 1, 8, 8), [0, 0, 0, 0, 0, 1])
    """
    index = _probe_indices(dataset, per_class, seed)
    return dataset.x_test[index].clone(), dataset.y_test[index].clone()


def probe_description(dataset: Dataset, *, per_class: int, seed: int = 0) -> dict[str, Any]:
    """Describe the probe set of :func:`probe_split` for a run manifest.

    Parameters
    ----------
    dataset : Dataset
        From :func:`load_dataset`.
    per_class : int
        Samples drawn from each class.
    seed : int, default=0
        Seed of the draw.

    Returns
    -------
    dict
        ``dataset`` (name), ``dataset_seed`` (seed the dataset was loaded with),
        ``split`` (always ``"test"``), ``per_class``, ``seed`` and ``n`` (probe size):
        enough to rebuild the probe with ``probe_split(load_dataset(dataset,
        seed=dataset_seed), per_class=per_class, seed=seed)``.

    Raises
    ------
    ConfigError
        As :func:`probe_split`; a description is only given for a probe that exists.

    Examples
    --------
    >>> probe_description(load_dataset("digits"), per_class=5)
    {'dataset': 'digits', 'dataset_seed': 0, 'split': 'test', 'per_class': 5, 'seed': 0, 'n': 50}
    """
    index = _probe_indices(dataset, per_class, seed)
    return {
        "dataset": dataset.name,
        "dataset_seed": dataset.seed,
        "split": "test",
        "per_class": int(per_class),
        "seed": int(seed),
        "n": len(index),
    }
