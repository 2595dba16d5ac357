"""Units of distributed work: one shard of one cell's images, and how a worker runs it.

A `Unit` is plain data (it travels to a Dask worker by pickle) and carries everything the
worker needs to compute the same numbers the driver would, and to check that it does: the
plugins directory, the dataset's reference and checksum, the model's name, configuration, seed
and the digest of its weights (or of its imported file), the attack, its full parameters and
seed, and the shard's image range. `run_unit` — the function the workers execute — refuses a
unit whose data or weights differ from the driver's, in one line that names the worker.

A worker process keeps what it loaded (plugins, data, models, attack graphs) between units, and
runs one unit at a time with TensorFlow's thread pools sized to the threads the worker was
started with (`dask worker --nthreads`, or `advbench run --workers N`: the cores / N each):
two units in one process would share, and oversubscribe, the same cores.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.errors import AdvbenchError
from advbench.output.records import Records
from advbench.output.shards import Shard

#: Images per shard unless `--shard-size` says otherwise: small enough that a 40-minute C&W
#: cell spreads over ten workers, large enough that each unit's fixed costs (a task's round
#: trip, the shard's clean forward pass, the cell checks' graph) stay a small share.
DEFAULT_SHARD = 1000
THREADS_ENV = "ADVBENCH_THREADS"  # TensorFlow's pool sizes in this process (`graph.session`)


class UnitFailed(AdvbenchError):
    """A unit could not run on its worker: one line naming the worker and the cause."""


@dataclass(frozen=True)
class Unit:
    """One shard of one cell (module docstring)."""

    run_id: str
    model: str
    model_config: Mapping[str, Any]
    model_seed: int
    weights_sha256: str | None  # the checkpoint's weights (None: an imported model)
    origin_sha256: str | None  # an imported model's file
    checkpoint: str  # the checkpoint's folder name (or the imported file), for messages
    dataset: str  # the reference `registry.datasets.get` takes (mnist, idx:DIR, …)
    data_checksum: str
    cell: str  # the cell's key
    attack: str
    params: Mapping[str, Any]
    seed: int
    shard: int
    lo: int  # first image (test-set index) of the shard
    hi: int  # one past its last
    batch_size: int
    checks: bool
    time_limit: float | None
    plugins_dir: str | None
    after: tuple[str, ...] = ()  # an ensemble component: the earlier components' keys

    @property
    def name(self) -> str:
        """The Dask key: unique within the run, readable on the dashboard."""
        return f"advbench-{self.run_id}-{self.model}-{self.cell}-{self.shard}"


_lock = threading.Lock()  # one unit at a time per worker process
_cache: dict[Any, Any] = {}


def _where() -> str:
    """This worker's address (or "driver" outside a Dask worker)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "driver"


def _threads() -> None:
    """Size this process's TensorFlow pools to the worker's threads, before any session."""
    if THREADS_ENV in os.environ:
        return
    try:
        from distributed import get_worker

        os.environ[THREADS_ENV] = str(get_worker().state.nthreads)
    except (ImportError, ValueError):
        pass


def _cached(key: Any, make: Any) -> Any:
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


def _registry(unit: Unit) -> Any:
    from advbench.host import plugins

    return _cached(("plugins", unit.plugins_dir), lambda: plugins.load(unit.plugins_dir))


def _lookup(registry: Any, table: str, name: str) -> Any:
    """A model or attack by name; when this worker lacks it, the plugins that failed to load
    here are the likely cause and are named."""
    try:
        return getattr(registry, table).get(name)
    except AdvbenchError as exc:
        broken = [f"{e.name} ({e.error})" for e in registry.errors]
        if not broken:
            raise
        raise AdvbenchError(
            f"{exc}; plugins that failed to load here: {', '.join(broken)}"
        ) from None


def _dataset(unit: Unit) -> Any:
    def make() -> Any:
        chosen = _registry(unit).datasets.get(unit.dataset)
        chosen.load()
        return chosen

    dataset = _cached(("dataset", unit.dataset), make)
    if dataset.checksum != unit.data_checksum:
        raise AdvbenchError(
            f"dataset {unit.dataset} here has checksum {dataset.checksum[:12]}, the driver's "
            f"{unit.data_checksum[:12]}: not the same images"
        )
    return dataset


def install(files: Mapping[str, bytes] | None, name: str, weights_sha256: str | None) -> None:
    """Put a checkpoint the driver sent (`files`: file name → bytes) into this machine's
    checkpoint cache, atomically, unless a complete one is already there. A worker never
    trains: the driver trains a missing checkpoint once and sends it to every worker."""
    from advbench.engine import checkpoints

    target = checkpoints.cache_root() / name
    if files is None or (target / "record.json").is_file():
        return
    staging = target.parent / f".{name}.incoming-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file, content in files.items():
        (staging / file).write_bytes(content)
    record = checkpoints.read_record(staging)
    if weights_sha256 is not None and record.get("weights_sha256") != weights_sha256:
        shutil.rmtree(staging, ignore_errors=True)
        raise AdvbenchError(f"checkpoint {name} sent by the driver does not match its digest")
    try:
        staging.rename(target)
    except OSError:  # another process of this machine installed it first
        shutil.rmtree(staging, ignore_errors=True)


def _loaded(unit: Unit, files: Mapping[str, bytes] | None) -> Any:
    from advbench.engine import zoo

    registry = _registry(unit)
    model = _lookup(registry, "models", unit.model)
    dataset = _dataset(unit)
    config = dict(unit.model_config)  # resolved by the driver's plan

    def make() -> Any:
        if model.pretrained:
            return zoo.open_pretrained(model, config, dataset)
        install(files, unit.checkpoint, unit.weights_sha256)
        folder = zoo.find(model, config, unit.model_seed, dataset)
        if folder is None:
            raise AdvbenchError(
                f"no checkpoint {unit.checkpoint} on this worker (the driver sends the ones "
                "it trained; a shipped one needs the same advbench version)"
            )
        return zoo.restore(model, config, folder, dataset)

    key = ("model", unit.model, repr(sorted(config.items())), unit.model_seed, unit.dataset)
    loaded = _cached(key, make)
    if model.pretrained:
        if loaded.record.get("sha256") != unit.origin_sha256:
            raise AdvbenchError(f"model file {unit.checkpoint} here is not the driver's")
    elif loaded.record.get("weights_sha256") != unit.weights_sha256:
        raise AdvbenchError(
            f"checkpoint {loaded.folder.name} here has other weights than the driver's"
        )
    return loaded


def run_unit(unit: Unit, files: Mapping[str, bytes] | None, *earlier: Shard) -> Shard:
    """Run one unit on this worker (or in the driver's process): the attack on the shard's
    images, the engine's confirmation and the cell checks' counts. `earlier`: the same shard
    of the components before it (an ensemble component attacks only what they left)."""
    try:
        with _lock:
            _threads()
            return _run(unit, files, earlier)
    except Exception as exc:
        raise UnitFailed(
            f"worker {_where()}: {unit.model} × {unit.cell} shard {unit.shard}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _run(unit: Unit, files: Mapping[str, bytes] | None, earlier: tuple[Shard, ...]) -> Shard:
    from advbench.engine import checks, ensemble, runner

    dataset = _dataset(unit)
    loaded = _loaded(unit, files)
    test = _cached(("test", unit.dataset), lambda: _test_set(dataset))
    images, labels = test.images[unit.lo : unit.hi], test.labels_int[unit.lo : unit.hi]
    indices = np.arange(unit.lo, unit.hi, dtype=np.int64)
    sample = runner.Sample.of(loaded, images, labels, indices)
    attack = _lookup(_registry(unit), "attacks", unit.attack)
    spec = runner.AttackSpec(attack, dict(unit.params), unit.seed)

    def build() -> tuple[Any, bool]:
        before = checks.mark(loaded.graph)
        built = runner.build_attack_graph(loaded, spec)
        return built, checks.uses_gradients(loaded.graph, before)

    graph_key = ("graph", id(loaded), unit.attack, repr(sorted(unit.params.items())), unit.seed)
    graph, used = _cached(graph_key, build)
    only = None
    if unit.after:
        only = np.ones(len(sample), bool)
        for part in earlier:
            only &= ~ensemble.broken(part.records, sample)
    records, seconds = runner.run_attack(
        loaded,
        spec,
        sample,
        batch_size=unit.batch_size,
        graph=graph,
        only=only,
        time_limit=unit.time_limit,
    )
    counts = counted(loaded, attack, unit, images, records) if unit.checks else {}
    return Shard(records, seconds, counts, used if unit.checks else None, _where())


def _test_set(dataset: Any) -> Any:
    from advbench.engine import data

    return data.read_test_set(dataset)


def counted(loaded: Any, attack: Any, unit: Unit, images: np.ndarray, records: Records) -> dict:
    """The rows behind each of the cell's checks (`shards.COUNTED`) on this shard."""
    from advbench.engine import checks

    attacked = int(records.attacked.sum())
    try:
        found = checks.cell_checks(
            loaded, attack, dict(unit.params), unit.seed, images[records.index - unit.lo], records
        )
        out = {c.name: None if c.value is None else round(c.value * attacked) for c in found}
    except Exception:
        out = {"silent success": None, "incomplete optimisation": None}
    out["unconfirmed success"] = int(records.unconfirmed.sum())
    return out


def checkpoint_files(folder: Path) -> dict[str, bytes]:
    """A checkpoint's files as bytes, to send to workers that do not have it."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
