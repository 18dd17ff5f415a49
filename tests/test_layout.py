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
