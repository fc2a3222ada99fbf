from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from traindyn.exceptions import ConfigError
from traindyn.experiments import (
    DATASETS,
    Dataset,
    load_dataset,
    probe_description,
    probe_split,
)

NAMES = sorted(DATASETS)


@pytest.fixture(scope="module", params=NAMES)
def dataset(request: pytest.FixtureRequest) -> Dataset:
    return load_dataset(request.param)


def test_registry_has_bundled_datasets() -> None:
    assert {"digits", "mnist1d"} <= set(DATASETS)


def test_shapes_and_dtypes_match_spec(dataset: Dataset) -> None:
    spec = DATASETS[dataset.name]
    assert dataset.input_shape == spec.input_shape
    assert dataset.n_classes == spec.n_classes
    assert tuple(dataset.x_train.shape) == (spec.n_train, *spec.input_shape)
    assert tuple(dataset.x_test.shape) == (spec.n_test, *spec.input_shape)
    assert tuple(dataset.y_train.shape) == (spec.n_train,)
    assert tuple(dataset.y_test.shape) == (spec.n_test,)
    assert dataset.x_train.dtype == torch.float32
    assert dataset.x_test.dtype == torch.float32
    assert dataset.y_train.dtype == torch.int64
    assert dataset.y_test.dtype == torch.int64
    assert dataset.description == spec.description
    assert dataset.seed == 0


def test_known_sizes() -> None:
    assert (DATASETS["digits"].n_train, DATASETS["digits"].n_test) == (1437, 360)
    assert DATASETS["digits"].input_shape == (1, 8, 8)
    assert (DATASETS["mnist1d"].n_train, DATASETS["mnist1d"].n_test) == (4000, 1000)
    assert DATASETS["mnist1d"].input_shape == (1, 40)


def test_finite_and_standardised_with_train_statistics(dataset: Dataset) -> None:
    assert torch.isfinite(dataset.x_train).all()
    assert torch.isfinite(dataset.x_test).all()
    assert abs(float(dataset.x_train.mean())) < 1e-4
    assert float(dataset.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    # Test statistics are close to, not exactly, the train ones.
    assert abs(float(dataset.x_test.mean())) < 0.2


def test_every_class_present_and_balanced(dataset: Dataset) -> None:
    for labels in (dataset.y_train, dataset.y_test):
        counts = torch.bincount(labels, minlength=dataset.n_classes)
        assert len(counts) == dataset.n_classes
        assert int(labels.min()) == 0
        assert int(labels.max()) == dataset.n_classes - 1
        assert counts.min() > 0.7 * counts.float().mean()


def test_digits_split_is_stratified() -> None:
    ds = load_dataset("digits")
    train = torch.bincount(ds.y_train).float() / len(ds.y_train)
    test = torch.bincount(ds.y_test).float() / len(ds.y_test)
    assert torch.allclose(train, test, atol=0.01)


def test_digits_is_an_affine_map_of_the_17_pixel_levels() -> None:
    levels = torch.unique(load_dataset("digits").x_train)
    gaps = levels[1:] - levels[:-1]
    assert len(levels) == 17
    assert torch.allclose(gaps, gaps[0].expand_as(gaps), rtol=1e-4)


def test_deterministic_across_calls(dataset: Dataset) -> None:
    again = load_dataset(dataset.name)
    assert torch.equal(again.x_train, dataset.x_train)
    assert torch.equal(again.y_test, dataset.y_test)


def test_calls_return_fresh_tensors(dataset: Dataset) -> None:
    first = load_dataset(dataset.name)
    first.x_train.zero_()
    assert not torch.equal(load_dataset(dataset.name).x_train, first.x_train)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_differ(name: str) -> None:
    a, b = load_dataset(name, seed=0), load_dataset(name, seed=1)
    assert b.seed == 1
    assert not torch.equal(a.x_test, b.x_test)


def test_loading_leaves_global_random_state_alone() -> None:
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002 (checking the legacy global is left alone)
    expected_py, expected_np = random.random(), np.random.random()  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    load_dataset("mnist1d", seed=7)
    assert random.random() == expected_py
    assert np.random.random() == expected_np  # noqa: NPY002


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"dataset must be one of 'digits', 'mnist1d'.*'mnist'"):
        load_dataset("mnist")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", 2**32])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ConfigError, match="seed must be an integer"):
        load_dataset("digits", seed=seed)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- probes


def test_probe_is_stratified_and_sorted_by_class(dataset: Dataset) -> None:
    x, y = probe_split(dataset, per_class=7, seed=3)
    assert tuple(x.shape) == (7 * dataset.n_classes, *dataset.input_shape)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [7] * dataset.n_classes
    assert torch.equal(y, torch.sort(y).values)


def test_probe_comes_from_the_test_split_without_repeats(dataset: Dataset) -> None:
    x, y = probe_split(dataset, per_class=5)
    flat_test = dataset.x_test.flatten(1)
    for row, label in zip(x.flatten(1), y, strict=True):
        match = torch.nonzero((flat_test == row).all(dim=1)).flatten()
        assert len(match) >= 1
        assert bool((dataset.y_test[match] == label).any())
    assert len(torch.unique(x.flatten(1), dim=0)) == len(x)


def test_probe_deterministic_and_seeded(dataset: Dataset) -> None:
    a = probe_split(dataset, per_class=5, seed=0)
    b = probe_split(dataset, per_class=5, seed=0)
    c = probe_split(dataset, per_class=5, seed=1)
    assert torch.equal(a[0], b[0])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(a[1], c[1])


def test_probe_does_not_touch_global_torch_generator() -> None:
    ds = load_dataset("digits")
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    probe_split(ds, per_class=3, seed=9)
    assert torch.equal(torch.rand(1), expected)


def test_probe_whole_smallest_class_allowed() -> None:
    ds = load_dataset("digits")
    smallest = int(torch.bincount(ds.y_test).min())
    _, y = probe_split(ds, per_class=smallest)
    assert len(y) == smallest * ds.n_classes


def test_probe_too_large_names_short_classes() -> None:
    ds = load_dataset("digits")
    smallest = int(torch.bincount(ds.y_test).min())
    with pytest.raises(ConfigError, match=rf"per_class must be at most {smallest}.*class \d has"):
        probe_split(ds, per_class=smallest + 1)


@pytest.mark.parametrize("per_class", [0, -3, 2.5, True, "4"])
def test_probe_bad_per_class(per_class: object) -> None:
    with pytest.raises(ConfigError, match="per_class must be a positive integer"):
        probe_split(load_dataset("digits"), per_class=per_class)  # type: ignore[arg-type]


def test_probe_description(dataset: Dataset) -> None:
    info = probe_description(dataset, per_class=4, seed=2)
    assert info == {
        "dataset": dataset.name,
        "dataset_seed": 0,
        "split": "test",
        "per_class": 4,
        "seed": 2,
        "n": 4 * dataset.n_classes,
    }
    # The description is enough to rebuild the probe.
    rebuilt = probe_split(
        load_dataset(info["dataset"], seed=info["dataset_seed"]),
        per_class=info["per_class"],
        seed=info["seed"],
    )
    assert torch.equal(rebuilt[0], probe_split(dataset, per_class=4, seed=2)[0])


def test_probe_description_validates() -> None:
    with pytest.raises(ConfigError, match="per_class"):
        probe_description(load_dataset("digits"), per_class=10_000)
