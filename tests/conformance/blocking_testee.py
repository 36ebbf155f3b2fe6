"""A minimal blocking Autobahn testee on the sans-IO core (no event loop).

    python tests/conformance/blocking_testee.py server PORT
    python tests/conformance/blocking_testee.py client URL AGENT

The server echoes every message on a thread per connection; the client runs
the fuzzing server's cases one by one. Limits are raised to 16 MiB because
the suite's own messages go that high (wsframe's defaults are 1 MiB);
the other limits follow from it.
It exists to test the protocol core apart from the event loop.
"""
import socket
import sys
import threading
from urllib.parse import urlsplit

from wsframe.sansio import events as ev
from wsframe.sansio.roles import ClientProtocol, ServerProtocol
from wsframe.sansio.protocol import Limits

LIMITS = Limits(max_message_size=16 << 20, max_frame_size=16 << 20)  # the fragment cap follows


def pump(sock, conn, on_event):
    """Read, feed, handle events, write; until the connection should close."""
    while True:
        data = conn.data_to_send()
        if data:
            sock.sendall(data)
        if conn.close_tcp:
            return
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if chunk:
            conn.receive_data(chunk)
        else:
            conn.receive_eof()
        for event in conn.events():
            on_event(conn, event)
        if not chunk:
            sock.sendall(conn.data_to_send())
            return


def echo(conn, event):
    if isinstance(event, ev.RequestReceived):
        conn.accept()
    elif isinstance(event, (ev.TextMessage, ev.BinaryMessage)) and conn.state == 1:
        conn.send(event.data)


def serve(port):
    listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


def handle(sock):
    with sock:
        pump(sock, ServerProtocol(limits=LIMITS), echo)


def run_client(url, target, on_event=echo):
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        conn = ClientProtocol(f"{parts.hostname}:{parts.port}", target, limits=LIMITS)
        received = []

        def handler(conn, event):
            if isinstance(event, (ev.TextMessage, ev.BinaryMessage)):
                received.append(event.data)
                if conn.state == 1 and on_event is echo:
                    conn.send(event.data)
        pump(sock, conn, handler)
        return received


def client(url, agent):
    count = int(run_client(url, "/getCaseCount")[0])
    for case in range(1, count + 1):
        run_client(url, f"/runCase?case={case}&agent={agent}")
    run_client(url, f"/updateReports?agent={agent}")


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        client(sys.argv[2], sys.argv[3])
