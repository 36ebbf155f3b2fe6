"""``python -m wsframe.cluster APP [--workers N] [--host H] [--port P]``; also a worker's entry."""
from __future__ import annotations

import argparse
import logging

from wsframe.cluster import load_app, run_worker, serve, worker_spec


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wsframe.cluster")
    parser.add_argument("app", help="module:attribute naming a Server or a factory")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--publish-socket")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if worker_spec() is not None:
        run_worker(load_app(args.app))
        return
    serve(args.app, workers=args.workers, host=args.host, port=args.port,
          publish_socket=args.publish_socket)


if __name__ == "__main__":
    main()
