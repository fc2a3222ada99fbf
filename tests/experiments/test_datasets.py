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

# Bundled datasets load anywhere; the real ones (files under a root) are tested on tiny
# files in test_real_datasets.py.
NAMES = sorted(name for name, spec in DATASETS.items() if spec.bundled)
TOKEN_NAMES = sorted(name for name in NAMES if DATASETS[name].input_kind == "tokens")
CONTINUOUS_NAMES = sorted(set(NAMES) - set(TOKEN_NAMES))
MODULAR = ("modular_addition", "modular_subtraction", "modular_multiplication", "modular_division")


@pytest.fixture(scope="module", params=NAMES)
def dataset(request: pytest.FixtureRequest) -> Dataset:
    return load_dataset(request.param)


def test_registry_has_bundled_datasets() -> None:
    assert {"digits", "mnist1d", *MODULAR, "modular_addition_shuffled", "sequences"} <= set(NAMES)
    assert {"mnist", "fashion_mnist", "qmnist", "ag_news", "ag_news_bow"} <= set(DATASETS)
    assert not {"mnist", "fashion_mnist", "qmnist", "ag_news", "ag_news_bow"} & set(NAMES)


def test_shapes_and_dtypes_match_spec(dataset: Dataset) -> None:
    spec = DATASETS[dataset.name]
    assert dataset.input_shape == spec.input_shape
    assert dataset.n_classes == spec.n_classes
    assert tuple(dataset.x_train.shape) == (spec.n_train, *spec.input_shape)
    assert tuple(dataset.x_test.shape) == (spec.n_test, *spec.input_shape)
    assert tuple(dataset.y_train.shape) == (spec.n_train,)
    assert tuple(dataset.y_test.shape) == (spec.n_test,)
    x_dtype = torch.int64 if spec.input_kind == "tokens" else torch.float32
    assert dataset.x_train.dtype == x_dtype
    assert dataset.x_test.dtype == x_dtype
    assert dataset.input_kind == spec.input_kind
    assert dataset.vocab_size == spec.vocab_size
    assert (dataset.vocab_size is None) == (spec.input_kind == "continuous")
    assert dataset.vocabulary is None or len(dataset.vocabulary) == dataset.vocab_size
    assert dataset.y_train.dtype == torch.int64
    assert dataset.y_test.dtype == torch.int64
    assert dataset.description == spec.description
    assert dataset.seed == 0


def test_known_sizes() -> None:
    assert (DATASETS["digits"].n_train, DATASETS["digits"].n_test) == (1437, 360)
    assert DATASETS["digits"].input_shape == (1, 8, 8)
    assert (DATASETS["mnist1d"].n_train, DATASETS["mnist1d"].n_test) == (4000, 1000)
    assert DATASETS["mnist1d"].input_shape == (1, 40)
    # 97 answers x round(0.3 * 97) = 29 train pairs each; 68 of each in test.
    add = DATASETS["modular_addition"]
    assert (add.n_train, add.n_test, add.n_classes, add.vocab_size) == (2813, 6596, 97, 98)
    assert add.input_shape == (3,)
    # Division leaves out b = 0: 97 * 96 pairs, 96 per answer, round(28.8) = 29 in train.
    div = DATASETS["modular_division"]
    assert (div.n_train, div.n_test) == (2813, 97 * 96 - 2813)
    # Multiplication: answer 0 has 2 * 97 - 1 = 193 pairs (58 train), the others 96 (29).
    mul = DATASETS["modular_multiplication"]
    assert (mul.n_train, mul.n_test) == (58 + 96 * 29, 9409 - 58 - 96 * 29)
    seq = DATASETS["sequences"]
    assert (seq.n_train, seq.n_test, seq.n_classes, seq.vocab_size) == (4000, 1000, 4, 16)
    assert seq.input_shape == (16,)


def test_specs_of_real_datasets() -> None:
    for name, test_size in (("mnist", 10_000), ("fashion_mnist", 10_000), ("qmnist", 60_000)):
        spec = DATASETS[name]
        assert (spec.input_shape, spec.n_classes, spec.n_train, spec.n_test) == (
            (1, 28, 28),
            10,
            60_000,
            test_size,
        )
        assert spec.input_kind == "continuous"
        assert not spec.bundled
    news = DATASETS["ag_news"]
    assert (news.input_shape, news.n_classes, news.n_train, news.n_test) == (
        (64,),
        4,
        120_000,
        7_600,
    )
    assert (news.input_kind, news.vocab_size, news.bundled) == ("tokens", 10_002, False)
    bow = DATASETS["ag_news_bow"]
    assert (bow.input_shape, bow.input_kind, bow.vocab_size) == ((1, 1000), "continuous", None)


@pytest.mark.parametrize("name", TOKEN_NAMES)
def test_token_ids_within_the_vocabulary(name: str) -> None:
    dataset = load_dataset(name)
    assert dataset.vocab_size is not None
    for x in (dataset.x_train, dataset.x_test):
        assert int(x.min()) >= 0
        assert int(x.max()) < dataset.vocab_size


@pytest.mark.parametrize("name", CONTINUOUS_NAMES)
def test_finite_and_standardised_with_train_statistics(name: str) -> None:
    dataset = load_dataset(name)
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
    with pytest.raises(
        ConfigError, match=r"dataset must be one of 'digits', 'mnist1d'.*'sequences'.*'cifar10'"
    ):
        load_dataset("cifar10")


def test_bad_root() -> None:
    with pytest.raises(ConfigError, match="root must be a directory path or None; got 3"):
        load_dataset("digits", root=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", 2**32])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ConfigError, match="seed must be an integer"):
        load_dataset("digits", seed=seed)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- probes


def test_probe_is_stratified_and_sorted_by_class(dataset: Dataset) -> None:
    x, y = probe_split(dataset, per_class=7, seed=3)
    assert tuple(x.shape) == (7 * dataset.n_classes, *dataset.input_shape)
    assert x.dtype == dataset.x_test.dtype
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


# ----------------------------------------------------------------- modular arithmetic

OPS = {
    "modular_addition": lambda a, b: (a + b) % 97,
    "modular_subtraction": lambda a, b: (a - b) % 97,
    "modular_multiplication": lambda a, b: (a * b) % 97,
    # b * answer == a (mod 97): checks division without computing an inverse.
    "modular_division": None,
}


@pytest.fixture(scope="module")
def modular() -> dict[str, Dataset]:
    return {name: load_dataset(name) for name in (*MODULAR, "modular_addition_shuffled")}


@pytest.mark.parametrize("name", MODULAR)
def test_modular_labels_are_the_answers(name: str, modular: dict[str, Dataset]) -> None:
    ds = modular[name]
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        a, b, eq = x[:, 0], x[:, 1], x[:, 2]
        assert torch.equal(eq, torch.full_like(eq, 97))  # the "=" token
        op = OPS[name]
        if op is None:
            assert bool((b > 0).all())
            assert torch.equal((b * y) % 97, a)
        else:
            assert torch.equal(op(a, b), y)
    assert ds.vocabulary is not None
    assert (ds.vocabulary[0], ds.vocabulary[96], ds.vocabulary[97]) == ("0", "96", "=")


@pytest.mark.parametrize("name", MODULAR)
def test_modular_split_is_a_partition_of_all_pairs(name: str, modular: dict[str, Dataset]) -> None:
    ds = modular[name]
    train = (ds.x_train[:, 0] * 97 + ds.x_train[:, 1]).tolist()
    test = (ds.x_test[:, 0] * 97 + ds.x_test[:, 1]).tolist()
    assert len(set(train)) == len(train)
    assert len(set(test)) == len(test)
    assert not set(train) & set(test)
    b_values = range(1, 97) if name == "modular_division" else range(97)
    assert set(train) | set(test) == {a * 97 + b for a in range(97) for b in b_values}


@pytest.mark.parametrize("name", MODULAR)
def test_modular_split_is_stratified_at_thirty_percent(
    name: str, modular: dict[str, Dataset]
) -> None:
    ds = modular[name]
    train = torch.bincount(ds.y_train, minlength=97)
    total = train + torch.bincount(ds.y_test, minlength=97)
    assert torch.equal(train, torch.round(0.3 * total.double()).long())


def test_modular_probe_fits_the_test_split(modular: dict[str, Dataset]) -> None:
    ds = modular["modular_addition"]
    x, y = probe_split(ds, per_class=68)
    assert len(y) == 68 * 97
    assert torch.equal((x[:, 0] + x[:, 1]) % 97, y)
    with pytest.raises(ConfigError, match="per_class must be at most 68"):
        probe_split(ds, per_class=69)


def test_modular_seed_changes_the_split_only() -> None:
    a, b = load_dataset("modular_addition", seed=0), load_dataset("modular_addition", seed=1)
    assert not torch.equal(a.x_train, b.x_train)
    assert torch.equal(torch.bincount(a.y_train), torch.bincount(b.y_train))
    assert torch.equal((b.x_train[:, 0] + b.x_train[:, 1]) % 97, b.y_train)


def test_shuffled_control_permutes_only_the_train_labels(modular: dict[str, Dataset]) -> None:
    true, control = modular["modular_addition"], modular["modular_addition_shuffled"]
    assert torch.equal(control.x_train, true.x_train)
    assert torch.equal(control.x_test, true.x_test)
    assert torch.equal(control.y_test, true.y_test)
    assert torch.equal(torch.sort(control.y_train).values, torch.sort(true.y_train).values)
    # A random permutation keeps about 1/97 of labels in place, far below 5%.
    assert float((control.y_train == true.y_train).double().mean()) < 0.05
    assert "PERMUTED" in control.description
    again = load_dataset("modular_addition_shuffled")
    assert torch.equal(again.y_train, control.y_train)
    assert not torch.equal(
        load_dataset("modular_addition_shuffled", seed=1).y_train[:50], control.y_train[:50]
    )


# -------------------------------------------------------------------------- sequences


@pytest.fixture(scope="module")
def sequences() -> Dataset:
    return load_dataset("sequences")


def test_sequence_label_is_the_unique_most_frequent_marker(sequences: Dataset) -> None:
    for x, y in ((sequences.x_train, sequences.y_train), (sequences.x_test, sequences.y_test)):
        counts = torch.stack([(x == m).sum(dim=1) for m in range(4)], dim=1)
        top = counts.max(dim=1)
        assert torch.equal(top.indices, y)
        assert bool(((counts == top.values[:, None]).sum(dim=1) == 1).all())  # unique winner
        assert int(top.values.min()) >= 2
        # The rule is not trivial: often the runner-up trails by exactly one.
        runner_up = torch.sort(counts, dim=1).values[:, -2]
        assert float((top.values - runner_up == 1).double().mean()) > 0.3


def test_sequences_are_balanced_and_use_every_filler(sequences: Dataset) -> None:
    assert torch.bincount(sequences.y_train).tolist() == [1000] * 4
    assert torch.bincount(sequences.y_test).tolist() == [250] * 4
    assert set(torch.unique(sequences.x_train).tolist()) == set(range(16))
    assert sequences.vocabulary is not None
    assert sequences.vocabulary[:5] == ("A", "B", "C", "D", "a")


def test_sequences_are_deterministic_given_the_seed(sequences: Dataset) -> None:
    assert torch.equal(load_dataset("sequences", seed=0).x_test, sequences.x_test)
    assert not torch.equal(load_dataset("sequences", seed=5).x_test, sequences.x_test)
