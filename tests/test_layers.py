"""Imports point only down the layers, and no two modules import each other.

The layers, bottom up (docs/architecture.md): the shared base (errors,
events), ``codec/``, ``sansio/``, ``loop/``, then ``server/`` and ``client/``
side by side, then the tools, and the package's public face on top. Every
``import`` counts, including those inside functions (lazy imports): a lazy
import of a higher layer is still a dependency on it.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "wsframe"

BASE = {"errors", "events", "_version", "_compiled"}
#: What each layer (a sub-package, or a base module) may import from wsframe.
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "codec": {"base", "codec"},
    "sansio": {"base", "codec", "sansio"},
    "loop": {"base", "loop", "codec"},   # the codec package only for the compiled/pure switch
    "server": {"base", "codec", "sansio", "loop", "server"},
    "client": {"base", "codec", "sansio", "loop", "client"},
    "cluster": {"base", "codec", "sansio", "loop", "server", "cluster"},
    "backplane": {"base", "codec", "sansio", "loop", "server", "cluster", "backplane"},
    "delivery": {"base", "codec", "sansio", "loop", "server", "client", "cluster", "backplane",
                 "delivery"},
    "asgi": {"base", "codec", "sansio", "asyncio", "asgi"},
    "asyncio": {"base", "codec", "sansio", "asyncio"},
    "tools": {"base", "codec", "sansio", "loop", "server", "client", "cluster", "backplane",
              "delivery", "asgi", "asyncio", "tools"},
}
TOP = {"wsframe", "wsframe.__main__"}  # the public face may import anything


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module in TOP:
        return "top"
    if parts[1] in BASE:
        return "base"
    return parts[1]


def resolve(module: str, target: str) -> str:
    """The wsframe module that an import names (a submodule if it is one)."""
    if target in MODULES:
        return target
    parent = target.rsplit(".", 1)[0]
    return parent if parent in MODULES else target


def imports_of(module: str) -> set[str]:
    """Every wsframe module that ``module`` imports, at the top or inside functions."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            if origin != "wsframe" and not origin.startswith("wsframe."):
                continue
            for alias in node.names:
                found.add(resolve(module, f"{origin}.{alias.name}"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("wsframe."))
    found.discard(module)
    return {name for name in found if name in MODULES or name.startswith("wsframe._compiled")}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    unknown = {m for m in MODULES if layer_of(m) not in ALLOWED and layer_of(m) != "top"}
    assert not unknown, f"modules outside the known layers: {unknown}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in TOP))
def test_imports_point_down(module):
    allowed = ALLOWED[layer_of(module)]
    wrong = {dep for dep in GRAPH[module] if layer_of(dep) not in allowed}
    assert not wrong, f"{module} ({layer_of(module)}) imports {wrong} from a higher layer"


def test_the_loop_uses_the_codec_only_for_the_switch():
    # the loop never parses: of the codec it may use the compiled/pure switch and nothing else
    for module in MODULES:
        if layer_of(module) == "loop":
            codec = {dep for dep in GRAPH[module] if layer_of(dep) == "codec"}
            assert codec <= {"wsframe.codec"}, f"{module} imports {codec}"


def test_the_engine_never_imports_a_tool():
    for module in MODULES:
        if layer_of(module) not in ("tools", "top"):
            assert not {d for d in GRAPH[module] if layer_of(d) == "tools"}, module


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_the_cycle_check_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
