"""The MNIST dataset: headers, splits, known facts, checksums and batching."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from advbench_plugins import datasets

from advbench import read_idx
from advbench.engine import data
from advbench.errors import DataError
from advbench.host import plugins

SHIPPED_MNIST = datasets.SHIPPED / "mnist"


def mnist_at(folder):
    """The mnist dataset read from `folder` (`--mnist-dir`), its test split."""
    return data.read_test_set(plugins.load().datasets.get(f"mnist:{folder}"))


@pytest.fixture(scope="module")
def sets():
    return data.read_data_sets(one_hot=True, seed=0)


def test_split_sizes_and_types(sets):
    assert sets.train.num_examples == 55000
    assert sets.validation.num_examples == 5000
    assert sets.test.num_examples == 10000
    for split in (sets.train, sets.validation, sets.test):
        assert split.images.dtype == np.float32
        assert split.images.shape[1] == 784
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        assert split.labels.shape[1] == 10
        assert np.all(split.labels.sum(axis=1) == 1)


def test_known_facts_from_the_readme(sets):
    train_all = np.concatenate([sets.validation.labels_int, sets.train.labels_int])
    assert np.bincount(train_all).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert train_all[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert sets.test.labels_int[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    mean = np.concatenate([sets.validation.images, sets.train.images]).mean()
    assert round(float(mean), 4) == 0.1307


def test_validation_is_the_first_5000_training_images():
    raw, _ = read_idx(SHIPPED_MNIST / "train-images-idx3-ubyte.gz", images=True)
    raw = raw.reshape(len(raw), -1)
    sets = data.read_data_sets(seed=0)
    np.testing.assert_array_equal(sets.validation.images, raw[:5000] / np.float32(255))
    np.testing.assert_array_equal(sets.train.images[:3], raw[5000:5003] / np.float32(255))


def test_one_hot_false_gives_integer_labels():
    sets = data.read_data_sets(one_hot=False)
    assert sets.test.labels.dtype == np.int64 and sets.test.labels.ndim == 1


def _copy(tmp_path):
    for f in SHIPPED_MNIST.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _rewrite(path, mutate):
    raw = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(mutate(raw))))


def test_flipped_byte_fails_checksum_naming_the_file(tmp_path):
    folder = _copy(tmp_path)
    target = folder / "t10k-images-idx3-ubyte.gz"

    def flip(raw):
        raw[5000] ^= 0xFF
        return raw

    _rewrite(target, flip)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: MD5"):
        mnist_at(folder)


def test_truncated_content_is_reported(tmp_path):
    folder = _copy(tmp_path)
    target = folder / "t10k-labels-idx1-ubyte.gz"
    _rewrite(target, lambda raw: raw[:-10])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: .*bytes uncompressed"):
        mnist_at(folder)


def test_truncated_gzip_is_reported(tmp_path):
    folder = _copy(tmp_path)
    target = folder / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: corrupted or truncated"):
        mnist_at(folder)


def test_bad_magic_is_reported(tmp_path):
    folder = _copy(tmp_path)

    def magic(raw):
        raw[3] = 0x04
        return raw

    _rewrite(folder / "t10k-labels-idx1-ubyte.gz", magic)
    with pytest.raises(DataError, match="bad IDX magic number"):
        mnist_at(folder)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="MNIST file not found"):
        mnist_at(tmp_path)


def test_environment_variable_selects_the_directory(tmp_path, monkeypatch):
    folder = _copy(tmp_path)
    monkeypatch.setenv(datasets.ENV_MNIST_DIR, str(folder))
    assert datasets.published_dir("mnist") == folder
    assert data.read_test_set().num_examples == 10000


def test_next_batch_covers_each_epoch_once_and_reshuffles():
    ds = data.DataSet(np.zeros((10, 784), np.float32), np.arange(10) % 10, False, 3, 10)
    ds.images = np.arange(10, dtype=np.float32)[:, None].repeat(784, 1)
    first = np.concatenate([ds.next_batch(5)[0][:, 0] for _ in range(2)])
    second = np.concatenate([ds.next_batch(5)[0][:, 0] for _ in range(2)])
    assert sorted(first.tolist()) == list(range(10))
    assert sorted(second.tolist()) == list(range(10))
    assert first.tolist() != second.tolist()
    assert ds.epochs_completed == 1


def test_next_batch_is_seeded():
    a = data.read_data_sets(seed=7).train
    b = data.read_data_sets(seed=7).train
    c = data.read_data_sets(seed=8).train
    np.testing.assert_array_equal(a.next_batch(10)[1], b.next_batch(10)[1])
    assert not np.array_equal(a.next_batch(50)[1], c.next_batch(60)[1][10:])


def test_batch_crossing_epoch_boundary_has_full_size():
    ds = data.DataSet(np.zeros((7, 784), np.float32), np.arange(7), False, 0, 10)
    sizes = [len(ds.next_batch(3)[1]) for _ in range(5)]
    assert sizes == [3] * 5
    assert ds.epochs_completed == 2


def test_a_gzip_bomb_is_not_decompressed_past_the_published_size(tmp_path):
    """64 MB of zeros pack into 64 KB; reading stops one byte past the 7.8 MB expected (the
    message says so: the whole file was read before, and a 2 MB bomb took 4.2 GB)."""
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    header = (2051).to_bytes(4, "big") + (10000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    chunk = bytes(2**24)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(header)
        for _ in range(4):
            fh.write(chunk)
    with pytest.raises(DataError, match=r"more than 7840016 bytes uncompressed"):
        read_idx(path, images=True, count=10000, grid=(28, 28))
