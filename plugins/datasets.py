"""The built-in datasets: `mnist`, `fashion-mnist`, and loaders of a user's own files.

- `mnist`: the original IDX files shipped inside the package (or `$ADVBENCH_MNIST_DIR`,
  `mnist:DIR`, `--mnist-dir DIR`), checked against the published MD5s of their content on
  every load. Splits as TensorFlow's classic `read_data_sets`: validation = the first 5,000
  training images, train = the other 55,000, test = the 10,000 t10k images; pixels /255.
- `fashion-mnist`: Zalando's drop-in replacement (Xiao, Rasul & Vollgraf 2017; MIT licence,
  notice beside the files), same format, split and checks; `fashion-mnist:DIR` reads it from
  another directory.
- `idx:DIR`: any four IDX files in DIR, found by name (`train`/`test` or `t10k`, `images`/
  `labels`, gzipped or not), any image size, 1 or more channels; classes 0 … max label.
- `npz:FILE`: `x_train`, `y_train`, `x_test`, `y_test` (optional `x_val`/`y_val`,
  `class_names`), images [n, h, w] or [n, h, w, c] as uint8 or floats in [0, 1]; loaded with
  pickling disabled.
- `folder:DIR`: DIR/train/CLASS/*.png and DIR/test/CLASS/*.png, one sub-folder per class
  (class names = the folder names, sorted); greyscale or colour PNGs, all the same size. The
  images of each split come in a fixed pseudo-random order (seed 0), so `--limit N` sees every
  class.

Without its own validation split, a dataset's validation is the first twelfth of its training
images (MNIST's 5,000 of 60,000).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

import advbench
from advbench import (
    MNIST_DIR_ENV,
    Content,
    DataError,
    Dataset,
    DatasetLoader,
    Split,
    content_checksum,
    hookimpl,
    read_idx,
    read_npz,
    read_png_split,
    to_float,
    to_labels,
    validation_split,
)

SHIPPED = Path(advbench.__file__).parent / "engine" / "data"
ENV_MNIST_DIR = MNIST_DIR_ENV
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# name -> (what messages call it, the published MD5s of the files' content in FILES order,
# class names)
PUBLISHED = {
    "mnist": (
        "MNIST",
        (
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ),
        tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": (
        "Fashion-MNIST",
        (
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}
SIZES = {"train": 60000, "t10k": 10000}
VALIDATION = 5000


def published_checksum(name: str) -> str:
    """Identity of a published set: a hash of its files' names and published MD5s (no need to
    read them: every load checks the content against those MD5s)."""
    md5s = dict(zip(FILES, PUBLISHED[name][1], strict=True))
    joined = ",".join(f"{file}:{md5}" for file, md5 in sorted(md5s.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def published_dir(name: str) -> Path:
    """Where a published set is read from by default: the copy in the package
    (`$ADVBENCH_MNIST_DIR` for MNIST)."""
    env = os.environ.get(ENV_MNIST_DIR) if name == "mnist" else None
    return Path(env) if env else SHIPPED / name


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


@lru_cache(maxsize=4)
def _published(name: str, directory: str) -> Content:
    what, md5s, class_names = PUBLISHED[name]
    folder = Path(directory)
    arrays = {}
    for file, md5 in zip(FILES, md5s, strict=True):
        split, kind = file.split("-")[:2]
        array, _ = read_idx(
            folder / file,
            images=kind == "images",
            count=SIZES[split],
            grid=(28, 28) if kind == "images" else None,
            md5=md5,
            what=what,
        )
        if kind == "images":
            array = array.reshape(len(array), -1).astype(np.float32) / np.float32(255.0)
        else:
            array = array.astype(np.int64)
        arrays[(split, kind)] = array
    train_x, train_y = arrays[("train", "images")], arrays[("train", "labels")]
    test = Split(arrays[("t10k", "images")], arrays[("t10k", "labels")])
    _readonly(train_x, train_y, test.images, test.labels)
    return Content(
        shape=(28, 28, 1),
        class_names=class_names,
        train=Split(train_x[VALIDATION:], train_y[VALIDATION:]),
        validation=Split(train_x[:VALIDATION], train_y[:VALIDATION]),
        test=test,
        checksum=published_checksum(name),
    )


def published(name: str, directory: str | None = None) -> Dataset:
    """A published IDX set from `directory` (default: `published_dir`), MD5-checked."""

    def read() -> Content:
        folder = Path(directory) if directory else published_dir(name)
        return _published(name, str(folder))

    what = PUBLISHED[name][0]
    return Dataset(
        name,
        read,
        description=f"{what}, 28×28 greyscale, 10 classes, 60,000 train / 10,000 test (IDX)",
        source=str(directory or published_dir(name)),
    )


def _find(folder: Path, split: str, kind: str) -> Path:
    """The one file of `folder` whose name says `split` (train; test or t10k) and `kind`."""
    words = ("test", "t10k") if split == "test" else ("train",)
    hits = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file()
        and any(w in p.name.lower() for w in words)
        and kind.rstrip("s") in p.name.lower()
    ]
    if len(hits) != 1:
        found = "no" if not hits else f"{len(hits)} ({', '.join(p.name for p in hits)})"
        raise DataError(
            f"{folder}: {found} {split} {kind} file(s); expected one named like "
            f"{'train' if split == 'train' else 't10k'}-{kind}-idx{3 if kind == 'images' else 1}"
            "-ubyte[.gz]"
        )
    return hits[0]


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=4)
def _idx(directory: str) -> Content:
    folder = Path(directory)
    if not folder.is_dir():
        raise DataError(f"{folder}: IDX directory not found")
    parts, md5s = {}, []
    for split in ("train", "test"):
        images_path, labels_path = _find(folder, split, "images"), _find(folder, split, "labels")
        images, md5_x = read_idx(images_path, images=True)
        labels, md5_y = read_idx(labels_path, images=False)
        if len(labels) != len(images):
            raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
        md5s += [f"{split}-images:{md5_x}", f"{split}-labels:{md5_y}"]
        parts[split] = (images, to_labels(labels, len(images), str(labels_path)))
    (train_x, train_y), (test_x, test_y) = parts["train"], parts["test"]
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{folder}: test images are {test_x.shape[1:]}, training images {train_x.shape[1:]}"
        )
    classes = int(max(train_y.max(), test_y.max())) + 1
    train, validation = validation_split(to_float(train_x, directory), train_y)
    return Content(
        shape=tuple(int(d) for d in train_x.shape[1:]),
        class_names=tuple(str(c) for c in range(classes)),
        train=train,
        validation=validation,
        test=Split(to_float(test_x, directory), test_y),
        checksum=hashlib.sha256(",".join(md5s).encode()).hexdigest()[:16],
    )


def _in_directory(prefix: str, directory: str, read, what: str) -> Dataset:
    """A dataset read from a user's directory: named after the folder, read (and cached) by its
    resolved path, so two spellings of one folder share one read."""
    path = Path(directory)
    resolved = str(path.resolve())
    return Dataset(
        f"{prefix}:{Path(resolved).name}",
        lambda: read(resolved),
        description=f"{what} in {path}",
        source=str(path),
    )


def idx(directory: str) -> Dataset:
    return _in_directory("idx", directory, _idx, "IDX files")


@lru_cache(maxsize=4)
def _npz(key: tuple[str, int, int]) -> Content:
    path = Path(key[0])
    arrays = read_npz(path)
    where = str(path)
    splits = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" not in arrays:
            continue
        x = arrays[f"x_{split}"]
        y = to_labels(arrays[f"y_{split}"], len(x), f"{where}: y_{split}")
        splits[split] = (x, to_float(x, f"{where}: x_{split}"), y)
    shape = splits["train"][0].shape[1:]
    for split, (x, _, _) in splits.items():
        if x.shape[1:] != shape:
            raise DataError(f"{where}: x_{split} images are {x.shape[1:]}, x_train's {shape}")
    shape = (*shape, 1) if len(shape) == 2 else shape
    if not len(splits["train"][2]) or not len(splits["test"][2]):
        raise DataError(f"{where}: x_train and x_test must hold at least one image each")
    top = max(int(y.max()) for _, _, y in splits.values() if len(y)) + 1
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DataError(f"{where}: class_names must be a 1-D array of strings")
        class_names = tuple(str(n) for n in names.tolist())
        if top > len(class_names):
            raise DataError(
                f"{where}: label {top - 1} outside 0..{len(class_names) - 1} "
                f"({len(class_names)} class_names)"
            )
    else:
        class_names = tuple(str(c) for c in range(top))
    train_x, train_y = splits["train"][1:]
    if "val" in splits:
        train, validation = Split(train_x, train_y), Split(*splits["val"][1:])
    else:
        train, validation = validation_split(train_x, train_y)
    test = Split(*splits["test"][1:])
    shape = tuple(int(d) for d in shape)
    return Content(
        shape=shape,
        class_names=class_names,
        train=train,
        validation=validation,
        test=test,
        checksum=content_checksum(shape, class_names, (train, validation, test)),
    )


def npz(file: str) -> Dataset:
    path = Path(file)

    def read() -> Content:
        if not path.is_file():
            raise DataError(f"{path}: npz file not found")
        return _npz(_file_key(path))

    return Dataset(f"npz:{path.stem}", read, description=f"arrays in {path}", source=str(path))


@lru_cache(maxsize=4)
def _folder(directory: str) -> Content:
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataError(
                f"{root / split}: missing split (expected {root}/train/ and {root}/test/, "
                "one sub-folder of PNG images per class in each)"
            )
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root / 'train'}: no class sub-folders")
    extra = sorted(
        p.name for p in (root / "test").iterdir() if p.is_dir() and p.name not in classes
    )
    if extra:
        raise DataError(f"{root / 'test'}: class folder(s) {', '.join(extra)} not in train/")
    present = [c for c in classes if (root / "test" / c).is_dir()]
    rng = np.random.RandomState(0)
    out = {}
    for split in ("train", "test"):
        wanted = classes if split == "train" else present
        images, labels = read_png_split(root / split, wanted)
        if split == "test":  # numbered as in train/
            labels = np.array([classes.index(wanted[i]) for i in labels], np.int64)
        order = rng.permutation(len(labels))
        out[split] = (images[order], labels[order])
    if out["train"][0].shape[1:] != out["test"][0].shape[1:]:
        raise DataError(
            f"{root / 'test'}: images are {out['test'][0].shape[1:]}, train/'s "
            f"{out['train'][0].shape[1:]}"
        )
    shape = tuple(int(d) for d in out["train"][0].shape[1:])
    flat = {k: (x.reshape(len(x), -1), y) for k, (x, y) in out.items()}
    train, validation = validation_split(*flat["train"])
    test = Split(*flat["test"])
    return Content(
        shape=shape,
        class_names=tuple(classes),
        train=train,
        validation=validation,
        test=test,
        checksum=content_checksum(shape, tuple(classes), (train, validation, test)),
    )


def folder(directory: str) -> Dataset:
    return _in_directory("folder", directory, _folder, "PNG images (train/, test/)")


@hookimpl
def register_datasets(register) -> None:
    for name in PUBLISHED:
        register(published(name))
        register(
            DatasetLoader(
                name,
                lambda d, name=name: published(name, d),
                description=f"{PUBLISHED[name][0]} read from the directory DIR",
            )
        )
    register(DatasetLoader("idx", idx, description="any four IDX files in DIR"))
    register(DatasetLoader("npz", npz, description="x_train, y_train, x_test, y_test in FILE"))
    register(DatasetLoader("folder", folder, description="DIR/{train,test}/CLASS/*.png"))
