"""The ``wsframe`` command line (also ``python -m wsframe``).

    wsframe serve [APP] [--workers N|auto] [--host 127.0.0.1] [--port 8765] [--demo] ...
    wsframe serve --gateway --redis URL [--gateway-maxlen N] ...
    wsframe connect URL [--echo]
    wsframe explain HEX... | --handshake KEY | --head
    wsframe bench capacity|echo|broadcast [URL] ...
    wsframe --version
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from wsframe._version import __version__
from wsframe.codec import SPEEDUPS_DISABLED_BY_ENV, speedups_enabled
from wsframe.tools.args import size

log = logging.getLogger("wsframe")


def version_text() -> str:
    """Version, Python and which codec path is active."""
    if speedups_enabled():
        path = "compiled"
    else:
        path = "pure (WSFRAME_NO_EXTENSIONS is set)" if SPEEDUPS_DISABLED_BY_ENV else "pure"
    return (f"wsframe {__version__} (Python {sys.version.split()[0]})\n"
            f"speedups: {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsframe", description="A WebSocket engine "
                                     "(RFC 6455, RFC 7692): server, client and tools.")
    parser.add_argument("--version", action="store_true", help="print version and codec path")
    parser.add_argument("--log-level", default=None,
                        help="DEBUG, INFO, WARNING ... (default INFO; connect: WARNING for "
                        "its own connection attempts, which it reports itself)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a server: echo on any path, rooms on "
                                "/room/<name>, /health; --demo adds the tracking demo")
    serve.add_argument("app", nargs="?", metavar="APP",
                       help="module:attribute naming your Server (or a factory returning one); "
                       "default: the built-in app")
    serve.add_argument("--workers", default="1", metavar="N|auto",
                       help="worker processes behind one port, rooms partitioned by key "
                       "(auto: one per CPU; default 1: a single process)")
    serve.add_argument("--publish-socket", metavar="PATH",
                       help="with --workers: a Unix socket for wsframe.cluster.publish()")
    serve.add_argument("--redis", metavar="URL",
                       help="share rooms with other servers through Redis pub/sub "
                            "(redis://[user:password@]host:port/db, rediss:// for TLS; "
                            "redis+cluster://host:port[,host:port...] for a Redis Cluster's "
                            "sharded pub/sub; needs pip install 'wsframe[redis]')")
    serve.add_argument("--redis-prefix", default="wsframe:room:", metavar="PREFIX",
                       help="the channel of room NAME is PREFIX + NAME (default wsframe:room:)")
    serve.add_argument("--gateway", action="store_true",
                       help="gateway mode (needs --redis): messages go to backends through "
                       "Redis streams wsframe:in:room (/room/<name>) and wsframe:in:default "
                       "(other paths); backends answer through pub/sub (docs/howto/gateway.md)")
    serve.add_argument("--gateway-maxlen", type=int, default=100_000, metavar="N",
                       help="with --gateway: keep about the newest N entries per stream "
                       "(XADD MAXLEN ~ N; default 100000)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--demo", action="store_true",
                       help="live delivery tracking demo: page at /, driver in room of its order")
    serve.add_argument("--no-compression", action="store_true", help="refuse permessage-deflate")
    serve.add_argument("--server-context-takeover", action="store_true",
                       help="keep a compressor per connection (better ratio, ~256 KiB each)")
    serve.add_argument("--client-context-takeover", action="store_true",
                       help="let clients keep context (a decompressor per connection, ~40 KiB)")
    serve.add_argument("--server-max-window-bits", type=int, default=None, metavar="8-15")
    serve.add_argument("--client-max-window-bits", type=int, default=None, metavar="8-15")
    serve.add_argument("--deflate-mem-level", type=int, default=8, metavar="1-9")
    serve.add_argument("--deflate-level", type=int, default=6, metavar="0-9")
    serve.add_argument("--compress-threshold", type=size, default=128, metavar="N",
                       help="send messages shorter than this uncompressed (default 128)")
    serve.add_argument("--max-message-size", type=size, default=1 << 20, metavar="N",
                       help="bytes (K/M/G suffixes); larger messages close with 1009 (default 1M)")
    serve.add_argument("--max-frame-size", type=size, default=None, metavar="N",
                       help="bytes (default: the message size)")
    serve.add_argument("--max-fragments", type=int, default=None, metavar="N",
                       help="frames per message, 1009 past it (default: one per 16 bytes of "
                       "--max-message-size, at least 4096; 65536 for 1M)")
    serve.add_argument("--heartbeat", type=float, default=30.0, metavar="S",
                       help="ping peers silent this long, 0 to disable (default 30)")
    serve.add_argument("--heartbeat-timeout", type=float, default=5.0, metavar="S",
                       help="close a peer whose pong is this late (default 5)")
    serve.add_argument("--max-queue", type=size, default=1 << 20, metavar="N",
                       help="bytes queued per slow peer before the policy applies")
    serve.add_argument("--backpressure", choices=("wait", "drop", "close"), default="close",
                       help="what to do past --max-queue (default close)")
    serve.add_argument("--tls-cert", help="certificate chain (PEM) for wss://")
    serve.add_argument("--tls-key", help="private key (PEM) for wss://")
    serve.add_argument("--reuse-port", action="store_true")
    serve.add_argument("--origin", action="append", metavar="URL",
                       help="allow WebSockets from this Origin only (repeatable); others get 403")
    serve.add_argument("--max-connections", type=int, metavar="N",
                       help="open WebSockets at most; past it the upgrade gets 503")
    serve.add_argument("--max-connections-per-address", type=int, metavar="N",
                       help="open WebSockets per client IP address at most (503 past it)")
    serve.add_argument("--trace", action="store_true",
                       help="print every frame sent and received, annotated")

    connect = commands.add_parser("connect", help="interactive client; --echo echoes back")
    connect.add_argument("url")
    connect.add_argument("--echo", action="store_true",
                         help="send every message back; exit when the connection closes")
    connect.add_argument("--no-compression", action="store_true")
    connect.add_argument("--max-message-size", type=size, default=16 << 20, metavar="N")
    connect.add_argument("--subprotocol", action="append", default=[])
    connect.add_argument("--insecure", action="store_true", help="skip TLS verification")
    connect.add_argument("--trace", action="store_true",
                         help="print every frame sent and received, annotated")

    from wsframe.tools.explain import add_explain_parser
    add_explain_parser(commands)
    from wsframe.tools.bench import add_bench_parser
    add_bench_parser(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    if args.version:
        print(version_text())
        return 0
    logging.basicConfig(level=getattr(logging, (args.log_level or "INFO").upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "serve":
        return serve_main(args)
    if args.command == "connect":
        return connect_main(args)
    if args.command == "explain":
        from wsframe.tools.explain import explain_main
        return explain_main(args)
    if args.command == "bench":
        from wsframe.tools.bench import bench_main
        return bench_main(args)
    parser.print_help()
    return 2


def serve_limits(args: argparse.Namespace):
    """The server's :class:`~wsframe.sansio.protocol.Limits` from ``serve``'s options.

    Only the message size needs raising: the frame size defaults to it and the
    fragment cap is derived from it unless ``--max-fragments`` is given.
    """
    from wsframe.sansio.protocol import Limits
    return Limits(max_message_size=args.max_message_size,
                  max_frame_size=args.max_frame_size or args.max_message_size,
                  max_fragments=args.max_fragments)


def serve_main(args: argparse.Namespace) -> int:
    import ssl

    from wsframe.server.apps import install_builtin_app
    from wsframe.codec.permessage_deflate import DeflateSettings
    from wsframe.sansio.protocol import Limits
    from wsframe.server.server import Heartbeat, Server
    from wsframe.loop.backpressure import Backpressure, Policy

    limits = serve_limits(args)
    heartbeat = Heartbeat(args.heartbeat, args.heartbeat_timeout) if args.heartbeat > 0 else None
    compression = None if args.no_compression else DeflateSettings(
        server_no_context_takeover=not args.server_context_takeover,
        client_no_context_takeover=not args.client_context_takeover,
        server_max_window_bits=args.server_max_window_bits,
        client_max_window_bits=args.client_max_window_bits,
        mem_level=args.deflate_mem_level, level=args.deflate_level,
        threshold=args.compress_threshold)
    from wsframe.cluster import Supervisor, load_app, resolve_workers, run_worker, worker_spec

    try:
        workers = resolve_workers(args.workers)
    except ValueError as exc:
        print(f"error: --workers: {exc}", file=sys.stderr)
        return 2
    if args.gateway and (not args.redis or args.app or args.demo):
        print("error: --gateway serves its own routes through Redis: it needs --redis URL, "
              "and no APP or --demo (an app uses wsframe.server.gateway itself)",
              file=sys.stderr)
        return 2

    if args.app:
        try:
            server = load_app(args.app)
        except (ImportError, AttributeError, ValueError, TypeError) as exc:
            print(f"error: cannot load {args.app}: {exc}", file=sys.stderr)
            return 2
    else:
        server = Server(limits=limits, heartbeat=heartbeat, compression=compression,
                        backpressure=Backpressure(args.max_queue, Policy(args.backpressure)),
                        raise_fd_limit=True, tune_malloc=True,  # a process of its own: ours
                        origins=tuple(args.origin) if args.origin else None,
                        max_connections=args.max_connections,
                        max_connections_per_address=args.max_connections_per_address)
        if not args.gateway:
            install_builtin_app(server)
    if args.redis:
        if server.backplane is not None:
            print("error: --redis: the app has a backplane of its own", file=sys.stderr)
            return 2
        try:
            server.use_backplane(args.redis, prefix=args.redis_prefix)
        except (ImportError, ValueError) as exc:
            print(f"error: --redis: {exc}", file=sys.stderr)
            return 2
    if args.gateway:
        from wsframe.server.apps import install_gateway_app
        try:
            install_gateway_app(server, maxlen=args.gateway_maxlen)
        except ValueError as exc:
            print(f"error: --gateway: {exc}", file=sys.stderr)
            return 2
    from wsframe.delivery.browser import install_browser_client
    install_browser_client(server)   # /wsframe.js and /wsframe.d.ts, on every server
    if args.demo:
        from wsframe.tools.demo import install_demo
        install_demo(server)
    if args.trace:
        from wsframe.tools.explain import trace_server
        trace_server(server)
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    if worker_spec() is not None:  # started by a supervisor: serve what it hands over
        run_worker(server, tls_context=context)
        return 0
    if workers > 1:
        supervisor = Supervisor(server, [sys.executable, "-m", "wsframe", *args.argv], workers,
                                host=args.host, port=args.port, tls=context is not None,
                                publish_socket=args.publish_socket)
        host, port = supervisor.address
        log.info("wsframe %s serving %s://%s:%d with %d workers (speedups: %s, supervisor "
                 "pid %d)", __version__, "wss" if context else "ws", host, port, workers,
                 "compiled" if speedups_enabled() else "pure", os.getpid())
        supervisor.run()
        log.info("stopped")
        return 1 if supervisor.failed else 0
    host, port = server.listen(args.host, args.port, ssl=context, reuse_port=args.reuse_port)
    scheme = "wss" if context else "ws"
    soft, hard = server.fd_limits
    log.info("wsframe %s serving %s://%s:%d (speedups: %s, pid %d, fd limit %s/%s)",
             __version__, scheme, host, port, "compiled" if speedups_enabled() else "pure",
             os.getpid(), soft, hard)
    if args.demo:
        log.info("demo: open http://%s:%d/ in a browser", host, port)
    server.serve_forever()
    log.info("stopped")
    return 0


def connect_main(args: argparse.Namespace) -> int:
    import ssl

    from wsframe.loop.eventloop import Loop
    from wsframe.codec.permessage_deflate import DeflateSettings
    from wsframe.sansio.protocol import Limits
    from wsframe.client.reconnecting import ReconnectingClient

    loop = Loop(tick_interval=0.5)
    outcome = {"code": None}
    echo = args.echo
    context = None
    if args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    def on_open(client):
        if not echo:
            print(f"connected to {args.url} (subprotocol: {client.subprotocol}); "
                  "type lines to send, Ctrl-D to close", file=sys.stderr)
            try:
                loop.add_reader(sys.stdin.fileno(), read_stdin)
            except OSError:  # EPERM: a regular file or /dev/null cannot be polled
                read_all_stdin()

    def on_message(client, message):
        if echo:
            client.send(message)
        elif isinstance(message, str):
            print(message, flush=True)
        else:
            print(f"<binary, {len(message)} bytes: {message[:32].hex()}"
                  f"{'...' if len(message) > 32 else ''}>", flush=True)

    def on_close(client, code, reason):
        outcome["code"] = code
        if not echo:
            print(f"closed: {code} {reason}".rstrip(), file=sys.stderr)

    def on_give_up(client, why):
        print(f"error: {why}", file=sys.stderr)  # the one line about it
        outcome["reported"] = True
        loop.stop()

    def read_stdin(fd):
        line = os.read(fd, 65536)
        if not line:
            loop.remove_reader(fd)
            client.close()
            return
        for text in line.decode(errors="replace").splitlines():
            client.send(text)

    def read_all_stdin():
        """stdin that epoll cannot watch (a regular file, /dev/null): send it whole."""
        for text in sys.stdin.buffer.read().decode(errors="replace").splitlines():
            client.send(text)
        client.close()

    if args.log_level is None:
        # The client logs each failed attempt at INFO; here on_give_up and the line
        # below already say it once, so by default only warnings get through.
        logging.getLogger("wsframe.client").setLevel(logging.WARNING)
    try:
        client = ReconnectingClient(
            args.url, loop=loop, on_open=on_open, on_message=on_message,
            on_close=on_close, on_give_up=on_give_up, reconnect=None,
            subprotocols=args.subprotocol,
            compression=None if args.no_compression else DeflateSettings(),
            limits=Limits(max_message_size=args.max_message_size,
                          max_frame_size=args.max_message_size),
            ssl=context, ping_interval=None)
    except ValueError as exc:  # not a ws:// or wss:// URL: one line, no traceback
        hint = f" (did you mean ws://{args.url}?)" if "://" not in args.url else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    if args.trace:
        from wsframe.tools.explain import trace_client
        trace_client(client)
    client.start()
    loop.run(until=lambda: client._conn is None)
    if client.connections == 0:
        if not outcome.get("reported"):
            print(f"error: could not connect: {client.last_error}", file=sys.stderr)
        return 1
    return 0 if outcome["code"] in (1000, 1001) else 1
