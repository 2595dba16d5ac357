"""What every dataset offers: a named set of labelled images, read on first use.

A plugin registers a `Dataset` (a name, a description and a `read` function) or a
`DatasetLoader` (a prefix such as `npz`, turning `npz:FILE` into a `Dataset`). Registering
reads nothing: the files are read, checked and cached the first time a command needs the
images, so `advbench plugins` and `--help` stay fast.

Images are stored **flattened**, float32 [n, h·w·c], each row one image in (row, column,
channel) order — NHWC flattened — with values in the dataset's value range. A network reshapes
rows to [n, h, w, c] when it needs the grid (`t.reshape(x, [-1, h, w, c])`); attacks work on
rows, so a norm or a projection is one reduction over axis 1 whatever the image shape. Labels
are int64 class numbers 0 … classes−1.

`read` returns a `Content`; `Dataset.load` checks it (shapes, label range, value range, finite
pixels, non-empty train and test splits) and raises `DataError` naming the dataset's source,
so every loader gets the same one-line errors for what it did not check itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from advbench.errors import DataError, PluginError

#: The dataset a command uses when none is given (`--dataset`).
DEFAULT_DATASET = "mnist"
#: Where the `mnist` dataset reads its IDX files from instead of the copy in the package.
MNIST_DIR_ENV = "ADVBENCH_MNIST_DIR"

Shape = tuple[int, int, int]  # (height, width, channels)


@dataclass(frozen=True, eq=False)
class Split:
    """One split: float32 images [n, h·w·c] (flattened NHWC) and int64 labels [n]."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class Content:
    """What a dataset's `read` returns: its geometry, classes, three splits and checksum.

    `checksum` identifies the content (results and checkpoints are keyed by it); a loader that
    has nothing better uses `content_checksum`.
    """

    shape: Shape
    class_names: tuple[str, ...]
    train: Split
    validation: Split
    test: Split
    checksum: str
    value_range: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class ImageSpec:
    """What attacks and the engine need to know about the images, without the images: their
    shape (height, width, channels), the number of classes and the valid pixel range."""

    shape: Shape
    classes: int
    value_range: tuple[float, float] = (0.0, 1.0)
    #: The dataset's name, for messages that name both sides (not part of what the images are).
    dataset: str = field(default="", compare=False)

    @property
    def pixels(self) -> int:
        """Values per image row: height · width · channels."""
        h, w, c = self.shape
        return h * w * c

    def text(self) -> str:
        """`28×28×1 images in 10 classes`."""
        return f"{shape_text(self.shape)} images in {self.classes} classes"


def content_checksum(
    shape: Shape, class_names: tuple[str, ...], splits: tuple[Split, Split, Split]
) -> str:
    """SHA-256 (16 hex digits) of a dataset's geometry, class names and every split's bytes."""
    h = hashlib.sha256(f"{tuple(shape)}|{'|'.join(class_names)}".encode())
    for split in splits:
        h.update(np.ascontiguousarray(split.images, np.float32).tobytes())
        h.update(np.ascontiguousarray(split.labels, np.int64).tobytes())
        h.update(b";")
    return h.hexdigest()[:16]


def validation_split(images: np.ndarray, labels: np.ndarray) -> tuple[Split, Split]:
    """(train, validation) from the training images: validation is the first twelfth, as
    MNIST's 5,000 of 60,000 (the classic `read_data_sets` split)."""
    v = len(labels) // 12
    return Split(images[v:], labels[v:]), Split(images[:v], labels[:v])


def shape_text(shape: Shape) -> str:
    """28×28×1."""
    return "×".join(str(int(d)) for d in shape)


class Dataset:
    """A named image-classification dataset, registered by a plugin and read on first use.

    `read()` returns the `Content`; it is called once per process and checked by `load`.
    `source` names the file or directory in error messages (default: the name).
    """

    def __init__(
        self,
        name: str,
        read: Callable[[], Content],
        *,
        description: str = "",
        source: str = "",
    ) -> None:
        self.name = name
        self.description = description
        self.source = source or name
        self._read = read
        self._content: Content | None = None

    def __repr__(self) -> str:
        return f"Dataset({self.name!r})"

    def load(self) -> Content:
        """The checked content (read on the first call, then cached)."""
        if self._content is None:
            content = self._read()
            if not isinstance(content, Content):
                raise PluginError(
                    f"dataset {self.name!r}: read() returned {type(content).__name__}, "
                    "not an advbench Content"
                )
            check(content, self.source)
            self._content = content
        return self._content

    # The content's facts, each reading the data on first use.
    @property
    def shape(self) -> Shape:
        """(height, width, channels) of every image."""
        return self.load().shape

    @property
    def pixels(self) -> int:
        """Values per image: height · width · channels (the width of an image row)."""
        h, w, c = self.shape
        return h * w * c

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.load().class_names

    @property
    def classes(self) -> int:
        return len(self.load().class_names)

    @property
    def value_range(self) -> tuple[float, float]:
        return self.load().value_range

    @property
    def train(self) -> Split:
        return self.load().train

    @property
    def validation(self) -> Split:
        return self.load().validation

    @property
    def test(self) -> Split:
        return self.load().test

    @property
    def checksum(self) -> str:
        return self.load().checksum

    @property
    def spec(self) -> ImageSpec:
        """Shape, class count and value range: what a model must accept."""
        content = self.load()
        shape = tuple(int(d) for d in content.shape)
        return ImageSpec(shape, len(content.class_names), content.value_range, self.name)

    @property
    def slug(self) -> str:
        """The name as a directory-name part (`npz:colours` → `npz-colours`)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-") or "dataset"

    def summary(self) -> str:
        """`mnist (28×28×1, 10 classes)`."""
        return f"{self.name} ({shape_text(self.shape)}, {self.classes} classes)"


class DatasetLoader:
    """Datasets a user points at their own files with: `PREFIX:ARGUMENT` (`npz:FILE`).

    `open(argument)` returns the `Dataset` (reading nothing yet); a bad argument is a
    `DataError` naming it.
    """

    def __init__(
        self, prefix: str, open: Callable[[str], Dataset], *, description: str = ""
    ) -> None:
        self.prefix = prefix
        self.name = f"{prefix}:"
        self.description = description
        self._open = open

    def __repr__(self) -> str:
        return f"DatasetLoader({self.prefix!r})"

    def open(self, argument: str) -> Dataset:
        if not argument.strip():
            raise DataError(f"dataset {self.name}: expected {self.name}PATH, got no path")
        dataset = self._open(argument)
        if not isinstance(dataset, Dataset):
            raise PluginError(
                f"dataset loader {self.name!r} returned {type(dataset).__name__}, not a Dataset"
            )
        return dataset


def dataset_problem(obj: Any) -> str | None:
    """Why `obj` cannot be registered as a dataset (the registry's refusal), or None."""
    if not isinstance(obj, Dataset | DatasetLoader):
        return f"is a {type(obj).__name__}, not an advbench Dataset or DatasetLoader"
    if isinstance(obj, Dataset) and ":" in obj.name:
        return "has a ':' in its name (reserved for loaders such as npz:FILE)"
    return None


def check(content: Content, source: str) -> None:
    """Refuse content the engine would misread: one line naming `source` and the problem."""
    shape = tuple(content.shape)
    if len(shape) != 3 or not all(isinstance(d, int | np.integer) and d >= 1 for d in shape):
        raise DataError(f"{source}: image shape {shape} is not (height, width, channels) >= 1")
    classes = len(content.class_names)
    if classes < 2:
        raise DataError(f"{source}: {classes} class(es); a classifier needs at least 2")
    lo, hi = (float(v) for v in content.value_range)
    if not lo < hi:
        raise DataError(f"{source}: value range [{lo}, {hi}] is empty")
    width = int(np.prod(shape))
    for split_name in ("train", "validation", "test"):
        split: Split = getattr(content, split_name)
        x, y = split.images, split.labels
        where = f"{source}: {split_name} split"
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
            raise DataError(f"{where}: images must be a float32 array [n, {width}]")
        if x.shape[1] != width:
            raise DataError(
                f"{where}: images have {x.shape[1]} values, expected {width} ({shape_text(shape)})"
            )
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
            raise DataError(f"{where}: labels must be an int64 array [{len(x)}]")
        if split_name != "validation" and not len(y):
            raise DataError(f"{where} is empty")
        if len(y) and (y.min() < 0 or y.max() >= classes):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise DataError(f"{where}: label {bad} outside 0..{classes - 1}")
        if x.size and not np.all(np.isfinite(x)):
            raise DataError(f"{where}: images contain NaN or infinity")
        if x.size and (x.min() < lo or x.max() > hi):
            raise DataError(
                f"{where}: pixel values {x.min():.4g}..{x.max():.4g} outside the value range "
                f"[{lo:g}, {hi:g}]"
            )
