"""Hook specifications: the whole contract between advbench and its plugins.

A plugin is a module (or object) with `@hookimpl` functions. Hooks take a `register`
callback instead of returning lists, so the host owns duplicate detection, provenance and
"unknown name" errors. Implementations may accept fewer arguments than the spec names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from advbench.contract.attack import Attack
    from advbench.contract.dataset import Dataset, DatasetLoader
    from advbench.contract.model import Model

PROJECT = "advbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(register: Callable[[Model], None]) -> None:
    """Call `register(model)` once for each `advbench.model.Model` this plugin provides."""


@hookspec
def register_attacks(register: Callable[[Attack], None]) -> None:
    """Call `register(attack)` once for each `advbench.attack.Attack` this plugin provides."""


@hookspec
def register_datasets(register: Callable[[Dataset | DatasetLoader], None]) -> None:
    """Call `register(dataset)` once for each `advbench.Dataset` (a named dataset, read on
    first use) or `advbench.DatasetLoader` (`PREFIX:ARGUMENT`, e.g. `npz:FILE`) it provides."""
