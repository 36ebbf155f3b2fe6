"""wsframe.asyncio: connect() and serve() on the default loop and on uvloop, and with websockets."""
import asyncio
import logging

import pytest
import uvloop
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

import wsframe.asyncio as wsa
from wsframe.errors import ConnectionClosed, InvalidHandshake, InvalidResponse


def run(main, loop_kind):
    if loop_kind == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


LOOPS = ["asyncio", "uvloop"]


async def echo(ws):
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_echo_both_ways(loop_kind):
    async def main():
        async with wsa.serve(echo, "127.0.0.1", 0) as server:
            async with wsa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("κόσμε")
                assert await ws.recv() == "κόσμε"
                await ws.send(b"\x01" * 200_000)
                assert await ws.recv() == b"\x01" * 200_000
                await ws.send_fragments([b"ab", b"cd", b"ef"])
                assert await ws.recv() == b"abcdef"
                await ws.ping(b"x")
            assert ws.close_code == 1000 and not ws.open
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.send("late")
    run(main, loop_kind)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_routes_and_refusals(loop_kind):
    async def hello(ws):
        await ws.send(f"hello {ws.request.query}")

    def only_with_token(request):
        return None if "token" in request.query else (403, "token needed")

    async def main():
        async with wsa.serve({"/hello": hello}, "127.0.0.1", 0,
                             process_request=only_with_token) as server:
            url = f"ws://127.0.0.1:{server.port}"
            async with wsa.connect(f"{url}/hello?token=1") as ws:
                assert await ws.recv() == "hello token=1"
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()  # the handler returned: closed with 1000
                assert closed.value.code == 1000
            with pytest.raises(InvalidResponse) as refused:
                await wsa.connect(f"{url}/nowhere?token=1")
            assert refused.value.status == 404
            with pytest.raises(InvalidResponse) as refused:
                await wsa.connect(f"{url}/hello")
            assert refused.value.status == 403
    run(main, loop_kind)


def test_a_failing_handler_closes_with_1011_and_the_server_goes_on(caplog):
    async def broken(ws):
        raise ValueError("bug")

    async def main():
        async with wsa.serve(broken, "127.0.0.1", 0) as server:
            for _ in range(2):
                async with wsa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.recv()
                    assert closed.value.code == 1011
    with caplog.at_level(logging.ERROR, "wsframe.asyncio"):
        asyncio.run(main())
    assert "ValueError: bug" in caplog.text


def test_server_close_says_going_away():
    async def main():
        entered = asyncio.Event()

        async def wait(ws):
            entered.set()
            await ws.wait_closed()

        server = await wsa.serve(wait, "127.0.0.1", 0)
        ws = await wsa.connect(f"ws://127.0.0.1:{server.port}/")
        await entered.wait()
        server.close()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.code == 1001  # §7.4.1
        await server.wait_closed()
        await ws.wait_closed()
    asyncio.run(main())


def test_limits_and_heartbeat_apply():
    from wsframe.sansio.protocol import Limits

    async def main():
        async with wsa.serve(echo, "127.0.0.1", 0,
                             limits=Limits(max_message_size=100, max_frame_size=100)) as server:
            async with wsa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send(b"x" * 101)
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.code == 1009
        # a peer that never answers Pings: the client times it out with 1011
        async with wsa.serve(echo, "127.0.0.1", 0) as server:
            async with wsa.connect(f"ws://127.0.0.1:{server.port}/", ping_interval=30,
                                   ping_timeout=30) as ws:
                ws.ping_timer.cancel()
                ws._send_ping()           # what the timer does after ping_interval
                ws._ping_timed_out()      # ... and after ping_timeout without the Pong
                assert ws.close_code == 1011
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
    asyncio.run(main())


def test_reading_pauses_at_max_queue():
    big = b"m" * 65536

    async def main():
        sent = asyncio.Event()

        async def burst(ws):
            for i in range(100):
                await ws.send(bytes([i]) + big)  # blocks once the client stops reading
            sent.set()
            await ws.wait_closed()

        async with wsa.serve(burst, "127.0.0.1", 0) as server:
            async with wsa.connect(f"ws://127.0.0.1:{server.port}/", max_queue=3,
                                   deflate=None) as ws:
                while not ws._read_paused:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)  # the server keeps trying to send meanwhile
                # one read may bring a few more than max_queue, never the whole burst
                assert 3 <= ws._queued_messages < 10 and not sent.is_set()
                received = [await ws.recv() for _ in range(100)]
                assert [m[0] for m in received] == list(range(100))
                await sent.wait()
                assert not ws._read_paused
    asyncio.run(main())


def test_handshake_failures_are_clear():
    async def main():
        async def not_websocket(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        plain = await asyncio.start_server(not_websocket, "127.0.0.1", 0)
        port = plain.sockets[0].getsockname()[1]
        with pytest.raises(InvalidResponse):
            await wsa.connect(f"ws://127.0.0.1:{port}/")

        async def hang_up(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        plain.close()
        plain = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = plain.sockets[0].getsockname()[1]
        with pytest.raises(InvalidHandshake):
            await wsa.connect(f"ws://127.0.0.1:{port}/")
        plain.close()
        with pytest.raises(ValueError):
            await wsa.connect("http://127.0.0.1/")
    asyncio.run(main())


def test_interoperates_with_websockets():
    async def ws_echo(connection):
        async for message in connection:
            await connection.send(message)

    async def main():
        async with ws_serve(ws_echo, "127.0.0.1", 0) as theirs:
            port = theirs.sockets[0].getsockname()[1]
            async with wsa.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert ws.proto.deflate is not None
                await ws.send("x" * 5000)
                assert await ws.recv() == "x" * 5000
        async with wsa.serve(echo, "127.0.0.1", 0) as ours:
            async with ws_connect(f"ws://127.0.0.1:{ours.port}/") as client:
                await client.send(b"y" * 5000)
                assert await client.recv() == b"y" * 5000
                await client.close(4001, "done")
            assert client.close_code == 4001
    asyncio.run(main())
    assert websockets.__version__


def test_wss_with_certificate_verification():
    import ssl

    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def main():
        async with wsa.serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
            async with wsa.connect(f"wss://localhost:{server.port}/", ssl=client_context) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"
            with pytest.raises(ssl.SSLCertVerificationError):
                await wsa.connect(f"wss://localhost:{server.port}/")  # the system's CAs only
    asyncio.run(main())


def test_rooms_broadcast_to_every_member():
    from wsframe.asyncio import Room

    async def chat(ws):
        room = ws.server.rooms.get_or_create(ws.request.path)
        room.add(ws)
        try:
            await ws.send(f"joined {len(room)}")
            async for message in ws:
                assert room.broadcast(message).sent == len(room)
        finally:
            room.discard(ws)

    async def main():
        async with wsa.serve(chat, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}/room/a"
            async with wsa.connect(url) as a, wsa.connect(url, deflate=None) as b:
                assert await a.recv() == "joined 1" and await b.recv() == "joined 2"
                assert a.proto.deflate is not None and b.proto.deflate is None
                await a.send("x" * 300)          # compressed for a, plain for b
                assert await a.recv() == "x" * 300 and await b.recv() == "x" * 300
                await b.send(b"\x01\x02")
                assert await a.recv() == b"\x01\x02" and await b.recv() == b"\x01\x02"
                assert len(server.rooms) == 1
            for _ in range(100):  # the handlers finish after the clients closed
                if not len(server.rooms):
                    break
                await asyncio.sleep(0.01)
            assert len(server.rooms) == 0  # an empty room is dropped

        room = Room("lonely")
        assert room.broadcast("nobody") == (0, 0)
    asyncio.run(main())
