"""The package's layout: its modules import one another without a cycle, and nothing imports the runner."""

import ast
from pathlib import Path

import networkx as nx

import geohelpers

PACKAGE = Path(geohelpers.__file__).resolve().parent


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["geohelpers", *parts])


def imports_of(path: Path) -> set[str]:
    """Every ``geohelpers`` module that ``path`` imports, at the top or inside a function."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("geohelpers")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("geohelpers"):
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # "from . import store" names a module
    return found


def graph() -> nx.DiGraph:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for name, path in modules.items():
        for target in imports_of(path):
            if target in modules and target != name:
                g.add_edge(name, target)
    return g


def test_the_module_import_graph_has_no_cycle():
    g = graph()
    # a package's __init__ importing its own modules is how a package exposes them, not a layer
    g.remove_edges_from([(a, b) for a, b in list(g.edges) if a.endswith(("quantize", "models")) and b.startswith(a)])
    cycles = list(nx.simple_cycles(g))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_nothing_imports_the_runner():
    g = graph()
    assert list(g.predecessors("geohelpers.run")) == []
    assert "geohelpers.run" not in nx.descendants(g, "geohelpers.sweep")


def layers() -> dict[str, int]:
    """The package docstring's table: module (``geohelpers.x``; a folder ``x/`` stands for every module in
    it) -> layer number."""
    import re

    out, layer = {}, None
    lines = geohelpers.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("====")]
    for line in lines[rules[1] + 1:rules[2]]:
        head, modules = line[:6].strip(), line[6:66]
        if head.isdigit():
            layer = int(head)
        for name in re.findall(r"``([a-z_]+/?)``", modules):
            out["geohelpers." + name.rstrip("/")] = layer
    return out


def layer_of(module: str, table: dict[str, int]) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in table:
            return table[".".join(parts[:n])]
    return None


def upward_imports(g: nx.DiGraph, table: dict[str, int]) -> list[str]:
    return [f"{a} ({layer_of(a, table)}) imports {b} ({layer_of(b, table)})" for a, b in g.edges
            if "geohelpers" not in (a, b) and layer_of(b, table) > layer_of(a, table)]


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_layers():
    table = layers()
    assert len(set(table.values())) >= 6, table
    g = graph()
    unplaced = sorted(m for m in g if m != "geohelpers" and layer_of(m, table) is None)
    assert not unplaced, f"modules missing from the package docstring's layer table: {unplaced}"
    assert not upward_imports(g, table), "imports that go up a layer: " + "; ".join(upward_imports(g, table))


def test_the_layer_test_sees_an_upward_import():
    table = layers()
    g = graph()
    g.add_edge("geohelpers.stages.vaes", "geohelpers.selection")  # a stage reading the book's decisions
    assert upward_imports(g, table) == ["geohelpers.stages.vaes (3) imports geohelpers.selection (4)"]
