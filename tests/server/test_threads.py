"""What other threads may do: publish to rooms, and run loops of their own."""
import threading
import zlib

from wsframe.client.blocking import connect
from wsframe.codec.permessage_deflate import Agreement
from wsframe.sansio.protocol import Protocol, shared_deflater
from wsframe.server.apps import install_builtin_app
from tests.helpers import running_server, wait_for

THREADS, EACH = 4, 300


def test_publish_from_many_threads_at_once_reaches_every_member_in_order():
    with running_server(install_builtin_app) as (server, port):
        members = [connect(f"ws://127.0.0.1:{port}/room/order-7") for _ in range(3)]
        assert wait_for(lambda: (r := server.rooms.get("order-7")) is not None and len(r) == 3)

        def publisher(thread: int) -> None:
            buffer = bytearray()
            for i in range(EACH):
                if i % 2:
                    server.publish("order-7", f"{thread}:{i}")
                else:
                    buffer[:] = f"{thread}:{i}".encode()
                    server.publish("order-7", buffer, text=True)  # copied at the call
        threads = [threading.Thread(target=publisher, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for ws in members:
            got = [ws.recv(timeout=10) for _ in range(THREADS * EACH)]
            for thread in range(THREADS):
                mine = [int(m.split(":")[1]) for m in got if m.startswith(f"{thread}:")]
                assert mine == list(range(EACH))
            ws.close()
        server.publish("nobody-here", "x")  # a room without members: nothing, no error


def test_shared_compressors_are_per_thread_and_stay_correct_under_concurrency():
    agreement = Agreement(server_no_context_takeover=True, client_no_context_takeover=True,
                          server_max_window_bits=15, client_max_window_bits=15, level=-1,
                          mem_level=8, threshold=0)
    seen, errors, held = set(), [], []

    def compress_many(tag: int) -> None:
        proto = Protocol(False, deflate=agreement)
        seen.add(id(shared_deflater(15, 8, -1)))
        held.append(shared_deflater(15, 8, -1))  # alive, so ids cannot be reused
        payload = (f"thread {tag} " * 20000).encode()
        for _ in range(30):
            out = proto.compress(payload)
            if zlib.decompressobj(-15).decompress(out + b"\x00\x00\xff\xff") != payload:
                errors.append(tag)
    threads = [threading.Thread(target=compress_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(seen) == 4
