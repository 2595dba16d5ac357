"""Readers of the image formats advbench's loaders take: IDX (MNIST's), NumPy `.npz` and
folders of PNG images — public, so a dataset plugin reads its files with the same checks.

Every problem is a `DataError` whose one line names the file and what is wrong with it (not
found, not the format it claims, truncated, wrong shape or dtype, a checksum that does not
match). Nothing is decompressed or allocated past what a file's own header announces, so a
gzip bomb or a lying header costs nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zipfile
from pathlib import Path

import numpy as np

from advbench.errors import DataError

IMAGE_MAGICS = {3: 2051, 4: 2052}  # unsigned-byte IDX with 3 ([n, h, w]) or 4 dimensions
LABEL_MAGIC = 2049  # unsigned-byte IDX with 1 dimension
MAX_BYTES = 2**34  # a header announcing more than this is not a dataset we can hold


def _gzipped(path: Path) -> bool:
    """A `.gz` name claims gzip (and is held to it); otherwise the first two bytes decide."""
    if path.suffix == ".gz":
        return True
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def read_idx(
    path: Path,
    *,
    images: bool,
    count: int | None = None,
    grid: tuple[int, int] | None = None,
    md5: str | None = None,
    what: str = "IDX",
) -> tuple[np.ndarray, str]:
    """(uint8 array, MD5 of the uncompressed bytes) of one IDX file, gzipped (named `.gz`, or
    starting with gzip's magic bytes) or not.

    Images come back as [n, h, w, c] (c = 1 for three-dimensional files), labels as [n].
    `count`, `grid` (h, w) and `md5` are what a published file must match; `what` names the
    dataset in "file not found".
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        opener = gzip.open if _gzipped(path) else open
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4:
                raise DataError(
                    f"{path}: truncated IDX file ({len(head)} bytes, no complete header)"
                )
            (magic,) = struct.unpack(">I", head)
            allowed = tuple(IMAGE_MAGICS.values()) if images else (LABEL_MAGIC,)
            if grid is not None or count is not None:  # a published file: its exact magic
                allowed = allowed[:1]
            if magic not in allowed:
                want = " or ".join(map(str, allowed))
                raise DataError(f"{path}: bad IDX magic number {magic} (expected {want})")
            ndim = magic & 0xFF
            dims_raw = fh.read(4 * ndim)
            header = 4 + 4 * ndim
            if len(dims_raw) < 4 * ndim:
                got = 4 + len(dims_raw)
                raise DataError(f"{path}: truncated IDX file ({got} bytes, no complete header)")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            if count is not None and dims[0] != count:
                raise DataError(f"{path}: header says {dims[0]} items, expected {count}")
            if images and grid is not None and tuple(dims[1:3]) != tuple(grid):
                raise DataError(
                    f"{path}: images are {dims[1]}x{dims[2]}, expected {grid[0]}x{grid[1]}"
                )
            if images and min(dims[1:]) == 0:
                raise DataError(f"{path}: images of size {'x'.join(map(str, dims[1:]))}")
            expected = header + int(np.prod(dims, dtype=np.int64))
            if expected > MAX_BYTES or (opener is open and expected > path.stat().st_size):
                size = path.stat().st_size if opener is open else None
                raise DataError(
                    f"{path}: header announces {expected} bytes"
                    + (f", the file has {size}" if size is not None else "")
                )
            # One byte past the announced size is enough to know the file is not what its
            # header says: a gzip bomb is never decompressed further than that.
            body = fh.read(expected - header + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupted or truncated gzip file ({exc})") from None
    total = header + len(body)
    if total != expected:
        size = f"more than {expected}" if total > expected else str(total)
        raise DataError(f"{path}: {size} bytes uncompressed, expected {expected}")
    digest = hashlib.md5(head + dims_raw + body).hexdigest()
    if md5 is not None and digest != md5:
        raise DataError(f"{path}: MD5 {digest} does not match the published {md5}")
    array = np.frombuffer(body, dtype=np.uint8)
    if images:
        n, h, w = dims[:3]
        return array.reshape(n, h, w, dims[3] if ndim == 4 else 1), digest
    return array, digest


def to_float(images: np.ndarray, where: str) -> np.ndarray:
    """Images as float32 rows [n, h·w·c] in [0, 1]: uint8 divided by 255; floats as they are,
    after checking they are finite and inside [0, 1]."""
    if images.dtype == np.uint8:
        return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    if images.dtype.kind != "f":
        raise DataError(
            f"{where}: images of dtype {images.dtype}; store uint8 (0-255) or floats in [0, 1]"
        )
    rows = images.reshape(len(images), -1).astype(np.float32)
    if rows.size and not np.all(np.isfinite(rows)):
        raise DataError(f"{where}: images contain NaN or infinity")
    if rows.size and (rows.min() < 0 or rows.max() > 1):
        raise DataError(
            f"{where}: float pixel values {rows.min():.4g}..{rows.max():.4g} outside [0, 1]; "
            "scale them to [0, 1] or store uint8"
        )
    return rows


def to_labels(labels: np.ndarray, n: int, where: str) -> np.ndarray:
    """Labels as int64 [n]: integers (a column [n, 1] is accepted), one per image."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(
            f"{where}: labels must be integers [n], got {labels.dtype} of shape {labels.shape}"
        )
    if len(labels) != n:
        raise DataError(f"{where}: {len(labels)} labels for {n} images")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{where}: label {int(labels.min())} is negative")
    return labels.astype(np.int64)


NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` file, loaded with pickling disabled: `x_train`, `y_train`,
    `x_test`, `y_test` required; `x_val`/`y_val` and `class_names` optional. Images are
    [n, h, w] or [n, h, w, c] (channels last)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: npz file not found")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a NumPy .npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{path}: holds pickled Python objects, which advbench does not load"
            ) from None
        raise DataError(f"{path}: not a NumPy .npz archive ({exc})") from None
    except Exception as exc:  # zipfile, OSError, a pickle header: all "not an npz"
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a NumPy .npz archive ({text})") from None
    missing = [key for key in NPZ_ARRAYS if key not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing array(s) {', '.join(missing)} (has: {', '.join(arrays) or 'none'})"
        )
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise DataError(f"{path}: x_val and y_val come together")
    for key in ("x_train", "x_test", "x_val"):
        if key in arrays and arrays[key].ndim not in (3, 4):
            raise DataError(
                f"{path}: {key} has shape {arrays[key].shape}; images must be [n, h, w] or "
                "[n, h, w, c] (channels last)"
            )
    return arrays


def read_png(path: Path) -> np.ndarray:
    """One PNG image as float32 [h, w, c] in [0, 1]: greyscale c = 1, colour c = 3 (alpha and
    palettes dropped or expanded), 8 or 16 bits per sample."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                raise DataError(f"{path}: a {img.format} image, not a PNG")
            img.load()
            if img.mode in ("I;16", "I;16B", "I"):
                raw = np.asarray(img, dtype=np.float64)
                return (raw / 65535.0).astype(np.float32)[:, :, None]
            grey = img.mode in ("1", "L", "LA")
            pixels = np.asarray(img.convert("L" if grey else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable PNG image ({text})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels.astype(np.float32) / np.float32(255.0)


def read_png_split(folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(images [n, h, w, c] float32, labels [n]) of one split: folder/CLASS/*.png, classes
    numbered in the order given; files in name order. Every image must have the first one's
    shape."""
    images, labels = [], []
    first: tuple[Path, tuple[int, ...]] | None = None
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise DataError(f"{folder / name}: no .png images in class folder {name!r}")
        for file in files:
            image = read_png(file)
            if first is None:
                first = (file, image.shape)
            elif image.shape != first[1]:
                raise DataError(
                    f"{file}: a {'×'.join(map(str, image.shape))} image, but "
                    f"{first[0].name} is {'×'.join(map(str, first[1]))}"
                )
            images.append(image)
            labels.append(label)
    return np.stack(images), np.array(labels, np.int64)
