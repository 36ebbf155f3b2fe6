"""Worker processes on one machine: a supervisor, key-routed handoff, rooms across workers.

``serve("module:app", workers=8)`` (or ``wsframe serve module:app --workers 8``)
runs a supervisor that accepts on one port, reads each request head, and
hands the socket with the bytes already read to the worker that owns the
route's partition key (rendezvous hashing over worker slots; no key: the
least-loaded worker). See docs/howto/workers.md.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Union

from wsframe.cluster.partition import load_app, owner, partition_key
from wsframe.cluster.publish import Publisher, publish
from wsframe.cluster.supervisor import Supervisor
from wsframe.cluster.worker import run_worker, worker_spec

__all__ = ["serve", "publish", "Publisher", "Supervisor", "owner", "partition_key", "load_app",
           "run_worker", "worker_spec", "resolve_workers"]


def resolve_workers(value: Union[int, str]) -> int:
    """``auto`` -> the CPU count; a number -> itself (at least 1)."""
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number or 'auto', not {value!r}") from None
    if count < 1:
        raise ValueError("workers must be at least 1 (or 'auto')")
    return count


def serve(app: str, *, workers: Union[int, str] = "auto", host: str = "127.0.0.1",
          port: int = 8765, publish_socket: Optional[str] = None) -> None:
    """Serve the app named by ``app`` (``module:attribute``: a Server or a factory) with
    ``workers`` processes. In a worker process (started by the supervisor) this serves as
    that worker instead, so a script may simply call it."""
    server = load_app(app)
    if worker_spec() is not None:
        run_worker(server)
        return
    supervisor = Supervisor(server, [sys.executable, "-m", "wsframe.cluster", app],
                            resolve_workers(workers), host=host, port=port,
                            publish_socket=publish_socket)
    supervisor.run()
