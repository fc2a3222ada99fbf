"""Real datasets, read offline from tiny files written here in the libraries' formats."""

from __future__ import annotations

import gzip
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from traindyn.exceptions import ConfigError
from traindyn.experiments import (
    DATASETS,
    Dataset,
    build_model,
    default_data_root,
    load_dataset,
    probe_description,
    probe_split,
    read_idx,
)

# ------------------------------------------------------------------------------- IDX

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def write_idx(path: Path, array: np.ndarray[Any, Any], *, packed: bool = False) -> Path:
    """Write ``array`` as an IDX file (big-endian), gzipped when ``packed``."""
    code = _CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if packed:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32])
@pytest.mark.parametrize("packed", [False, True])
def test_read_idx_round_trips(tmp_path: Path, dtype: type, packed: bool) -> None:
    rng = np.random.default_rng(0)
    array = (
        rng.integers(-100, 100, size=(4, 3, 5))
        if dtype != np.uint8
        else rng.integers(0, 256, size=(4, 3, 5))
    ).astype(dtype)
    path = write_idx(tmp_path / "a-idx3", array, packed=packed)
    read = read_idx(path)
    assert read.dtype == np.dtype(dtype)
    assert read.dtype.isnative
    np.testing.assert_array_equal(read, array)


def test_read_idx_known_bytes(tmp_path: Path) -> None:
    # Two int32 labels 1 and 258, big-endian: what QMNIST's idx2-int files hold.
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 2]))
    assert read_idx(path).tolist() == [[1, 258]]


def test_read_idx_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(ConfigError, match=r"could not read the IDX file .*nope-idx1-ubyte"):
        read_idx(missing)
    text = tmp_path / "text"
    text.write_text("hello world")
    with pytest.raises(ConfigError, match=r"text is not an IDX file: it starts with 68656c6c"):
        read_idx(text)
    truncated = write_idx(tmp_path / "cut", np.zeros((3, 4), dtype=np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:-2])
    with pytest.raises(ConfigError, match=r"holds 10 data bytes but its header announces shape"):
        read_idx(truncated)
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match="could not read the IDX file"):
        read_idx(bad_gz)


# ------------------------------------------------------------------- MNIST family files

N_TRAIN, N_TEST = 20, 10
# Name -> (folder, train image, train label, test image, test label file names).
VISION = {
    "mnist": (
        "MNIST",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
    "fashion_mnist": (
        "FashionMNIST",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
    "qmnist": (
        "QMNIST",
        "qmnist-train-images-idx3-ubyte",
        "qmnist-train-labels-idx2-int",
        "qmnist-test-images-idx3-ubyte",
        "qmnist-test-labels-idx2-int",
    ),
}


def write_vision(root: Path, name: str, *, packed: bool, seed: int = 0) -> dict[str, Any]:
    """Tiny train/test IDX files in torchvision's layout; returns what was written."""
    folder, train_img, train_lab, test_img, test_lab = VISION[name]
    raw = root / folder / "raw"
    rng = np.random.default_rng(seed)
    images = {
        s: rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
        for s, n in (("train", N_TRAIN), ("test", N_TEST))
    }
    labels = {"train": np.arange(N_TRAIN) % 10, "test": rng.permutation(10)}
    for split, img_name, lab_name in (
        ("train", train_img, train_lab),
        ("test", test_img, test_lab),
    ):
        write_idx(raw / img_name, images[split], packed=packed)
        if name == "qmnist":
            # (n, 8) int32: the digit, then NIST metadata that must not become the label.
            extended = np.column_stack(
                [labels[split], *(rng.integers(0, 5000, (7, len(labels[split]))))]
            )
            write_idx(raw / lab_name, extended.astype(np.int32), packed=packed)
        else:
            write_idx(raw / lab_name, labels[split].astype(np.uint8), packed=packed)
    return {"images": images, "labels": labels}


def _raw_pixels(
    ds: Dataset, written: dict[str, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Undo the standardisation with the statistics of the written training images."""
    train = written["images"]["train"].astype(np.float64) / 255
    mean, std = train.mean(), train.std()
    return (ds.x_train.double().numpy() * std + mean, ds.x_test.double().numpy() * std + mean)


@pytest.fixture
def no_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torchvision`` fail, whether or not it is installed."""
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)


@pytest.mark.parametrize("name", sorted(VISION))
@pytest.mark.parametrize("packed", [False, True])
def test_vision_files_load_with_the_idx_reader(
    tmp_path: Path, name: str, packed: bool, no_torchvision: None
) -> None:
    written = write_vision(tmp_path, name, packed=packed)
    ds = load_dataset(name, root=tmp_path, seed=3)
    assert (ds.name, ds.seed, ds.input_kind, ds.vocab_size) == (name, 3, "continuous", None)
    assert tuple(ds.x_train.shape) == (N_TRAIN, 1, 28, 28)
    assert tuple(ds.x_test.shape) == (N_TEST, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32
    assert ds.y_train.tolist() == written["labels"]["train"].tolist()
    assert ds.y_test.tolist() == written["labels"]["test"].tolist()
    train, test = _raw_pixels(ds, written)
    np.testing.assert_allclose(train[:, 0], written["images"]["train"] / 255, atol=1e-5)
    np.testing.assert_allclose(test[:, 0], written["images"]["test"] / 255, atol=1e-5)
    assert abs(float(ds.x_train.mean())) < 1e-5
    assert ds.description == DATASETS[name].description


def test_vision_probe_and_description(tmp_path: Path, no_torchvision: None) -> None:
    write_vision(tmp_path, "mnist", packed=True)
    ds = load_dataset("mnist", root=tmp_path)
    x, y = probe_split(ds, per_class=1)
    assert y.tolist() == list(range(10))
    assert tuple(x.shape) == (10, 1, 28, 28)
    with pytest.raises(ConfigError, match="per_class must be at most 1"):
        probe_split(ds, per_class=2)
    assert probe_description(ds, per_class=1)["n"] == 10


def test_vision_model_fits_the_spec(tmp_path: Path, no_torchvision: None) -> None:
    write_vision(tmp_path, "fashion_mnist", packed=True)
    ds = load_dataset("fashion_mnist", root=tmp_path)
    spec = DATASETS["fashion_mnist"]
    model = build_model("vit_shallow", input_shape=spec.input_shape, n_classes=spec.n_classes)
    assert tuple(model(ds.x_test).shape) == (N_TEST, 10)


def test_missing_vision_files_name_the_directory_and_the_extra(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_dataset("mnist", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message
    assert "pip install 'traindyn[real-vision]'" in message
    assert "torchvision.datasets.MNIST(" in message
    # One file missing: only it is named.
    write_vision(tmp_path, "qmnist", packed=False)
    (tmp_path / "QMNIST" / "raw" / "qmnist-test-labels-idx2-int").unlink()
    with pytest.raises(ConfigError, match=r"missing qmnist-test-labels-idx2-int \(plain or \.gz\)"):
        load_dataset("qmnist", root=tmp_path)


def test_vision_files_of_the_wrong_shape(tmp_path: Path, no_torchvision: None) -> None:
    write_vision(tmp_path, "mnist", packed=False)
    write_idx(
        tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte",
        np.zeros((N_TEST, 8, 8), dtype=np.uint8),
    )
    with pytest.raises(ConfigError, match=r"mnist test images in .* must have shape \(n, 28, 28\)"):
        load_dataset("mnist", root=tmp_path)


def test_default_root_is_used_when_root_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_root() == tmp_path / ".cache" / "traindyn"
    with pytest.raises(ConfigError, match=r"\.cache/traindyn/MNIST/raw"):
        load_dataset("mnist")


def test_vision_files_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tv = pytest.importorskip("torchvision.datasets")
    written = write_vision(tmp_path / "plain", "qmnist", packed=False)
    shutil.copytree(tmp_path / "plain", tmp_path / "copy")
    calls: list[bool] = []
    original = tv.QMNIST.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(kwargs.get("download", True))
        original(self, *args, **kwargs)

    monkeypatch.setattr(tv.QMNIST, "__init__", spy)
    via_torchvision = load_dataset("qmnist", root=tmp_path / "plain")
    assert calls == [False, False]  # train and test, never downloading
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    via_reader = load_dataset("qmnist", root=tmp_path / "copy")
    assert torch.equal(via_torchvision.x_train, via_reader.x_train)
    assert via_torchvision.y_test.tolist() == written["labels"]["test"].tolist()


def test_torchvision_call_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs without torchvision: a stand-in with torchvision's interface (class per
    # folder, (root, train=, download=), uint8 .data and int64 .targets tensors, QMNIST
    # targets (n, 8)) checks how the loader calls it and reads the result.
    written = write_vision(tmp_path, "qmnist", packed=False)
    calls: list[tuple[str, bool, bool]] = []

    class FakeQMNIST:
        def __init__(self, root: str, train: bool = True, download: bool = True) -> None:
            calls.append((root, train, download))
            split = "train" if train else "test"
            raw = Path(root) / "QMNIST" / "raw"
            self.data = torch.from_numpy(read_idx(raw / f"qmnist-{split}-images-idx3-ubyte"))
            labels = read_idx(raw / f"qmnist-{split}-labels-idx2-int")
            self.targets = torch.from_numpy(labels.astype(np.int64))

    fake = type(sys)("torchvision.datasets")
    fake.QMNIST = FakeQMNIST  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", type(sys)("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    ds = load_dataset("qmnist", root=tmp_path)
    assert calls == [(str(tmp_path), True, False), (str(tmp_path), False, False)]
    assert ds.y_train.tolist() == written["labels"]["train"].tolist()
    train, _ = _raw_pixels(ds, written)
    np.testing.assert_allclose(train[:, 0], written["images"]["train"] / 255, atol=1e-5)


# ---------------------------------------------------------------------------- AG News

# Word frequencies in the training texts are all different, so the vocabulary order
# (most frequent first) is known: the=6, market=5, game=4, team=3, oil=2, rare words 1.
TRAIN = [
    ("The market fell; the market rose.", 2),
    ("The game: the team won the GAME", 1),
    ("Oil market oil price#39;s drop &quot;again&quot;", 2),
    ("Team game market", 1),
    ("Peace talks", 0),
    ("New chip and team", 3),
    ("Game on the", 1),
    ("Vote market", 0),
]
TEST = [("the market and zebra", 2), ("Team game", 1), ("talks", 0), ("chip chip", 3)]


def write_parquet(folder: Path, *, hub_layout: bool = False) -> None:
    base = folder / "data" if hub_layout else folder
    base.mkdir(parents=True)
    for split, rows in (("train", TRAIN), ("test", TEST)):
        table = pa.table({"text": [t for t, _ in rows], "label": [c for _, c in rows]})
        name = f"{split}-00000-of-00001.parquet" if hub_layout else f"{split}.parquet"
        pq.write_table(table, base / name)


@pytest.mark.parametrize("hub_layout", [False, True])
def test_ag_news_parquet_token_ids(tmp_path: Path, hub_layout: bool) -> None:
    write_parquet(tmp_path / "ag_news", hub_layout=hub_layout)
    ds = load_dataset("ag_news", root=tmp_path)
    assert (ds.input_kind, ds.vocab_size, ds.input_shape, ds.n_classes) == (
        "tokens",
        10_002,
        (64,),
        4,
    )
    assert ds.x_train.dtype == torch.int64
    assert tuple(ds.x_train.shape) == (len(TRAIN), 64)
    assert ds.y_train.tolist() == [c for _, c in TRAIN]
    assert ds.y_test.tolist() == [c for _, c in TEST]
    assert ds.vocabulary is not None
    assert len(ds.vocabulary) == 10_002
    assert ds.vocabulary[:7] == ("<pad>", "<unk>", "the", "market", "game", "team", "oil")
    ids = {w: i for i, w in enumerate(ds.vocabulary)}
    # "the market and zebra": "and" is in the vocabulary, "zebra" is not (1 = unknown).
    assert ds.x_test[0, :5].tolist() == [ids["the"], ids["market"], ids["and"], 1, 0]
    assert int(ds.x_test[0, 4:].abs().sum()) == 0  # padded with 0 to 64
    # Entities are dropped ("price#39;s" -> "price", "s"; "&quot;" vanishes), case folded.
    words = [ds.vocabulary[i] for i in ds.x_train[2].tolist() if i]
    assert words == ["oil", "market", "oil", "price", "s", "drop", "again"]
    assert ds.vocabulary[ds.x_train[1, 6]] == "game"  # "GAME"


def test_ag_news_truncates_to_64_tokens(tmp_path: Path) -> None:
    folder = tmp_path / "ag_news"
    folder.mkdir()
    long_text = " ".join(f"w{i}" for i in range(100))
    for split in ("train", "test"):
        pq.write_table(
            pa.table({"text": [long_text, "short"], "label": [0, 1]}), folder / f"{split}.parquet"
        )
    ds = load_dataset("ag_news", root=tmp_path)
    assert ds.vocabulary is not None
    assert [ds.vocabulary[i] for i in ds.x_test[0].tolist()] == [f"w{i}" for i in range(64)]


def test_ag_news_bag_of_words(tmp_path: Path) -> None:
    write_parquet(tmp_path / "ag_news")
    tokens = load_dataset("ag_news", root=tmp_path)
    bow = load_dataset("ag_news_bow", root=tmp_path)
    assert (bow.input_kind, bow.input_shape, bow.vocab_size) == ("continuous", (1, 1000), None)
    assert bow.x_train.dtype == torch.float32
    assert tuple(bow.x_train.shape) == (len(TRAIN), 1, 1000)
    # Presence of word i + 2 of the token vocabulary in column i, then standardised:
    # exactly two distinct values, the higher one where the word occurs.
    levels = torch.unique(bow.x_train)
    assert len(levels) == 2
    present = bow.x_test[:, 0] == levels[1]
    assert tokens.vocabulary is not None
    for row in range(len(TEST)):
        expected = {w for w in tokens.vocabulary[2:] if w in TEST[row][0].lower().split()}
        got = {tokens.vocabulary[i + 2] for i in torch.nonzero(present[row]).flatten().tolist()}
        assert got == expected


def test_ag_news_probe_split(tmp_path: Path) -> None:
    write_parquet(tmp_path / "ag_news")
    ds = load_dataset("ag_news", root=tmp_path)
    x, y = probe_split(ds, per_class=1)
    assert y.tolist() == [0, 1, 2, 3]
    assert x.dtype == torch.int64
    assert torch.equal(x[2], ds.x_test[0])  # the only class-2 test article


def test_ag_news_bad_labels_and_columns(tmp_path: Path) -> None:
    folder = tmp_path / "ag_news"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["a"], "label": [7]}), folder / "train.parquet")
    pq.write_table(pa.table({"text": ["a"], "label": [0]}), folder / "test.parquet")
    with pytest.raises(ConfigError, match=r"AG News train labels must be 0\.\.3"):
        load_dataset("ag_news", root=tmp_path)
    other = tmp_path / "other" / "ag_news"
    other.mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.table({"sentence": ["a"], "label": [0]}), other / f"{split}.parquet")
    with pytest.raises(
        ConfigError, match=r"must have columns 'text' and 'label'; got \['sentence', 'label'\]"
    ):
        load_dataset("ag_news", root=tmp_path / "other")


def test_ag_news_without_datasets_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ConfigError) as info:
        load_dataset("ag_news", root=tmp_path)
    message = str(info.value)
    assert "pip install 'traindyn[real-text]'" in message
    assert str(tmp_path / "ag_news") in message
    assert "fancyzhx/ag_news" in message
    # Parquet files need no Hugging Face package at all.
    write_parquet(tmp_path / "ag_news")
    assert len(load_dataset("ag_news", root=tmp_path).y_train) == len(TRAIN)


def _dataset_dict(hf: Any) -> Any:
    return hf.DatasetDict(
        {
            split: hf.Dataset.from_dict(
                {"text": [t for t, _ in rows], "label": [c for _, c in rows]}
            )
            for split, rows in (("train", TRAIN), ("test", TEST))
        }
    )


def test_ag_news_from_save_to_disk(tmp_path: Path) -> None:
    hf = pytest.importorskip("datasets")
    _dataset_dict(hf).save_to_disk(str(tmp_path / "saved" / "ag_news"))
    write_parquet(tmp_path / "parquet" / "ag_news")
    saved = load_dataset("ag_news", root=tmp_path / "saved")
    parquet = load_dataset("ag_news", root=tmp_path / "parquet")
    assert torch.equal(saved.x_train, parquet.x_train)
    assert torch.equal(saved.y_test, parquet.y_test)
    assert saved.vocabulary == parquet.vocabulary


def test_ag_news_from_the_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = pytest.importorskip("datasets")
    asked: list[str] = []

    def fake_load_dataset(path: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(path)
        return _dataset_dict(hf)

    monkeypatch.setattr(hf, "load_dataset", fake_load_dataset)
    ds = load_dataset("ag_news", root=tmp_path)  # no tmp_path/ag_news: go to the Hub
    assert asked == ["fancyzhx/ag_news"]
    assert ds.y_train.tolist() == [c for _, c in TRAIN]
    assert ds.vocabulary is not None
    assert ds.vocabulary[2] == "the"


def test_ag_news_offline_without_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = pytest.importorskip("datasets")

    def offline(path: str, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError(
            "Couldn't reach 'fancyzhx/ag_news' on the Hub (LocalEntryNotFoundError)"
        )

    monkeypatch.setattr(hf, "load_dataset", offline)
    with pytest.raises(ConfigError) as info:
        load_dataset("ag_news_bow", root=tmp_path)
    message = str(info.value)
    assert "could not load 'fancyzhx/ag_news' from the Hub: ConnectionError" in message
    assert f"put the dataset in {tmp_path / 'ag_news'}" in message
