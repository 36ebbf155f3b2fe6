"""Imports point only down the layers (docs/architecture.md)."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "wsframe"

CODEC = {"frames", "masking", "utf8", "deflate", "close", "http", "handshake",
         "permessage_deflate", "errors", "codec", "_version"}
PROTOCOL = {"protocol", "connection", "events"}
LOOP = {"loop"}
# What each layer may import from wsframe.
ALLOWED = {
    **{name: CODEC for name in CODEC},
    **{name: CODEC | PROTOCOL for name in PROTOCOL},
    "loop": set(),
}


def wsframe_imports(module: str) -> set:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("wsframe."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("wsframe."))
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_imports_point_down(module):
    extra = wsframe_imports(module) - ALLOWED[module] - {module, "_compiled"}
    assert not extra, f"{module} imports {extra} from a higher layer"


def test_the_loop_never_parses():
    # only the compiled fan-out writer (bytes to fds), nothing of the codec or protocol
    assert wsframe_imports("loop") <= {"_compiled"}
