"""Names → models, attacks and datasets, with provenance, duplicate detection and helpful
misses. Datasets also resolve `PREFIX:ARGUMENT` through a registered loader (`npz:FILE`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from advbench.contract.dataset import Dataset, DatasetLoader, dataset_problem
from advbench.errors import PluginError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    """A registered object and the plugin that registered it."""

    name: str
    obj: T
    plugin: str


@dataclass
class Table(Generic[T]):
    """One namespace (models or attacks): unique names, each traced to its plugin."""

    kind: str
    #: What is wrong with an object that must not be registered (None: nothing); run by `add`.
    problem: Callable[[T], str | None] | None = None
    #: Makes the object for a name no plugin registers (a model file, `keras:PATH`), or None
    #: when the name is not of that form; what it makes is kept in `made`, under plugin
    #: "file" (not among the registered `entries`: "all models" stays the plugins' ones).
    maker: Callable[[str], T | None] | None = None
    entries: dict[str, Entry[T]] = field(default_factory=dict)
    made: dict[str, Entry[T]] = field(default_factory=dict)

    def add(self, obj: T, plugin: str) -> None:
        """Register `obj` under its `name`; a second registration of a name, or an object
        `problem` finds fault with, is an error."""
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} without a name")
        wrong = self.refusal(obj)
        if wrong:
            raise PluginError(f"plugin {plugin!r} {wrong}")
        if name in self.entries:
            first = self.entries[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered by both plugin {first!r} and plugin {plugin!r}"
            )
        self.entries[name] = Entry(name, obj, plugin)

    def refusal(self, obj: T) -> str | None:
        """Why `obj` may not be registered ("refused attack 'x': ..."), or None."""
        wrong = self.problem(obj) if self.problem else None
        return f"refused {self.kind} {getattr(obj, 'name', '?')!r}: {wrong}" if wrong else None

    def get(self, name: str) -> T:
        """The object called `name`, or a one-line error listing near misses."""
        return lookup(name, self).obj

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self.entries)

    def select(self, wanted: list[str] | None) -> list[T]:
        """Every object that joins runs naming none (`in_every`) when `wanted` is None, else
        the named ones in the given order."""
        if wanted is None:
            return [e.obj for e in self.entries.values() if getattr(e.obj, "in_every", True)]
        seen: list[str] = []
        for name in wanted:
            if name not in seen:
                seen.append(name)
        return [self.get(name) for name in seen]


def lookup(name: str, *tables: Table[Any]) -> Entry[Any]:
    """The entry called `name` in the first of `tables` holding it (`describe` searches models
    and attacks at once), or one line naming what is known and the nearest miss."""
    for table in tables:
        if name in table.entries:
            return table.entries[name]
    for table in tables:
        if name in table.made:
            return table.made[name]
        made = table.maker(name) if table.maker else None
        if made is not None:
            table.made[name] = Entry(name, made, "file")
            return table.made[name]
    known = sorted({n for table in tables for n in table.entries})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    kinds = [table.kind for table in tables]
    kinds = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
    raise PluginError(f"unknown {kinds} {name!r} (known: {', '.join(known) or 'none'}){hint}")


@dataclass
class DatasetTable(Table[Any]):
    """Datasets by name (`mnist`) and loaders by prefix (`npz:`, registered as "npz:"): a
    name with a colon opens its argument with the loader of its prefix (`npz:data/x.npz`)."""

    kind: str = "dataset"
    problem: Callable[[Any], str | None] | None = dataset_problem

    def get(self, name: str) -> Dataset:
        """The dataset called `name`, or opened by its prefix's loader; one line otherwise."""
        entry = self.entries.get(name)
        if entry is not None and isinstance(entry.obj, Dataset):
            return entry.obj
        prefix, sep, argument = name.partition(":")
        loader = self.entries.get(f"{prefix}:") if sep else None
        if loader is not None and isinstance(loader.obj, DatasetLoader):
            return loader.obj.open(argument)
        known = sorted(self.entries, key=lambda n: (n.endswith(":"), n))
        shown = [n + ("PATH" if n.endswith(":") else "") for n in known]
        close = difflib.get_close_matches(f"{prefix}:" if sep else name, known, n=1)
        hint = ""
        if close:
            hint = f"; did you mean {close[0] + (argument if close[0].endswith(':') else '')!r}?"
        raise PluginError(f"unknown dataset {name!r} (known: {', '.join(shown) or 'none'}){hint}")
