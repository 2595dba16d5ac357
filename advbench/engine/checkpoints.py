"""A checkpoint's files on disk: where they live, how they are read, and the seal that ties a
record to its weights.

`record.json` carries SHA-256 digests of the weights beside it and of itself (`seal`), checked
on every restore (`verify`): weights copied in from another seed, or an edited accuracy, would
otherwise be used and reported as if they were the record's. Every failure to read is one line
that names the file and says how to get a good checkpoint back (`recovery`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from advbench.contract.lazy_tf import tf
from advbench.errors import AdvbenchError

ENV_HOME = "ADVBENCH_HOME"
SHIPPED = Path(__file__).parent.parent / "checkpoints"  # advbench/checkpoints, package data


def cache_root() -> Path:
    """Where trained checkpoints are cached for this user."""
    home = os.environ.get(ENV_HOME)
    base = Path(home) if home else Path.home() / ".cache" / "advbench"
    return base / "checkpoints"


def weights_digest(weights: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of a checkpoint's variables: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(weights):
        value = np.ascontiguousarray(weights[name])
        h.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def record_digest(record: Mapping[str, Any]) -> str:
    """SHA-256 of a record's content (its own digest left out), keys sorted."""
    content = {k: v for k, v in record.items() if k != "record_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def seal(record: dict[str, Any], weights: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The record with the digests `verify` checks: of the weights beside it and of itself."""
    sealed = {**record, "weights_sha256": weights_digest(weights)}
    return {**sealed, "record_sha256": record_digest(sealed)}


def verify(folder: Path, record: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose weights or record are not the ones that were saved together.

    Weights copied in from another seed would be used and reported as this one; an edited
    accuracy would be printed as measured. Records written before advbench 0.2 carry no
    digests and are not checked.
    """
    recover = recovery(folder)
    if "record_sha256" in record and record_digest(record) != record["record_sha256"]:
        raise AdvbenchError(f"checkpoint {folder}: record.json was edited; {recover}")
    if (
        "weights_sha256" in record
        and weights_digest(read_weights(folder)) != record["weights_sha256"]
    ):
        raise AdvbenchError(
            f"checkpoint {folder}: its weights are not the ones its record.json describes; "
            f"{recover}"
        )


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every variable a checkpoint directory holds, by name, without building a graph."""
    for part in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
        if not (folder / part).is_file():
            raise AdvbenchError(f"checkpoint {folder}: {part} is missing; {recovery(folder)}")
    try:
        reader = tf().train.load_checkpoint(str(folder / "model.ckpt"))
        names = sorted(reader.get_variable_to_shape_map())
        return {name: reader.get_tensor(name) for name in names}
    except Exception as exc:  # TensorFlow raises many kinds, each with a long C++ trace
        raise AdvbenchError(
            f"checkpoint {folder} is corrupted ({first_line(exc)}); {recovery(folder)}"
        ) from None


def read_record(folder: Path) -> dict[str, Any]:
    """A checkpoint's record.json, or one line saying what is wrong with it."""
    path = folder / "record.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdvbenchError(
            f"{path} is unreadable ({first_line(exc)}); {recovery(folder)}"
        ) from None
    if not isinstance(record, dict) or "test_accuracy" not in record:
        raise AdvbenchError(f"{path} is not a checkpoint record; {recovery(folder)}")
    return record


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def recovery(folder: Path) -> str:
    """How a user gets a good checkpoint back."""
    if SHIPPED in folder.parents:
        return "it ships with advbench: reinstall advbench"
    return f"delete {folder} and it is retrained on next use (or run advbench train)"


def save_atomically(saver, sess, root: Path, name: str, record: dict[str, Any]) -> Path:
    """Write the checkpoint under a temporary name and rename it into place.

    A checkpoint being replaced is first renamed aside (one atomic step), then the new one is
    renamed in, and only then is the old one deleted: a process killed at any moment leaves
    either the old checkpoint or the new one complete under the final name, never a half-deleted
    folder that looks whole. Leftovers of killed trainings are removed by the next one.
    """
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    final = root / name
    tmp = root / f".{name}.tmp-{os.getpid()}"
    old = root / f".{name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        saver.save(sess, str(tmp / "model.ckpt"), write_state=False)
        record = seal(record, read_weights(tmp))
        (tmp / "record.json").write_text(json.dumps(record, indent=2) + "\n")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return final


def _remove_leftovers(root: Path) -> None:
    """Delete the temporary and set-aside folders of trainings whose process is gone."""
    for folder in root.glob(".*-*"):
        kind, _, pid = folder.name.rpartition("-")
        if not (kind.endswith((".tmp", ".old")) and pid.isdigit()) or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
