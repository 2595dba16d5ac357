"""The layout is the architecture: layers import only downwards, nothing imports in a circle,
and plugins use only the public contract. A new import that breaks a rule fails here.

Layers, lowest first: errors → contract → host → output → engine → lab (and the conformance
kit, `advbench.testing`) → cli. The output never imports the engine (reports render from the
database alone); built-in plugins import only `advbench` (the façade that re-exports the
contract), never a module inside it, and never one another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("errors", "contract", "host", "output", "engine", "lab", "cli")
RANK = {name: i for i, name in enumerate(LAYERS)}


def _module_name(path: Path) -> str:
    if path.is_relative_to(ROOT / "plugins"):
        rel = path.relative_to(ROOT / "plugins").with_suffix("")
        return ".".join(("advbench_plugins", *rel.parts)).removesuffix(".__init__")
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def _sources() -> dict[str, Path]:
    files = [*(ROOT / "advbench").rglob("*.py"), *(ROOT / "plugins").glob("*.py")]
    return {_module_name(p): p for p in files}


def _imports(path: Path) -> set[str]:
    """Every advbench module a file imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in ("advbench", "advbench_plugins")}


SOURCES = _sources()
GRAPH = {m: {i for i in _imports(p) if i in SOURCES and i != m} for m, p in SOURCES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "advbench" or len(parts) == 1:
        return None  # the façade and plugins have rules of their own
    if parts[1] == "testing":
        return "lab"
    if parts[1] == "__main__":
        return "cli"
    return parts[1] if parts[1] in RANK else None


def test_every_module_belongs_to_a_layer():
    strays = [m for m in SOURCES if m.startswith("advbench.") and _layer(m) is None]
    assert not strays, f"modules outside the layers {LAYERS}: {strays}"


def test_layers_import_only_downwards():
    upward = [
        f"{src} ({_layer(src)}) imports {dst} ({_layer(dst)})"
        for src, targets in GRAPH.items()
        for dst in targets
        if _layer(src) and _layer(dst) and RANK[_layer(dst)] > RANK[_layer(src)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    """Tarjan's strongly connected components over the import graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("plugin", sorted(m for m in SOURCES if m.startswith("advbench_plugins.")))
def test_plugins_use_only_the_public_contract(plugin):
    imported = [m for m in _imports(SOURCES[plugin]) if m in SOURCES]
    others = [m for m in imported if m.startswith("advbench_plugins")]
    assert not others, f"{plugin} imports another plugin: {others}"
    bad = [m for m in imported if m.startswith("advbench.")]
    assert not bad, f"{plugin} imports past the façade `advbench`: {bad}"


def test_the_facade_reexports_only_the_contract():
    """`advbench` itself sits just above the contract: importing it (every plugin does) loads
    neither the engine nor TensorFlow."""
    below = [m for m in GRAPH["advbench"] if _layer(m) not in ("errors", "contract")]
    assert not below, f"the façade imports beyond the contract: {below}"


def test_the_rules_can_fail(tmp_path):
    """The checks see function-local imports (the way a cycle hides), upward edges and a
    built-in named as a default."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f(model='mlp'):\n    from advbench.engine import zoo\n")
    assert "advbench.engine.zoo" in _imports(probe)
    assert _named_builtins(probe, {"mlp"})
    assert "advbench.engine.driver" in GRAPH["advbench.engine.runner"]
    assert RANK[_layer("advbench.engine.runner")] > RANK[_layer("advbench.output.metrics")]


MAX_LINES = 400


def test_no_source_file_outgrows_one_concept():
    long = {
        str(p.relative_to(ROOT)): n
        for p in SOURCES.values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def _named_builtins(path: Path, names: set[str]) -> list[str]:
    """Built-in plugin names used as values: call arguments, parameter defaults, == operands."""
    found = []
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for node in ast.walk(ast.parse(path.read_text())):
        values: list[ast.expr] = []
        if isinstance(node, ast.Call):
            values = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.arguments):
            values = [*node.defaults, *(d for d in node.kw_defaults if d is not None)]
        elif isinstance(node, ast.Compare) and all(isinstance(o, ast.Eq) for o in node.ops):
            values = [node.left, *node.comparators]
        found += [
            f"{where}:{v.lineno} {v.value!r}"
            for v in values
            if isinstance(v, ast.Constant) and v.value in names
        ]
    return found


def test_only_the_lab_names_built_in_models_or_attacks(registry):
    """The engine, output, host, contract, kit and CLI work for any plugin: a user who blocks a
    built-in (ADVBENCH_PLUGINS_BLOCK) loses that plugin, not a command."""
    names = set(registry.builtin_names("models")) | set(registry.builtin_names("attacks"))
    named = [
        hit
        for module, path in SOURCES.items()
        if (module.startswith("advbench.") and _layer(module) != "lab")
        or module == "advbench.testing"
        for hit in _named_builtins(path, names)
    ]
    assert not named, "\n".join(named)
