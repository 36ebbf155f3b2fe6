"""Imports point only down the layers, and no two modules import each other.

The layers, bottom up (docs/architecture.md): the shared base (errors,
events), ``codec/``, ``sansio/``, ``loop/``, then ``server/`` and ``client/``
side by side, then the tools, and the package's public face on top. Every
``import`` counts, including those inside functions (lazy imports): a lazy
import of a higher layer is still a dependency on it.
"""
from __future__ import annotations

import pathlib

import pytest

from wsframe.tools import layers

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

#: What each layer (a sub-package, or the base modules) may import from wsframe.
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "codec": {"base", "codec"},
    "sansio": {"base", "codec", "sansio"},
    "loop": {"base", "loop", "codec"},   # the codec package only for the compiled/pure switch
    "backplane": {"base", "loop", "backplane"},   # a Redis client on the loop; rooms use it
    "server": {"base", "codec", "sansio", "loop", "backplane", "server"},
    "client": {"base", "codec", "sansio", "loop", "client"},
    "cluster": {"base", "codec", "sansio", "loop", "backplane", "server", "cluster"},
    "delivery": {"base", "codec", "sansio", "loop", "server", "client", "cluster", "backplane",
                 "delivery"},
    "asgi": {"base", "codec", "sansio", "asyncio", "asgi"},
    "asyncio": {"base", "codec", "sansio", "asyncio"},
    "tools": {"base", "codec", "sansio", "loop", "server", "client", "cluster", "backplane",
              "delivery", "asgi", "asyncio", "tools"},
}

MODULES = layers.modules()
GRAPH = layers.import_graph(MODULES)
TOP = layers.TOP
layer_of = layers.layer_of


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


def test_the_architecture_page_shows_the_real_imports():
    # docs/architecture.md draws the layers from `python -m wsframe.tools.layers --mermaid`
    text = DOCS.read_text()
    start = text.index("```mermaid\n") + len("```mermaid\n")
    assert text[start:text.index("```", start)].strip() == layers.mermaid(GRAPH)
