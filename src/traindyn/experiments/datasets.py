"""Datasets and fixed probe sets, registered by name.

Two kinds live in :data:`DATASETS`:

- **Bundled** datasets need no file and no network: they ship with a dependency
  (scikit-learn's ``digits``) or are generated locally from a seed (``mnist1d``,
  modular arithmetic, ``sequences``), so a run on a machine with no network gives the
  same tensors as everywhere else.
- **Real** datasets (``mnist``, ``fashion_mnist``, ``qmnist``, ``ag_news``,
  ``ag_news_bow``) are read from files under a data root, in the on-disk formats of
  torchvision and Hugging Face ``datasets``. traindyn never downloads them itself; the
  error raised when they are absent says which package fetches them
  (``pip install 'traindyn[real-vision]'`` or ``'traindyn[real-text]'``) and which
  directory is expected. The one exception is ``ag_news`` with no local copy, which goes
  through Hugging Face's own cache (and network, when there is one).

Inputs are either continuous (float32 images and signals, standardised) or tokens
(int64 ids below :attr:`Dataset.vocab_size`, for embedding layers); see
:attr:`Dataset.input_kind`. Adding a dataset is adding an entry to :data:`DATASETS`.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib
import random
import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Literal, TypeAlias

import numpy as np
import torch
from numpy.typing import NDArray

from traindyn.exceptions import ConfigError

__all__ = [
    "DATASETS",
    "INPUT_KINDS",
    "Dataset",
    "DatasetSpec",
    "InputKind",
    "default_data_root",
    "load_dataset",
    "probe_description",
    "probe_split",
    "read_idx",
    "shuffle_train_labels",
]

InputKind: TypeAlias = Literal["continuous", "tokens"]
"""``"continuous"``: float inputs; ``"tokens"``: int64 ids for an embedding lookup."""

INPUT_KINDS: tuple[InputKind, ...] = ("continuous", "tokens")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split held in memory as torch tensors.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"digits"``.
    x_train : Tensor of shape (n_train, *input_shape)
        Training inputs: float32, standardised, when ``input_kind == "continuous"``;
        int64 token ids in ``0 .. vocab_size - 1`` when ``input_kind == "tokens"``.
    y_train : Tensor of shape (n_train,), int64
        Training labels in ``0 .. n_classes - 1``.
    x_test : Tensor of shape (n_test, *input_shape)
        Test inputs; continuous ones are standardised with the *training* mean and
        standard deviation.
    y_test : Tensor of shape (n_test,), int64
        Test labels.
    n_classes : int
        Number of classes.
    input_shape : tuple of int
        Shape of one input without the batch dimension: ``(C, L)`` or ``(C, H, W)`` for
        continuous inputs, ``(T,)`` (sequence length) for tokens.
    description : str
        One line for manifests and reports.
    seed : int
        Seed that fixed the split or the generator. Real datasets keep their official
        split, so for them it only labels the run.
    input_kind : {"continuous", "tokens"}, default="continuous"
        What the inputs are; a model for tokens needs ``vocab_size`` (see
        :func:`traindyn.experiments.build_model`).
    vocab_size : int or None, default=None
        Number of distinct token ids (the embedding table's size) for tokens, else None.
    vocabulary : tuple of str or None, default=None
        ``vocabulary[i]`` is the text of token ``i``, ``len(vocabulary) == vocab_size``;
        None for continuous inputs.
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
    input_kind: InputKind = "continuous"
    vocab_size: int | None = None
    vocabulary: tuple[str, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Splits:
    """What a builder returns: numpy splits, inputs shaped (n, *input_shape), raw scale."""

    x_train: NDArray[Any]
    y_train: NDArray[Any]
    x_test: NDArray[Any]
    y_test: NDArray[Any]
    vocabulary: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: what a dataset looks like before it is loaded.

    Lets suites check that a model fits a dataset without generating or reading data.

    Parameters
    ----------
    description : str
        One line, copied into :attr:`Dataset.description`.
    input_shape : tuple of int
        Shape of one input without the batch dimension.
    n_classes : int
        Number of classes.
    n_train, n_test : int
        Split sizes (for real datasets, those of the official files).
    build : callable
        ``build(seed, root)``: the private builder that generates or reads the splits;
        ``root`` is the data root, ignored by bundled datasets.
    input_kind : {"continuous", "tokens"}, default="continuous"
        See :attr:`Dataset.input_kind`.
    vocab_size : int or None, default=None
        See :attr:`Dataset.vocab_size`; fixed per name, so a model can be built before
        the data is read.
    bundled : bool, default=True
        False for datasets read from files under a data root (``root=`` of
        :func:`load_dataset`), which may be absent on a given machine.
    """

    description: str
    input_shape: tuple[int, ...]
    n_classes: int
    n_train: int
    n_test: int
    build: Callable[[int, Path], _Splits] = field(repr=False)
    input_kind: InputKind = "continuous"
    vocab_size: int | None = None
    bundled: bool = True


# ------------------------------------------------------------------------ bundled data


def _build_digits(seed: int, root: Path) -> _Splits:
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
    return _Splits(x_train, y_train, x_test, y_test)


def _build_mnist1d(seed: int, root: Path) -> _Splits:
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
    return _Splits(x_train, y_train, x_test, y_test)


ModularOp: TypeAlias = Literal["add", "sub", "mul", "div"]

# p = 97 and a 30% training fraction: the setting in which Power et al. (2022) first
# saw grokking; at 30% a small transformer memorises long before it generalises.
_MODULUS = 97
_TRAIN_FRACTION = 0.3


def _modular_table(p: int, op: ModularOp) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every equation ``a op b = c`` as token rows ``[a, b, p]`` and labels ``c``."""
    a, b = (g.ravel() for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op == "div":
        # Division by zero is undefined; a / b = a * b^(p-2) mod p (Fermat, p prime).
        a, b = a[b > 0], b[b > 0]
        inverse = np.array([pow(int(v), p - 2, p) for v in range(p)], dtype=np.int64)
        y = (a * inverse[b]) % p
    elif op == "add":
        y = (a + b) % p
    elif op == "sub":
        y = (a - b) % p
    else:
        y = (a * b) % p
    x = np.stack([a, b, np.full_like(a, p)], axis=1)
    return x.astype(np.int64), y.astype(np.int64)


def _class_train_counts(y: NDArray[np.int64], n_classes: int, fraction: float) -> NDArray[Any]:
    return np.round(fraction * np.bincount(y, minlength=n_classes)).astype(np.int64)


def _modular_sizes(p: int, op: ModularOp, fraction: float) -> tuple[int, int]:
    _, y = _modular_table(p, op)
    n_train = int(_class_train_counts(y, p, fraction).sum())
    return n_train, len(y) - n_train


def _build_modular(
    seed: int, root: Path, *, p: int, op: ModularOp, fraction: float, shuffle_labels: bool
) -> _Splits:
    x, y = _modular_table(p, op)
    rng = np.random.default_rng(seed)
    # Stratified by answer, so that every residue is in both splits in the same
    # proportion and the test split holds ~(1 - fraction) * p examples of each class
    # for class-balanced probes; within a class the split is uniformly random.
    train = np.zeros(len(y), dtype=bool)
    for c, k in enumerate(_class_train_counts(y, p, fraction)):
        members = np.flatnonzero(y == c)
        train[rng.permutation(members)[:k]] = True
    y_train = y[train]
    if shuffle_labels:
        # Drawn after the split from the same stream, so the control has exactly the
        # inputs and split of its unshuffled twin; only the train answers move.
        y_train = rng.permutation(y_train)
    vocabulary = (*(str(i) for i in range(p)), "=")
    return _Splits(x[train], y_train, x[~train], y[~train], vocabulary)


# Majority-marker sequences: 4 marker tokens (the classes) and 12 filler tokens.
_SEQ_LENGTH = 16
_SEQ_MARKERS = 4
_SEQ_VOCAB = 16
_SEQ_TRAIN_PER_CLASS = 1000
_SEQ_TEST_PER_CLASS = 250


def _majority_sequences(
    rng: np.random.Generator, per_class: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``per_class`` sequences per class, shuffled; the class is the most frequent marker."""
    k, length = _SEQ_MARKERS, _SEQ_LENGTH
    y = rng.permutation(np.repeat(np.arange(k), per_class))
    n = len(y)
    # The winner occurs 2..4 times, each other marker 0..winner-1 times, so the winner is
    # unique, a runner-up often trails by one, and at most 4 + 3 * 3 = 13 of the 16
    # positions are markers: the class needs counting, not spotting one token.
    top = rng.integers(2, 5, size=n)
    counts = rng.integers(0, top[:, None], size=(n, k))
    counts[np.arange(n), y] = top
    # Marker m fills positions cum[m-1] .. cum[m]-1 of the unshuffled row, fillers the rest.
    cum = counts.cumsum(axis=1)
    slot = (np.arange(length)[None, :, None] >= cum[:, None, :]).sum(axis=2)
    fillers = rng.integers(k, _SEQ_VOCAB, size=(n, length))
    rows = np.where(slot < k, slot, fillers)
    order = np.argsort(rng.random((n, length)), axis=1)
    return np.take_along_axis(rows, order, axis=1).astype(np.int64), y.astype(np.int64)


def _build_sequences(seed: int, root: Path) -> _Splits:
    rng = np.random.default_rng(seed)
    x_train, y_train = _majority_sequences(rng, _SEQ_TRAIN_PER_CLASS)
    x_test, y_test = _majority_sequences(rng, _SEQ_TEST_PER_CLASS)
    markers = tuple("ABCD")
    fillers = tuple("abcdefghijkl")
    return _Splits(x_train, y_train, x_test, y_test, (*markers, *fillers))


# --------------------------------------------------------------------------- real data


def default_data_root() -> Path:
    """Where real datasets are looked for when ``root`` is not given: ``~/.cache/traindyn``.

    Examples
    --------
    >>> default_data_root().parts[-2:]
    ('.cache', 'traindyn')
    """
    return Path.home() / ".cache" / "traindyn"


def _optional_module(name: str) -> ModuleType | None:
    """Import an optional dependency, or None when it is absent or fails to import."""
    try:
        return importlib.import_module(name)
    except Exception:  # a broken install (e.g. a torch/torchvision mismatch) counts as absent
        return None


# IDX type codes (LeCun et al., "THE MNIST DATABASE", file formats section); all data
# is big-endian.
_IDX_DTYPES: Mapping[int, str] = MappingProxyType(
    {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
)


def read_idx(path: str | PathLike[str]) -> NDArray[Any]:
    """Read an IDX file, the format of MNIST, Fashion-MNIST and QMNIST.

    The header is two zero bytes, a type code (``0x08`` unsigned byte, ``0x09`` signed
    byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number
    of dimensions and one big-endian uint32 size per dimension; the data follow in
    C order, big-endian. A path ending in ``.gz`` is decompressed on the fly.

    Parameters
    ----------
    path : str or path-like
        E.g. ``root/MNIST/raw/train-images-idx3-ubyte`` or ``...-idx3-ubyte.gz``.

    Returns
    -------
    ndarray of shape given by the header
        In native byte order.

    Raises
    ------
    ConfigError
        If the file cannot be read, is not IDX, or holds fewer or more bytes than its
        header announces (a truncated download); the message names the path.

    References
    ----------
    LeCun, Cortes and Burges, "The MNIST database of handwritten digits".

    Examples
    --------
    Three unsigned-byte labels (header ``00 00 08 01``, size 3, then 7, 2, 1):

    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "labels-idx1-ubyte"
    ...     _ = path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
    ...     read_idx(path).tolist()
    [7, 2, 1]
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ConfigError(f"could not read the IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ConfigError(
            f"{path} is not an IDX file: it starts with {data[:4].hex() or 'nothing'}; "
            "expected 0000, a type code (08 for unsigned bytes) and the number of "
            "dimensions. Check the file is an uncompressed or .gz IDX file."
        )
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ConfigError(f"{path} is truncated: its header announces {ndim} dimensions.")
    shape = struct.unpack(f">{ndim}I", data[4:offset])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ConfigError(
            f"{path} holds {len(data) - offset} data bytes but its header announces shape "
            f"{shape} ({expected} bytes); the file is truncated or corrupt. Download it again."
        )
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


# Folder (= torchvision class name) and file names of (train, test) images and labels,
# as torchvision lays them out under root/<Folder>/raw/ after download=True.
_VISION_FILES: Mapping[str, tuple[tuple[str, str], tuple[str, str]]] = MappingProxyType(
    {
        "MNIST": (
            ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        ),
        "FashionMNIST": (
            ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        ),
        # QMNIST labels are (n, 8) int32: column 0 is the digit, the others NIST
        # metadata (writer, series, ...). Its "test" split is all 60000 test digits.
        "QMNIST": (
            ("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int"),
            ("qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int"),
        ),
    }
)


def _vision_split(
    folder: str, root: Path, files: dict[str, Path], *, train: bool
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Images (n, H, W) uint8 and raw labels of one split, via torchvision when possible."""
    image_name, label_name = _VISION_FILES[folder][0 if train else 1]
    tv = _optional_module("torchvision.datasets")
    # torchvision reads only the uncompressed files its download step extracts.
    if tv is not None and all(files[n].suffix != ".gz" for n in (image_name, label_name)):
        try:
            data = getattr(tv, folder)(str(root), train=train, download=False)
        except (RuntimeError, OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"torchvision could not read {folder} under {root / folder / 'raw'}: {exc}"
            ) from exc
        return np.asarray(data.data.numpy()), np.asarray(data.targets.numpy())
    return read_idx(files[image_name]), read_idx(files[label_name])


def _build_vision(seed: int, root: Path, *, name: str, folder: str) -> _Splits:
    raw = root / folder / "raw"
    files: dict[str, Path] = {}
    missing: list[str] = []
    for file_name in (*_VISION_FILES[folder][0], *_VISION_FILES[folder][1]):
        plain, packed = raw / file_name, raw / f"{file_name}.gz"
        if plain.is_file():
            files[file_name] = plain
        elif packed.is_file():
            files[file_name] = packed
        else:
            missing.append(file_name)
    if missing:
        raise ConfigError(
            f"dataset {name!r} reads the torchvision {folder} files from {raw}; missing "
            f"{', '.join(missing)} (plain or .gz). Download them once with "
            f"`pip install 'traindyn[real-vision]'` and `python -c \"import torchvision; "
            f"torchvision.datasets.{folder}({str(root)!r}, train=True, download=True); "
            f'torchvision.datasets.{folder}({str(root)!r}, train=False, download=True)"`, '
            f"or pass root= the directory that holds {folder}/raw/."
        )
    arrays: list[tuple[NDArray[Any], NDArray[Any]]] = []
    for train in (True, False):
        images, labels = _vision_split(folder, root, files, train=train)
        split = "train" if train else "test"
        if labels.ndim == 2:  # QMNIST's extended labels: the class is column 0
            labels = labels[:, 0]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ConfigError(
                f"{name} {split} images in {raw} must have shape (n, 28, 28); got "
                f"{images.shape}. Check the files are the {folder} ones."
            )
        if (
            labels.shape != (len(images),)
            or not len(labels)
            or not 0 <= labels.min() <= labels.max() <= 9
        ):
            raise ConfigError(
                f"{name} {split} labels in {raw} must be {len(images)} digits 0..9, one per "
                f"image; got shape {labels.shape}. Check the files are the {folder} ones."
            )
        # Pixel values are integers 0..255; dividing by 255 maps them onto [0, 1].
        x = images.astype(np.float32)[:, None] / np.float32(255)
        arrays.append((x, labels.astype(np.int64)))
    (x_train, y_train), (x_test, y_test) = arrays
    return _Splits(x_train, y_train, x_test, y_test)


# AG News (Zhang, Zhao and LeCun 2015): 4 topics, 120000 train / 7600 test articles.
_AG_NEWS_HUB = "fancyzhx/ag_news"
_AG_NEWS_FOLDER = "ag_news"
# Longer than a typical title plus description (a few dozen words): truncation is rare.
_AG_NEWS_LENGTH = 64
# A common vocabulary size for small AG News classifiers; rarer words become <unk>.
_AG_NEWS_WORDS = 10_000
# Bag-of-words inputs are dense, so fewer words: 120000 x 1000 float32 is 480 MB.
_AG_NEWS_BOW_WORDS = 1_000
_PAD, _UNKNOWN = "<pad>", "<unk>"
# AG News keeps HTML entities with their '&' stripped ("Street#39;s", "quot;"); they
# would otherwise become frequent junk words such as "39".
_ENTITY = re.compile(r"&?#\d+;|&?(?:quot|amp|lt|gt|nbsp);")
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    """Lowercase, drop HTML entity remnants, split into maximal runs of letters/digits."""
    return _WORD.findall(_ENTITY.sub(" ", text.lower()))


_TextSplit: TypeAlias = tuple[list[str], NDArray[np.int64]]


def _text_columns(split: Any, where: str) -> _TextSplit:
    """``text`` and ``label`` columns of a Hugging Face split or pyarrow table."""
    names = list(split.column_names)
    if "text" not in names or "label" not in names:
        raise ConfigError(
            f"AG News data in {where} must have columns 'text' and 'label'; got {names}."
        )
    columns = [split[c] for c in ("text", "label")]
    # pyarrow columns convert in one call; Hugging Face columns are plain iterables.
    texts, labels = (c.to_pylist() if hasattr(c, "to_pylist") else list(c) for c in columns)
    return [str(t) for t in texts], np.asarray(labels, dtype=np.int64)


def _read_ag_news_parquet(folder: Path) -> tuple[_TextSplit, _TextSplit] | None:
    """Parquet shards named train*/test*, in ``folder`` or ``folder/data`` (the Hub layout)."""
    for base in (folder, folder / "data"):
        train = sorted(base.glob("train*.parquet"))
        test = sorted(base.glob("test*.parquet"))
        if train and test:
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                tables = [pa.concat_tables([pq.read_table(f) for f in fs]) for fs in (train, test)]
            except (OSError, pa.ArrowException) as exc:
                raise ConfigError(
                    f"could not read the AG News parquet files in {base}: {exc}"
                ) from exc
            return _text_columns(tables[0], str(base)), _text_columns(tables[1], str(base))
    return None


def _read_ag_news_hf(folder: Path) -> tuple[_TextSplit, _TextSplit]:
    """A ``save_to_disk`` directory in ``folder``, else the Hub through the HF cache."""
    hf = _optional_module("datasets")
    local = (folder / "dataset_dict.json").is_file()
    if hf is None:
        raise ConfigError(
            f"dataset 'ag_news' found no parquet files in {folder} and needs Hugging Face "
            f"datasets to {'read the saved dataset there' if local else 'fetch it'}; "
            "install it with `pip install 'traindyn[real-text]'`, or put the train/test "
            f"parquet files of the Hub dataset {_AG_NEWS_HUB} in {folder}."
        )
    try:
        data = hf.load_from_disk(str(folder)) if local else hf.load_dataset(_AG_NEWS_HUB)
    except Exception as exc:  # network, cache and format errors come in many types
        source = f"the saved dataset in {folder}" if local else f"{_AG_NEWS_HUB!r} from the Hub"
        raise ConfigError(
            f"could not load {source}: {type(exc).__name__}: {exc}. With no network, put "
            f"the dataset in {folder}: the train/test parquet files of {_AG_NEWS_HUB}, or "
            "a DatasetDict saved with save_to_disk; or pass root= the directory holding "
            f"{_AG_NEWS_FOLDER}/."
        ) from exc
    if "train" not in data or "test" not in data:
        raise ConfigError(
            f"AG News data from {folder if local else _AG_NEWS_HUB} must have 'train' and "
            f"'test' splits; got {sorted(data)}."
        )
    where = str(folder) if local else _AG_NEWS_HUB
    return _text_columns(data["train"], where), _text_columns(data["test"], where)


@functools.lru_cache(maxsize=2)
def _ag_news_words(
    root: Path,
) -> tuple[list[list[str]], NDArray[Any], list[list[str]], NDArray[Any]]:
    """Guts of the AG News builders: read once per root, split texts into words."""
    folder = root / _AG_NEWS_FOLDER
    splits = _read_ag_news_parquet(folder) if folder.is_dir() else None
    if splits is None:
        splits = _read_ag_news_hf(folder)
    (train_texts, y_train), (test_texts, y_test) = splits
    for labels, split in ((y_train, "train"), (y_test, "test")):
        if len(labels) == 0 or labels.min() < 0 or labels.max() > 3:
            raise ConfigError(
                f"AG News {split} labels must be 0..3 (World, Sports, Business, Sci/Tech) "
                f"and non-empty; got {len(labels)} labels in {folder}."
            )
    return [_words(t) for t in train_texts], y_train, [_words(t) for t in test_texts], y_test


def _word_ids(train_words: Sequence[list[str]], n_words: int) -> dict[str, int]:
    """The ``n_words`` most frequent training words, ids from 2 (0 is padding, 1 unknown)."""
    counts = Counter(word for words in train_words for word in words)
    # Ties broken alphabetically so that the vocabulary never depends on input order.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n_words]
    return {word: i + 2 for i, (word, _) in enumerate(ranked)}


def _vocabulary(ids: Mapping[str, int], size: int) -> tuple[str, ...]:
    words = [_PAD, _UNKNOWN, *ids]
    # Ids the training split never filled (a tiny corpus) keep a placeholder.
    return (*words, *(f"<unused-{i}>" for i in range(len(words), size)))


def _build_ag_news(seed: int, root: Path) -> _Splits:
    train_words, y_train, test_words, y_test = _ag_news_words(root)
    ids = _word_ids(train_words, _AG_NEWS_WORDS)

    def encode(docs: Sequence[list[str]]) -> NDArray[np.int64]:
        out = np.zeros((len(docs), _AG_NEWS_LENGTH), dtype=np.int64)  # 0 is padding
        for row, words in zip(out, docs, strict=True):
            kept = [ids.get(w, 1) for w in words[:_AG_NEWS_LENGTH]]
            row[: len(kept)] = kept
        return out

    vocabulary = _vocabulary(ids, _AG_NEWS_WORDS + 2)
    return _Splits(encode(train_words), y_train, encode(test_words), y_test, vocabulary)


def _build_ag_news_bow(seed: int, root: Path) -> _Splits:
    train_words, y_train, test_words, y_test = _ag_news_words(root)
    ids = _word_ids(train_words, _AG_NEWS_BOW_WORDS)

    def encode(docs: Sequence[list[str]]) -> NDArray[np.float32]:
        # Presence, not counts: the whole article, one column per vocabulary word.
        out = np.zeros((len(docs), 1, _AG_NEWS_BOW_WORDS), dtype=np.float32)
        for row, words in zip(out, docs, strict=True):
            columns = [ids[w] - 2 for w in set(words) if w in ids]
            row[0, columns] = 1.0
        return out

    return _Splits(encode(train_words), y_train, encode(test_words), y_test)


# ---------------------------------------------------------------------------- registry


def _modular_spec(
    op: ModularOp,
    *,
    shuffled: bool = False,
    p: int = _MODULUS,
    fraction: float = _TRAIN_FRACTION,
) -> DatasetSpec:
    n_train, n_test = _modular_sizes(p, op, fraction)
    symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[op]
    pairs = "b != 0" if op == "div" else "all pairs"
    control = (
        "; TRAIN LABELS RANDOMLY PERMUTED (the control that must not generalise)"
        if shuffled
        else ""
    )
    return DatasetSpec(
        description=(
            f"modular arithmetic (Power et al. 2022): (a {symbol} b) mod {p} from tokens "
            f"[a, b, =], {pairs}, {fraction:.0%} train split stratified by answer{control}"
        ),
        input_shape=(3,),
        n_classes=p,
        n_train=n_train,
        n_test=n_test,
        build=functools.partial(
            _build_modular, p=p, op=op, fraction=fraction, shuffle_labels=shuffled
        ),
        input_kind="tokens",
        vocab_size=p + 1,
    )


def _vision_spec(name: str, folder: str, what: str, n_test: int) -> DatasetSpec:
    return DatasetSpec(
        description=(
            f"{what}: 28x28 greyscale images, 10 classes, official split, read from the "
            f"torchvision files in <root>/{folder}/raw"
        ),
        input_shape=(1, 28, 28),
        n_classes=10,
        n_train=60_000,
        n_test=n_test,
        build=functools.partial(_build_vision, name=name, folder=folder),
        bundled=False,
    )


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
        "modular_addition": _modular_spec("add"),
        "modular_addition_shuffled": _modular_spec("add", shuffled=True),
        # p = 53 with half the pairs for training groks in ~5k full-batch steps (a few
        # minutes on one CPU core), where p = 97 at 30% takes tens of thousands
        "grokking_addition": _modular_spec("add", p=53, fraction=0.5),
        "grokking_addition_shuffled": _modular_spec("add", shuffled=True, p=53, fraction=0.5),
        # p = 31 (496 training pairs): a full-batch step costs ~40% of p = 53's, and with
        # AdamW at lr 5e-3 the test set is solved a few hundred steps after memorisation
        # (the built-in suite "grokking-fast", a default-suite test)
        "grokking_addition_p31": _modular_spec("add", p=31, fraction=0.5),
        "grokking_addition_p31_shuffled": _modular_spec("add", shuffled=True, p=31, fraction=0.5),
        "modular_subtraction": _modular_spec("sub"),
        "modular_multiplication": _modular_spec("mul"),
        "modular_division": _modular_spec("div"),
        "sequences": DatasetSpec(
            description=(
                f"majority marker: {_SEQ_LENGTH}-token sequences over {_SEQ_VOCAB} symbols; "
                f"the class is the marker (of {_SEQ_MARKERS}) that occurs most often"
            ),
            input_shape=(_SEQ_LENGTH,),
            n_classes=_SEQ_MARKERS,
            n_train=_SEQ_MARKERS * _SEQ_TRAIN_PER_CLASS,
            n_test=_SEQ_MARKERS * _SEQ_TEST_PER_CLASS,
            build=_build_sequences,
            input_kind="tokens",
            vocab_size=_SEQ_VOCAB,
        ),
        "mnist": _vision_spec("mnist", "MNIST", "MNIST (LeCun et al. 1998)", 10_000),
        "fashion_mnist": _vision_spec(
            "fashion_mnist", "FashionMNIST", "Fashion-MNIST (Xiao et al. 2017)", 10_000
        ),
        "qmnist": _vision_spec(
            "qmnist", "QMNIST", "QMNIST (Yadav and Bottou 2019), all 60000 test digits", 60_000
        ),
        "ag_news": DatasetSpec(
            description=(
                f"AG News (Zhang et al. 2015): 4 topics; the first {_AG_NEWS_LENGTH} word "
                f"ids of each article (0 pad, 1 unknown, then the {_AG_NEWS_WORDS} most "
                "frequent training words)"
            ),
            input_shape=(_AG_NEWS_LENGTH,),
            n_classes=4,
            n_train=120_000,
            n_test=7_600,
            build=_build_ag_news,
            input_kind="tokens",
            vocab_size=_AG_NEWS_WORDS + 2,
            bundled=False,
        ),
        "ag_news_bow": DatasetSpec(
            description=(
                "AG News (Zhang et al. 2015): 4 topics; bag of words, presence of each of "
                f"the {_AG_NEWS_BOW_WORDS} most frequent training words"
            ),
            input_shape=(1, _AG_NEWS_BOW_WORDS),
            n_classes=4,
            n_train=120_000,
            n_test=7_600,
            build=_build_ag_news_bow,
            bundled=False,
        ),
    }
)
"""Registry of datasets, keyed by the name given to :func:`load_dataset`."""


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


def _check_root(root: Any) -> Path:
    if root is None:
        return default_data_root()
    if not isinstance(root, str | PathLike):
        raise ConfigError(f"root must be a directory path or None; got {root!r}.")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"root must be a directory; got the file {str(path)!r}.")
    return path.absolute()


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, seed: int, root: Path) -> Dataset:
    spec = DATASETS[name]
    splits = spec.build(seed, root)
    if spec.input_kind == "tokens":
        x_train = torch.from_numpy(splits.x_train.astype(np.int64))
        x_test = torch.from_numpy(splits.x_test.astype(np.int64))
    else:
        # One scalar mean and standard deviation from the training split: keeps the
        # relative intensities within an image (per-pixel scaling would blow up the
        # near-constant border pixels of digits) and leaks nothing from the test split.
        mean = float(splits.x_train.mean(dtype=np.float64))
        std = float(splits.x_train.std(dtype=np.float64))
        x_train = torch.from_numpy(((splits.x_train - mean) / std).astype(np.float32, copy=False))
        x_test = torch.from_numpy(((splits.x_test - mean) / std).astype(np.float32, copy=False))
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=torch.from_numpy(splits.y_train.astype(np.int64)),
        x_test=x_test,
        y_test=torch.from_numpy(splits.y_test.astype(np.int64)),
        n_classes=spec.n_classes,
        input_shape=spec.input_shape,
        description=spec.description,
        seed=seed,
        input_kind=spec.input_kind,
        vocab_size=spec.vocab_size,
        vocabulary=splits.vocabulary,
    )


def load_dataset(name: str, *, seed: int = 0, root: str | PathLike[str] | None = None) -> Dataset:
    """Load a registered dataset by name.

    Continuous inputs are float32, standardised with one mean and standard deviation
    computed on the training split; token inputs are int64 ids; labels are int64. The
    result of each ``(name, seed, root)`` is cached in-process (``mnist1d`` takes about a
    second to generate); every call returns fresh tensors, so modifying them in place
    cannot corrupt later calls.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`. Bundled (no file, no network):

        - ``"digits"``: 1797 images (1, 8, 8), stratified 80/20 split drawn with ``seed``.
        - ``"mnist1d"``: 4000 train / 1000 test signals (1, 40), generated from ``seed``.
        - ``"modular_addition"``: tokens ``[a, b, =]`` (``a, b`` in ``0..96``, ``=`` is
          id 97, ``vocab_size`` 98) labelled ``(a + b) mod 97``; all 9409 pairs, 30% in
          train, split per answer with ``seed`` (2813 train / 6596 test, 68 test
          examples of each of the 97 classes). ``"modular_subtraction"``,
          ``"modular_multiplication"`` and ``"modular_division"`` (``b != 0``) likewise.
        - ``"modular_addition_shuffled"``: the same inputs and split, with the training
          labels randomly permuted (test labels are true): the control that must not
          grok.
        - ``"sequences"``: 16 tokens over 16 symbols (``vocab_size`` 16), 4 balanced
          classes; the class is the marker token (ids 0-3) that occurs most often.

        Real, read from files under ``root`` (never downloaded by traindyn):

        - ``"mnist"``, ``"fashion_mnist"``, ``"qmnist"``: images (1, 28, 28) from the
          torchvision layout ``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/``,
          ``<root>/QMNIST/raw/`` (IDX files, plain or ``.gz``), read with torchvision
          when it is installed and the files are uncompressed, else with
          :func:`read_idx`. Official splits.
        - ``"ag_news"``: the first 64 word ids of each article (``vocab_size`` 10002: 0
          padding, 1 unknown word, 2.. the 10000 most frequent training words, ties
          alphabetical). Text is lowercased, HTML entity remnants (``#39;``) dropped,
          and split into runs of letters and digits. Read from ``<root>/ag_news/``:
          parquet files ``train*.parquet`` / ``test*.parquet`` (there or in ``data/``,
          the layout of the Hub dataset ``fancyzhx/ag_news``; columns ``text``,
          ``label``), else a ``DatasetDict.save_to_disk`` directory, else
          ``datasets.load_dataset("fancyzhx/ag_news")`` (Hugging Face's cache, or the
          network).
        - ``"ag_news_bow"``: the same articles as a (1, 1000) bag of words: 1 where one
          of the 1000 most frequent training words occurs, then standardised.
    seed : int, default=0
        Seed of the split or the generator (real datasets keep their official split).
        Python's and numpy's global random states are left unchanged.
    root : str, path or None, default=None
        Data root of the real datasets; None means :func:`default_data_root`. Ignored
        by bundled datasets.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        If ``name`` is not registered (the message lists the valid names), ``seed`` is
        not an integer in [0, 2**32), or a real dataset's files are absent or unreadable
        (the message names the directory expected and the package that downloads them:
        ``pip install 'traindyn[real-vision]'`` or ``'traindyn[real-text]'``).

    Examples
    --------
    >>> ds = load_dataset("digits")
    >>> tuple(ds.x_train.shape), tuple(ds.x_test.shape), ds.n_classes
    ((1437, 1, 8, 8), (360, 1, 8, 8), 10)
    >>> ds.x_train.dtype, ds.y_train.dtype
    (torch.float32, torch.int64)
    >>> grok = load_dataset("modular_addition")
    >>> grok.input_kind, grok.vocab_size, tuple(grok.x_train.shape), grok.x_train.dtype
    ('tokens', 98, (2813, 3), torch.int64)
    >>> bool(((grok.x_train[:, 0] + grok.x_train[:, 1]) % 97 == grok.y_train).all())
    True
    """
    spec = _check_name(name)
    seed = _check_seed(seed)
    path = _check_root(root)
    if spec.bundled:  # they ignore the root: one cache entry whatever it is
        path = Path()
    cached = _load_cached(name, seed, path)
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


def shuffle_train_labels(dataset: Dataset, *, seed: int = 0) -> Dataset:
    """The dataset with its training labels permuted once: the label-shuffled control.

    A random permutation of ``y_train`` (a private generator seeded with ``seed``)
    breaks every link between inputs and labels while keeping the class frequencies,
    so a model can only memorise. The inputs, the split and the test labels are
    unchanged, so a probe drawn from the test split carries the *true* labels: probe
    accuracy of a model trained on the result stays at chance (see
    ``ExperimentSpec.shuffle_labels``). The global random states are not used.

    Parameters
    ----------
    dataset : Dataset
        From :func:`load_dataset`.
    seed : int, default=0
        Seed of the permutation (the suite uses the experiment's ``data_seed``).

    Returns
    -------
    Dataset
        A copy with the permuted ``y_train``; ``description`` says it is shuffled.

    Raises
    ------
    ConfigError
        If ``seed`` is not an integer in [0, 2**32).

    Examples
    --------
    >>> ds = load_dataset("digits")
    >>> sh = shuffle_train_labels(ds, seed=0)
    >>> bool(torch.equal(sh.x_train, ds.x_train)), bool(torch.equal(sh.y_test, ds.y_test))
    (True, True)
    >>> bool(torch.equal(torch.bincount(sh.y_train), torch.bincount(ds.y_train)))
    True
    >>> round(float((sh.y_train == ds.y_train).float().mean()), 2)  # about 1 / 10 by chance
    0.1
    """
    seed = _check_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(dataset.y_train.shape[0], generator=generator)
    return dataclasses.replace(
        dataset,
        y_train=dataset.y_train[order].clone(),
        description=f"{dataset.description} (training labels shuffled, seed {seed})",
    )


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
