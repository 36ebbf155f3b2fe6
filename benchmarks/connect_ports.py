"""How long ``connect()`` takes as one source address fills the ephemeral port range.

    python benchmarks/connect_ports.py --count 16000 --source 127.0.0.77

Opens ``--count`` non-blocking connections from one source address (bound
with ``IP_BIND_ADDRESS_NO_PORT``, as the load engine does) to one loopback
listener that never accepts (its backlog holds them), and prints the mean
time per ``connect()`` call and the share of odd ports for every 1,000. On
Linux >= 4.6 the kernel hands out ports of one parity first; once that half
of ``ip_local_port_range`` is used, each further call walks it first and
costs some 40 times more (RESULTS.md, *Workers*). Every socket is closed at
the end; the fd limit must allow ``--count`` + a few.
"""
from __future__ import annotations

import argparse
import resource
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=16000)
    parser.add_argument("--source", default="127.0.0.77", help="a loopback address")
    parser.add_argument("--step", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.count + 16:
        print(f"error: the fd limit ({hard}) is below --count + 16")
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, args.count + 16), hard))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(min(65535, args.count + 1))   # the kernel caps it at somaxconn
    port = listener.getsockname()[1]
    socks: list[socket.socket] = []
    try:
        start = time.perf_counter()
        for i in range(args.count):
            sock = socket.socket()
            socks.append(sock)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((args.source, 0))
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError as exc:
                print(f"{i + 1}: connect failed: {exc}")
                return 1
            if (i + 1) % args.step == 0:
                now = time.perf_counter()
                batch = socks[-args.step:]
                odd = sum(s.getsockname()[1] % 2 for s in batch)
                print(f"{i + 1:>7,}: {1e6 * (now - start) / args.step:7.1f} us per connect(), "
                      f"odd ports {odd}/{args.step}", flush=True)
                start = time.perf_counter()
    finally:
        for sock in socks:
            sock.close()
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
