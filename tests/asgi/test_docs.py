"""The examples in the docs run as written: the FastAPI app, and the sans-IO embedder server."""
import asyncio
import pathlib
import re
import types

import pytest

import wsframe.asyncio as wsa
from wsframe.errors import ConnectionClosed, InvalidResponse

from tests.asgi.helpers import running_uvicorn

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def example(page: str, first_line: str) -> types.ModuleType:
    """The ```python block of ``page`` that starts with ``first_line``, as a module."""
    text = (DOCS / page).read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if block.startswith(first_line):
            module = types.ModuleType(f"docs_example_{page.replace('/', '_')}")
            exec(compile(block, str(DOCS / page), "exec"), module.__dict__)
            return module
    raise AssertionError(f"no example starting {first_line!r} in {page}")


async def until(ws, text: str) -> None:
    while await ws.recv() != text:
        pass


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_the_fastapi_example(http):
    app = example("howto/asgi.md", '"""A FastAPI app').app

    async def main():
        async with running_uvicorn(app, http=http) as (_, port):
            url = f"ws://127.0.0.1:{port}"
            async with wsa.connect(f"{url}/echo") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
            with pytest.raises(InvalidResponse) as refused:
                await wsa.connect(f"{url}/room")
            assert refused.value.status == 401
            async with wsa.connect(f"{url}/room?token=secret", subprotocols=["chat"]) as a, \
                    wsa.connect(f"{url}/room?token=secret") as b:
                assert a.subprotocol == "chat" and b.subprotocol is None
                await a.send("a here")
                await until(a, "a here")  # a is a member
                await b.send("b here")
                await until(b, "b here")  # b is one too (it may have seen "a here" first)
                await until(a, "b here")
                await a.send("hi all")
                assert await a.recv() == "hi all" and await b.recv() == "hi all"
    asyncio.run(main())


def test_the_sansio_embedder_example():
    module = example("howto/embedding.md", '"""A minimal asyncio WebSocket server')

    async def main():
        server = await asyncio.start_server(module.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with wsa.connect(f"ws://127.0.0.1:{port}/echo?token=secret") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send("stream")
            assert await ws.recv() == "stream: one two three"
        with pytest.raises(InvalidResponse) as refused:
            await wsa.connect(f"ws://127.0.0.1:{port}/echo")
        assert refused.value.status == 401
        async with wsa.connect(f"ws://127.0.0.1:{port}/echo?token=secret") as ws:
            await ws.send(b"x" * 70_000)  # over the example's 64 KiB limit
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.code == 1009
        server.close()
        await server.wait_closed()
    asyncio.run(main())
