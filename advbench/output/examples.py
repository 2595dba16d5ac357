"""The adversarial examples themselves, every one of a cell, out of advbench and back in.

A run keeps only a few examples per cell for its pictures; `advbench run --save-examples`
also stores every attacked image's final point (one compressed array per cell, in the
database's `adversarial` table) and writes them out, and `advbench report RUN
--save-examples` exports a stored run's. The files are `OUT/examples/MODEL--CELL.npz`, plain
arrays readable without pickle: `adversarial` [n, h, w, c] float32 (the original image for a
row the attack did not attack), and per row `index` (test-set index), `label`, `target` (-1:
untargeted), `clean_pred`, `adv_pred`, `attacked`, `flipped`, `iterations`; and `model`,
`cell`, `attack`, `dataset` as strings. `advbench transfer --examples DIR` shows them to other
models.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from advbench.errors import AdvbenchError
from advbench.output.records import Cell, Records

FOLDER = "examples"
ROWS = ("index", "label", "target", "clean_pred", "adv_pred", "attacked", "flipped", "iterations")


def pack(adversarial: np.ndarray) -> bytes:
    """A cell's adversarial images as the database stores them (float32, compressed)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=np.asarray(adversarial, np.float32))
    return buffer.getvalue()


def stored(db: Any, cell_id: int) -> np.ndarray | None:
    """A cell's stored adversarial images [rows, pixels], or None when its run kept none."""
    row = db.execute("SELECT images FROM adversarial WHERE cell_id = ?", (cell_id,)).fetchone()
    if row is None:
        return None
    with np.load(io.BytesIO(row[0]), allow_pickle=False) as data:
        return data["images"]


def file_for(out: Path, cell: Cell) -> Path:
    """Where a cell's examples go: `OUT/examples/MODEL--CELL.npz` (a plain file name)."""
    from advbench.output.figures import file_name

    return out / FOLDER / file_name(f"{cell.model}--{cell.key}.npz")


def write(path: Path, cell: Cell, records: Records, images: np.ndarray, shape: tuple) -> None:
    """One cell's examples as an .npz file, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(getattr(records, name)) for name in ROWS}
    meta = {"model": cell.model, "cell": cell.key, "attack": cell.attack}
    meta["dataset"] = cell.dataset or ""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        adversarial=np.asarray(images, np.float32).reshape(-1, *shape),
        **arrays,
        **{k: np.array(v) for k, v in meta.items()},
    )
    os.replace(tmp, path)


def export(store: Any, run: Any, out: Path) -> tuple[list[Path], int]:
    """Every stored cell's examples of `run` into `OUT/examples/`: (the files written, how
    many done cells were stored without them)."""
    written, without = [], 0
    for cell in run.cells:
        if not cell.done or cell.id is None:
            continue
        images = stored(store.db, cell.id)
        if images is None:
            without += 1
            continue
        # the image shape the pictures were stored with; flat rows if it is unknown
        shown = cell.originals if cell.originals is not None else cell.examples
        shape = tuple(shown.shape[1:]) if shown is not None else (images.shape[1],)
        path = file_for(out, cell)
        write(path, cell, store.records(cell.id), images, shape)
        written.append(path)
    return written, without


def read(path: Path) -> dict[str, Any]:
    """A file `write` made, checked: one line naming the file and what is wrong otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise AdvbenchError(f"{path}: not an advbench examples file ({exc})") from None
    missing = [k for k in ("adversarial", *ROWS, "model", "cell") if k not in content]
    if missing:
        raise AdvbenchError(f"{path}: not an advbench examples file (no {', '.join(missing)})")
    n = len(content["adversarial"])
    if any(len(content[k]) != n for k in ROWS):
        raise AdvbenchError(f"{path}: arrays of different lengths")
    for k in ("model", "cell", "attack", "dataset"):
        if k in content:
            content[k] = str(content[k])
    return content
