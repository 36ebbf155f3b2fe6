"""The package's import graph, read from the source: ``python -m wsframe.tools.layers``.

Every ``import`` of a wsframe module counts, including those inside
functions (lazy imports). ``tests/test_layers.py`` checks the graph against
the layer rules and for cycles; ``--mermaid`` prints the layer picture that
``docs/architecture.md`` shows (a test keeps the two equal).
"""
from __future__ import annotations

import argparse
import ast
import pathlib
import sys
from typing import Optional, Sequence

__all__ = ["PACKAGE", "modules", "import_graph", "layer_of", "layer_graph", "mermaid"]

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
BASE = {"errors", "_version", "_compiled"}   # shared by every layer
TOP = {"wsframe", "wsframe.__main__"}        # the public face


def modules(package: pathlib.Path = PACKAGE) -> dict[str, pathlib.Path]:
    """Dotted module name -> source file, for every module of the package."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(known: dict, target: str) -> str:
    if target in known:
        return target
    parent = target.rsplit(".", 1)[0]
    return parent if parent in known else target


def imports_of(module: str, known: dict[str, pathlib.Path]) -> set[str]:
    """The wsframe modules that ``module`` imports, at the top or inside functions."""
    path = known[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            if origin == "wsframe" or origin.startswith("wsframe."):
                found.update(_resolve(known, f"{origin}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("wsframe."))
    found.discard(module)
    return {name for name in found if name in known or name.startswith("wsframe._compiled")}


def import_graph(known: Optional[dict] = None) -> dict[str, set[str]]:
    known = known if known is not None else modules()
    return {module: imports_of(module, known) for module in known}


def layer_of(module: str) -> str:
    """``base``, ``top``, or the sub-package: ``codec``, ``sansio``, ``loop`` ..."""
    if module in TOP:
        return "top"
    part = module.split(".")[1]
    return "base" if part in BASE else part


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which layer imports which (the base and the public face left out)."""
    layers: dict[str, set[str]] = {}
    for module, deps in graph.items():
        layer = layer_of(module)
        if layer in ("top", "base"):
            continue
        layers.setdefault(layer, set()).update(
            layer_of(d) for d in deps if layer_of(d) not in (layer, "base", "top"))
    return layers


def _reduced(layers: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop the edges implied by others (A->C when A->B->C): the picture stays readable."""
    def reach(start: str) -> set[str]:
        seen, todo = set(), list(layers.get(start, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(layers.get(node, ()))
        return seen
    return {layer: {d for d in deps if d not in set().union(
        *(reach(other) for other in deps if other != d))} for layer, deps in layers.items()}


def mermaid(graph: Optional[dict] = None) -> str:
    """The layers as a Mermaid graph (arrows point from importer to imported)."""
    layers = _reduced(layer_graph(graph if graph is not None else import_graph()))
    lines = ["graph TD"]
    for layer in sorted(layers):
        deps = sorted(layers[layer])
        lines += [f"    {layer} --> {dep}" for dep in deps] or [f"    {layer}"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsframe.tools.layers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", action="store_true", help="the layer picture only")
    args = parser.parse_args(argv)
    graph = import_graph()
    if args.mermaid:
        print(mermaid(graph))
        return 0
    for module in sorted(graph):
        deps = ", ".join(sorted(graph[module])) or "-"
        print(f"{module} ({layer_of(module)}): {deps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
