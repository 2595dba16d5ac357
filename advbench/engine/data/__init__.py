"""MNIST in the original IDX files, shipped inside the package and checked on every load.

Semantics follow TensorFlow's classic `input_data.read_data_sets` (which the tutorials use):
validation = the first 5,000 training images, train = the other 55,000, test = the 10,000
t10k images, pixels as float32 in [0, 1], flattened to 784-vectors, optional one-hot labels,
and `next_batch` that reshuffles at every epoch — but with a seed, so batches are reproducible.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from advbench.errors import DataError

ENV_DIR = "ADVBENCH_MNIST_DIR"
VALIDATION_SIZE = 5000
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049

# file name -> (number of items, MD5 of the uncompressed content); the published checksums.
FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte.gz": (60000, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte.gz": (60000, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte.gz": (10000, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte.gz": (10000, "27ae3e4e09519cfbb04c329615203637"),
}


def default_dir() -> Path:
    """The directory MNIST is read from: $ADVBENCH_MNIST_DIR, else the copy in the package."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    return Path(str(resources.files("advbench.engine.data") / "mnist"))


def _read_checked(path: Path) -> bytes:
    """Uncompressed bytes of one IDX file, after checking they are the published ones."""
    name = path.name
    if name not in FILES:
        raise DataError(f"{path}: not one of the four MNIST files")
    if not path.is_file():
        raise DataError(f"{path}: MNIST file not found")
    count, md5 = FILES[name]
    image = "images" in name
    header = 16 if image else 8
    expected_len = header + count * (784 if image else 1)
    try:
        with gzip.open(path, "rb") as fh:
            # One byte past the published size is enough to know it is not the published
            # file: a gzip bomb is never decompressed further than that.
            raw = fh.read(expected_len + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupted or truncated gzip file ({exc})") from None
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, no complete header)")
    magic, n = struct.unpack(">II", raw[:8])
    want_magic = IMAGE_MAGIC if image else LABEL_MAGIC
    if magic != want_magic:
        raise DataError(f"{path}: bad IDX magic number {magic} (expected {want_magic})")
    if n != count:
        raise DataError(f"{path}: header says {n} items, expected {count}")
    if image:
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != (28, 28):
            raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28")
    if len(raw) != expected_len:
        size = f"more than {expected_len}" if len(raw) > expected_len else str(len(raw))
        raise DataError(f"{path}: {size} bytes uncompressed, expected {expected_len}")
    digest = hashlib.md5(raw).hexdigest()
    if digest != md5:
        raise DataError(f"{path}: MD5 {digest} does not match the published {md5}")
    return raw


def read_images(path: Path) -> np.ndarray:
    """uint8 array [n, 784] from a checked IDX image file."""
    raw = _read_checked(path)
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)


def read_labels(path: Path) -> np.ndarray:
    """uint8 array [n] of digits from a checked IDX label file."""
    raw = _read_checked(path)
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if labels.max() > 9:
        raise DataError(f"{path}: label {int(labels.max())} outside 0..9")
    return labels


def checksum() -> str:
    """Identity of the data a result was computed on: hash of the four published MD5s."""
    joined = ",".join(f"{name}:{md5}" for name, (_, md5) in sorted(FILES.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


class DataSet:
    """One split: images, labels and a seeded, epoch-reshuffling `next_batch`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, one_hot: bool, seed: int) -> None:
        self.images = images.astype(np.float32) / np.float32(255.0)
        self.labels_int = labels.astype(np.int64)
        self.labels = dense_to_one_hot(labels) if one_hot else self.labels_int
        self.num_examples = len(images)
        self._rng = np.random.RandomState(seed)
        self._order = np.arange(self.num_examples)
        self._index = 0
        self.epochs_completed = 0

    def next_batch(self, batch_size: int, shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The next `batch_size` examples, as TF's classic DataSet.next_batch returns them.

        The order is shuffled before the first epoch and again at every epoch boundary; a batch
        that crosses the boundary takes the rest of the old epoch plus the start of the new one.
        """
        take = self.next_indices(batch_size, shuffle)
        return self.images[take], self.labels[take]

    def next_indices(self, batch_size: int, shuffle: bool = True) -> np.ndarray:
        """Indices of the examples `next_batch` returns next (it advances the same state)."""
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if self._index == 0 and self.epochs_completed == 0 and shuffle:
            self._rng.shuffle(self._order)
        if self._index + batch_size > self.num_examples:
            rest = self._order[self._index :].copy()
            self.epochs_completed += 1
            if shuffle:
                self._rng.shuffle(self._order)
            self._index = batch_size - len(rest)
            return np.concatenate([rest, self._order[: self._index]])
        take = self._order[self._index : self._index + batch_size].copy()
        self._index += batch_size
        return take


@dataclass
class DataSets:
    """The three splits, like `read_data_sets` returns them."""

    train: DataSet
    validation: DataSet
    test: DataSet
    directory: Path


def dense_to_one_hot(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """float32 one-hot rows for integer labels."""
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


@lru_cache(maxsize=4)
def _raw(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    folder = Path(directory)
    images = read_images(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_labels(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return images, labels


def read_data_sets(
    directory: str | os.PathLike[str] | None = None,
    one_hot: bool = False,
    seed: int = 0,
    validation_size: int = VALIDATION_SIZE,
) -> DataSets:
    """All three splits; `seed` fixes the shuffling of `next_batch` on train and validation."""
    folder = Path(directory) if directory else default_dir()
    train_x, train_y = _raw(str(folder), "train")
    test_x, test_y = _raw(str(folder), "test")
    v = validation_size
    return DataSets(
        train=DataSet(train_x[v:], train_y[v:], one_hot, seed),
        validation=DataSet(train_x[:v], train_y[:v], one_hot, seed + 1),
        test=DataSet(test_x, test_y, one_hot, seed + 2),
        directory=folder,
    )


def read_test_set(
    directory: str | os.PathLike[str] | None = None, one_hot: bool = False
) -> DataSet:
    """Only the test split (what a benchmark run needs), without reading the training files."""
    folder = Path(directory) if directory else default_dir()
    images, labels = _raw(str(folder), "test")
    return DataSet(images, labels, one_hot, 0)
