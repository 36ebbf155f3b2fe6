"""Serve ``wsframe.js``, the browser client of ``wsframe.v1``, and its type definitions.

``wsframe serve`` calls :func:`install_browser_client` on every server it
runs, so a page on it can ``import { WsFrame } from "/wsframe.js"``. An
application embedding wsframe calls it on its own :class:`Server`.
"""
from __future__ import annotations

from importlib import resources

from wsframe.server.server import HttpResponse, Server

__all__ = ["install_browser_client", "browser_client_source", "JS_PATH", "DTS_PATH"]

JS_PATH = "/wsframe.js"
DTS_PATH = "/wsframe.d.ts"
_FILES = {"wsframe.js": "text/javascript; charset=utf-8",   # module scripts need a JS type
          "wsframe.d.ts": "text/plain; charset=utf-8"}


def browser_client_source(name: str = "wsframe.js") -> bytes:
    """The bytes of ``wsframe.js`` or ``wsframe.d.ts``, as shipped in the package."""
    if name not in _FILES:
        raise ValueError(f"no such file: {name!r} (one of {', '.join(_FILES)})")
    return resources.files(__package__).joinpath("static", name).read_bytes()


def install_browser_client(server: Server, js_path: str = JS_PATH,
                           dts_path: str = DTS_PATH) -> None:
    """Answer ``GET js_path`` with wsframe.js and ``GET dts_path`` with wsframe.d.ts,
    unless the application already serves something on those paths."""
    for path, name in ((js_path, "wsframe.js"), (dts_path, "wsframe.d.ts")):
        if path in server.http_routes:
            continue
        response = HttpResponse(200, browser_client_source(name), _FILES[name],
                                (("Cache-Control", "no-cache"),))
        server.http(path, lambda request, response=response: response)
