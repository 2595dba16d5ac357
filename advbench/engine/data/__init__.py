"""A dataset's splits as the engine trains and attacks on them, with a seeded `next_batch`.

The datasets themselves are plugins (`advbench.Dataset`, registered through
`register_datasets`; the built-ins in `advbench_plugins.datasets` read the IDX files shipped in
this folder: `mnist/` and `fashion-mnist/`). Here they become TensorFlow's classic
`read_data_sets` triple: images as float32 rows [n, h·w·c] (flattened NHWC), integer or
one-hot labels, and a `next_batch` that reshuffles at every epoch — with a seed, so batches
are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from advbench.contract.dataset import DEFAULT_DATASET, Dataset, Split


def default_dataset() -> Dataset:
    """The dataset commands use when none is named (`DEFAULT_DATASET`), from the registry."""
    from advbench.host import plugins

    return plugins.load().datasets.get(DEFAULT_DATASET)


class DataSet:
    """One split: images, labels and a seeded, epoch-reshuffling `next_batch`."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, one_hot: bool, seed: int, classes: int
    ) -> None:
        self.images = images
        self.labels_int = labels.astype(np.int64)
        self.classes = classes
        self.labels = dense_to_one_hot(labels, classes) if one_hot else self.labels_int
        self.num_examples = len(images)
        self._rng = np.random.RandomState(seed)
        self._order = np.arange(self.num_examples)
        self._index = 0
        self.epochs_completed = 0

    @classmethod
    def of(cls, split: Split, one_hot: bool, seed: int, classes: int) -> DataSet:
        return cls(split.images, split.labels, one_hot, seed, classes)

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
    """The three splits, like `read_data_sets` returns them, and the dataset they come from."""

    train: DataSet
    validation: DataSet
    test: DataSet
    dataset: Any  # advbench.Dataset


def dense_to_one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """float32 one-hot rows for integer labels."""
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def read_data_sets(
    dataset: Dataset | None = None, one_hot: bool = False, seed: int = 0
) -> DataSets:
    """All three splits of `dataset` (default: `DEFAULT_DATASET`); `seed` fixes the shuffling
    of `next_batch` on train and validation."""
    ds = dataset or default_dataset()
    k = ds.classes
    return DataSets(
        train=DataSet.of(ds.train, one_hot, seed, k),
        validation=DataSet.of(ds.validation, one_hot, seed + 1, k),
        test=DataSet.of(ds.test, one_hot, seed + 2, k),
        dataset=ds,
    )


def read_test_set(dataset: Dataset | None = None, one_hot: bool = False) -> DataSet:
    """Only the test split (what a benchmark run needs)."""
    ds = dataset or default_dataset()
    return DataSet.of(ds.test, one_hot, 0, ds.classes)
