"""wsframe.asgi.WebSocketProtocol: under a real uvicorn, and driven by hand on a fake transport."""
import asyncio

import pytest
import uvloop

import wsframe.asyncio as wsa
from wsframe.asgi import Disconnected, WebSocketProtocol
from wsframe.errors import ConnectionClosed, InvalidResponse
from wsframe import codec
from wsframe.codec.frames import OP_TEXT
from wsframe.sansio.events import Accepted, BinaryMessage, CloseReceived, Closed, TextMessage
from wsframe.sansio.roles import ClientProtocol

from tests.asgi import echo_app as echo_app_module
from tests.asgi.helpers import make_protocol, running_uvicorn


async def echo_app(scope, receive, send):
    """Echo, and report the scope in the first message."""
    assert scope["type"] == "websocket"
    message = await receive()
    assert message["type"] == "websocket.connect"
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-app", b"yes")]})
    await send({"type": "websocket.send",
                "text": f"{scope['path']}|{scope['raw_path'].decode()}|"
                        f"{scope['query_string'].decode()}|{scope['client'][0]}"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.mark.parametrize("http,loop", [("h11", "asyncio"), ("httptools", "uvloop")])
def test_echo_through_uvicorn(http, loop):
    async def main():
        async with running_uvicorn(echo_app, http=http) as (_, port):
            url = f"ws://127.0.0.1:{port}/a%2Fb?x=1"
            async with wsa.connect(url, subprotocols=["chat"]) as ws:
                assert await ws.recv() == "/a/b|/a%2Fb|x=1|127.0.0.1"
                assert ws.subprotocol == "chat"
                assert ws.response_headers.get("x-app") == "yes"
                assert ws.response_headers.get("server") == "uvicorn"
                assert ws.proto.deflate is not None  # ws_per_message_deflate defaults on
                await ws.send("κόσμε")
                assert await ws.recv() == "κόσμε"
                await ws.send(b"\x00" * 300_000)
                assert await ws.recv() == b"\x00" * 300_000
            assert ws.close_code == 1000
    uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())


def test_uvicorn_settings_apply():
    async def main():
        async with running_uvicorn(echo_app, ws_max_size=1000, ws_per_message_deflate=False) \
                as (_, port):
            async with wsa.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.recv()
                assert ws.proto.deflate is None
                await ws.send(b"x" * 1000)
                assert await ws.recv() == b"x" * 1000
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.code == 1009  # §7.4.1: message too big
    asyncio.run(main())


async def deny_app(scope, receive, send):
    await receive()
    await send({"type": "websocket.http.response.start", "status": 418,
                "headers": [(b"content-type", b"application/json"), (b"x-why", b"teapot")]})
    await send({"type": "websocket.http.response.body", "body": b'{"a":', "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"1}"})


def test_denial_response_extension():
    async def main():
        async with running_uvicorn(deny_app) as (_, port):
            with pytest.raises(InvalidResponse) as refused:
                await wsa.connect(f"ws://127.0.0.1:{port}/")
            assert refused.value.status == 418
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
            raw = await asyncio.wait_for(reader.read(), 5)  # read to EOF: the server closes
            writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 418 ")
            assert b"content-type: application/json" in head and b"x-why: teapot" in head
            assert b"Transfer-Encoding: chunked" in head  # two pieces, no length given
            assert body == b"5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n"
    asyncio.run(main())


# ---- driven by hand: what a fake transport sees -------------------------------------------


def handshake(protocol, client: ClientProtocol, extra: bytes = b""):
    protocol.data_received(client.data_to_send() + extra)


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_bytes_after_the_replayed_head_are_kept():
    received = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())

    async def main():
        protocol, transport, state = make_protocol(app)
        client = ClientProtocol("127.0.0.1", "/")
        frame = codec.client_frame(OP_TEXT, b"early")  # the client is not open yet: by hand
        handshake(protocol, client, frame)  # head and a frame in the same read
        await asyncio.gather(*state.tasks)
        assert received == [{"type": "websocket.receive", "text": "early"}]
    asyncio.run(main())


def test_max_queue_pauses_reading_until_the_app_takes_messages():
    async def main():
        go = asyncio.Event()
        got = []

        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            await go.wait()
            got.append(await receive())

        protocol, transport, state = make_protocol(app, ws_max_queue=2)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await settle()
        client.receive_data(transport.buffer)
        assert isinstance(client.events()[0], Accepted)
        client.send("one")
        protocol.data_received(client.data_to_send())
        assert not transport.reading_paused
        client.send("two")
        protocol.data_received(client.data_to_send())
        assert transport.reading_paused  # two messages wait: the peer is slowed down
        go.set()
        await settle()
        assert got == [{"type": "websocket.receive", "text": "one"}]
        assert not transport.reading_paused
        protocol.connection_lost(None)
        await asyncio.gather(*state.tasks)
    asyncio.run(main())


def test_shutdown_closes_with_1012_or_500_before_the_handshake():
    async def waiting_app(scope, receive, send):
        message = await receive()
        if scope["path"] == "/open":
            await send({"type": "websocket.accept"})
            message = await receive()
            assert message == {"type": "websocket.disconnect", "code": 1012}
        else:
            await asyncio.sleep(3600)  # never answers; cancelled at the end

    async def main():
        protocol, transport, state = make_protocol(waiting_app)
        client = ClientProtocol("127.0.0.1", "/open", deflate=None)
        handshake(protocol, client)
        await settle()
        protocol.shutdown()
        client.receive_data(transport.buffer)
        events = client.events()
        assert isinstance(events[0], Accepted) and events[-1] == Closed(1012, "")
        assert transport.closed
        await asyncio.gather(*state.tasks)

        protocol, transport, state = make_protocol(waiting_app)
        handshake(protocol, ClientProtocol("127.0.0.1", "/slow"))
        await settle()
        protocol.shutdown()
        assert transport.buffer.startswith(b"HTTP/1.1 500 ") and transport.closed
        for task in state.tasks:
            task.cancel()
    asyncio.run(main())


def test_keepalive_timeout_fails_with_1011():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["code"] == 1011

    async def main():
        protocol, transport, state = make_protocol(app, ws_ping_interval=30, ws_ping_timeout=30)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await settle()
        assert protocol.ping_timer is not None
        protocol.ping_timer.cancel()
        protocol._send_ping()          # what the timer does after ping_interval
        assert protocol.pong_timer is not None
        protocol._ping_timed_out()     # what the timer does after ping_timeout, no Pong came
        client.receive_data(transport.buffer)
        assert client.events()[-1] == Closed(1011, "keepalive ping timeout")
        assert transport.closed
        await asyncio.gather(*state.tasks)
    asyncio.run(main())


def test_a_pong_keeps_the_connection():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    async def main():
        protocol, transport, state = make_protocol(app, ws_ping_interval=30, ws_ping_timeout=30)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await settle()
        protocol.ping_timer.cancel()
        protocol._send_ping()
        client.receive_data(transport.buffer)  # the client answers the Ping (§5.5.2)
        protocol.data_received(client.data_to_send())
        assert protocol.pong_timer is None and protocol.ping_timer is not None
        protocol.connection_lost(None)
        await asyncio.gather(*state.tasks)
        assert protocol.ping_timer is None
    asyncio.run(main())


def test_send_after_the_peer_closed_raises_an_ioerror_and_close_before_accept_is_403():
    outcome = []

    async def app(scope, receive, send):
        await receive()
        if scope["path"] == "/deny":
            await send({"type": "websocket.close"})
            outcome.append(await receive())
            return
        await send({"type": "websocket.accept"})
        outcome.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "late"})
        except OSError as exc:
            outcome.append(type(exc))

    async def main():
        protocol, transport, state = make_protocol(app)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await settle()
        client.receive_data(transport.buffer)
        client.close(1001, "bye")
        protocol.data_received(client.data_to_send())
        await asyncio.gather(*state.tasks)
        assert outcome == [{"type": "websocket.disconnect", "code": 1001, "reason": "bye"},
                           Disconnected]
        outcome.clear()

        protocol, transport, state = make_protocol(app)
        handshake(protocol, ClientProtocol("127.0.0.1", "/deny"))
        await asyncio.gather(*state.tasks)
        assert transport.buffer.startswith(b"HTTP/1.1 403 ") and transport.closed
        assert outcome == [{"type": "websocket.disconnect", "code": 1006}]
    asyncio.run(main())


def test_app_close_waits_for_the_peer_close():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"last"})
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        with pytest.raises(RuntimeError):
            await send({"type": "websocket.send", "text": "after close"})

    async def main():
        protocol, transport, state = make_protocol(app)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await asyncio.gather(*state.tasks)
        assert not transport.closed and protocol.close_timer is not None
        client.receive_data(transport.buffer)
        assert client.events()[1:] == [BinaryMessage(b"last"), CloseReceived(4000, "done"),
                                       Closed(4000, "done")]
        protocol.data_received(client.data_to_send())  # the client's answering Close
        assert transport.closed and protocol.close_timer is None
        assert isinstance(protocol, WebSocketProtocol)
    asyncio.run(main())


def test_answers_to_messages_before_a_bad_frame_go_out_before_the_close():
    async def main():
        protocol, transport, state = make_protocol(echo_app_module.app)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await settle()
        client.receive_data(transport.buffer)
        client.events()
        transport.buffer = b""
        client.send("first")
        protocol.data_received(client.data_to_send() + b"\x83\x80abcd")  # opcode 3: reserved
        assert transport.buffer == b""  # the Close waits for the app's answer to "first"
        await asyncio.gather(*state.tasks)
        client.receive_data(transport.buffer)
        events = client.events()
        assert events[0] == TextMessage("first") and events[-1].code == 1002
        assert transport.closed
    asyncio.run(main())


def test_a_bad_frame_in_a_later_read_waits_for_the_answer_being_made():
    # The message arrives in one read and the app takes it; the bad frame comes in the
    # next read while the app is still answering (awaiting something): before, the Close
    # went out first (Autobahn 3.2, 4.1.3, 5.15 NON-STRICT through uvicorn under load).
    async def slow_echo(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await asyncio.sleep(0.05)  # the answer takes a while
            await send({"type": "websocket.send", "text": message["text"]})

    async def main():
        protocol, transport, state = make_protocol(slow_echo)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await settle()
        client.receive_data(transport.buffer)
        client.events()
        transport.buffer = b""
        client.send("first")
        protocol.data_received(client.data_to_send())
        await asyncio.sleep(0.01)                   # the app has taken "first"
        protocol.data_received(b"\x83\x80abcd")    # opcode 3: reserved (§5.2)
        assert transport.buffer == b""
        await asyncio.gather(*state.tasks)
        client.receive_data(transport.buffer)
        events = client.events()
        assert events[0] == TextMessage("first") and events[-1].code == 1002
    asyncio.run(main())


def test_messages_sent_in_one_turn_leave_in_one_write():
    writes = []  # the transport's write count at points of the app

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        writes.append(transports[0].writes)                  # the 101
        for i in range(3):
            await send({"type": "websocket.send", "text": str(i)})
        await asyncio.sleep(0)
        writes.append(transports[0].writes)                  # 3 messages: one write
        for i in range(40):
            await send({"type": "websocket.send", "bytes": b"x"})
        writes.append(transports[0].writes)                  # 32 at once, 8 still held
        await asyncio.sleep(0)
        writes.append(transports[0].writes)                  # ... then the other 8
        await send({"type": "websocket.send", "bytes": b"y" * 20000})
        writes.append(transports[0].writes)                  # a large one at once

    transports = []

    async def main():
        protocol, transport, state = make_protocol(app)
        transports.append(transport)
        client = ClientProtocol("127.0.0.1", "/", deflate=None)
        handshake(protocol, client)
        await asyncio.gather(*state.tasks)
        first = writes[0]
        assert writes == [first, first + 1, first + 2, first + 3, first + 4]
        client.receive_data(transport.buffer)
        events = client.events()
        assert [e.data for e in events[1:4]] == ["0", "1", "2"] and len(events) == 1 + 3 + 40 + 1
    asyncio.run(main())
