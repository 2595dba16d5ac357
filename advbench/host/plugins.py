"""The plugin manager: built-ins, installed entry points and drop-in files, one mechanism.

Models, attacks and datasets (`register_models`, `register_attacks`, `register_datasets`).
Load order: built-in modules, then packages declaring the `advbench` entry-point group, then
`*.py` files in the plugin directory. All go through the same hooks. A plugin that fails to
import, or whose hook raises, is recorded with the reason and skipped, so one broken plugin
never takes the others (or `advbench plugins`) down; so is an attack the engine could not run
(`contract.attack.loop_problem`: no bound on its step loop), refused when it is registered.

Environment switches:
- ``ADVBENCH_PLUGINS_DIR``: directory of drop-in plugin files (same as ``--plugins DIR``).
- ``ADVBENCH_PLUGINS_ALLOW``: comma-separated plugin names; only these load.
- ``ADVBENCH_PLUGINS_BLOCK``: comma-separated plugin names that never load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pluggy

from advbench.contract import hookspecs
from advbench.contract.attack import loop_problem
from advbench.errors import PluginError
from advbench.host import imported
from advbench.host.registry import DatasetTable, Table

if TYPE_CHECKING:
    from advbench.contract.attack import Attack
    from advbench.contract.model import Model

BUILTIN_PLUGINS: tuple[str, ...] = (
    "advbench_plugins.datasets",
    "advbench_plugins.mlp",
    "advbench_plugins.softmax",
    "advbench_plugins.cnn",
    "advbench_plugins.keras_mlp",
    "advbench_plugins.cnn_pgd",
    "advbench_plugins.noise",
    "advbench_plugins.ifgsm",
    "advbench_plugins.fgsm",
    "advbench_plugins.pgd",
    "advbench_plugins.mim",
    "advbench_plugins.deepfool",
    "advbench_plugins.cw",
    "advbench_plugins.square",
    "advbench_plugins.targeted",
    "advbench_plugins.apgd",
    "advbench_plugins.fab",
    "advbench_plugins.fmn",
    "advbench_plugins.autoattack",
    "advbench_plugins.spsa",
    "advbench_plugins.hopskipjump",
    "advbench_plugins.ead",
    "advbench_plugins.jsma",
)
BUILTIN_NAMES = frozenset(m.removeprefix("advbench_plugins.") for m in BUILTIN_PLUGINS)
ENTRY_POINT_GROUP = "advbench"
ENV_DIR = "ADVBENCH_PLUGINS_DIR"
ENV_ALLOW = "ADVBENCH_PLUGINS_ALLOW"
ENV_BLOCK = "ADVBENCH_PLUGINS_BLOCK"


@dataclass
class PluginInfo:
    """What `advbench plugins` shows about one plugin."""

    name: str
    source: str  # "builtin", "entry point <dist>", or a file path
    version: str
    models: list[str] = field(default_factory=list)
    attacks: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Plugins:
    """Everything loaded: the pluggy manager, the name tables and per-plugin information."""

    manager: pluggy.PluginManager
    models: Table[Model]
    attacks: Table[Attack]
    info: dict[str, PluginInfo]
    datasets: DatasetTable = field(default_factory=DatasetTable)

    @property
    def errors(self) -> list[PluginInfo]:
        """Plugins that failed to import or register."""
        return [i for i in self.info.values() if i.error]

    def builtin_names(self, kind: Literal["models", "attacks", "datasets"]) -> list[str]:
        """Names of the loaded models, attacks or datasets advbench itself ships, in load order.

        Tests and benchmarks iterate over these so that an installed or drop-in plugin never
        joins (or breaks) advbench's own tables.
        """
        table: Table = getattr(self, kind)
        return [e.name for e in table.entries.values() if e.plugin in BUILTIN_NAMES]


def _names_from_env(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _short_name(module_name: str) -> str:
    return module_name.removeprefix("advbench_plugins.")


def _load_file(path: Path) -> types.ModuleType:
    """Import one drop-in plugin file under a private module name."""
    mod_name = f"advbench_dropin_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _candidates(plugins_dir: str | os.PathLike[str] | None):
    """Yield (name, source, version, loader) for every plugin that could be loaded."""
    from advbench import __version__

    for module_name in BUILTIN_PLUGINS:
        yield (
            _short_name(module_name),
            "builtin",
            __version__,
            lambda m=module_name: importlib.import_module(m),
        )
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        yield ep.name, f"entry point ({dist})", version, ep.load
    directory = plugins_dir or os.environ.get(ENV_DIR)
    if directory:
        folder = Path(directory)
        if not folder.is_dir():
            raise PluginError(f"plugin directory {str(folder)!r} does not exist")
        if not plugins_dir and not folder.is_absolute():
            # Drop-in files run as code: a relative directory in the environment depends on
            # where the command is started, so say which one it is.
            print(
                f"advbench: note: {ENV_DIR}={directory} is relative: running drop-in plugin "
                f"files from {folder.resolve()}",
                file=sys.stderr,
            )
        folder = folder.resolve()
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            yield path.stem, str(path), "file", lambda p=path: _load_file(p)


def _model_file(name: str) -> Model | None:
    """`keras:PATH`, `savedmodel:DIR`, `graph:PATH`: a model imported from that file."""
    return imported.open_model(name) if imported.split(name) else None


def load(plugins_dir: str | os.PathLike[str] | None = None) -> Plugins:
    """Load every allowed plugin and collect what each registers."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    models = Table("model", maker=_model_file)
    attacks = Table("attack", problem=loop_problem)
    datasets = DatasetTable()
    info: dict[str, PluginInfo] = {}
    allow, block = _names_from_env(ENV_ALLOW), _names_from_env(ENV_BLOCK)

    for name, source, version, loader in _candidates(plugins_dir):
        if (allow is not None and name not in allow) or (block and name in block):
            continue
        if name in info:  # the first keeps the name; the second is reported, not loaded
            key = f"{name} ({source})"
            info[key] = PluginInfo(
                name, source, version, error=f"not loaded: {info[name].source} is also {name!r}"
            )
            continue
        entry = info[name] = PluginInfo(name, source, version)
        try:
            module = loader()
            pm.register(module, name=name)
        except (Exception, SystemExit) as exc:  # isolation: sys.exit in a plugin included
            entry.error = f"failed to load: {type(exc).__name__}: {exc}"
            continue
        for hook, table, names in (
            (pm.hook.register_models, models, entry.models),
            (pm.hook.register_attacks, attacks, entry.attacks),
            (pm.hook.register_datasets, datasets, entry.datasets),
        ):
            # Each plugin's implementation is called on its own rather than through
            # `pm.hook.register_*`: every registered name is attributed to the plugin that
            # registered it, and one plugin's failure is recorded without stopping the others.
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue

                def register(obj, _table=table, _names=names, _plugin=name, _entry=entry) -> None:
                    # A malformed object, or a name another plugin registered first, is left
                    # out and reported like a broken plugin; the plugin's other objects and
                    # every other plugin still register.
                    try:
                        _table.add(obj, _plugin)
                    except PluginError as exc:
                        _entry.error = "; ".join(e for e in (_entry.error, str(exc)) if e)
                        return
                    _names.append(obj.name)

                try:
                    impl.function(**{a: register for a in impl.argnames})
                except (Exception, SystemExit) as exc:
                    entry.error = f"hook {hook.name} raised {type(exc).__name__}: {exc}"
    pm.check_pending()
    return Plugins(pm, models, attacks, info, datasets)
