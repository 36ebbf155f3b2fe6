"""Load-generating worker processes and what they report.

Each worker is a process running :func:`wsframe._compiled.loadgen.run_load`
(the C engine: one epoll loop, no GIL held, no Python per message), so the
load side scales with processes and never needs its own Python to keep up.
Workers share a small array of live counters with the parent, which draws
the progress display and samples the server while they run.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from typing import Optional

__all__ = ["Fleet", "merge_results", "percentile", "engine_available", "ENGINE_MISSING"]

ENGINE_MISSING = ("wsframe bench needs the compiled load engine (wsframe._compiled.loadgen); "
                  "install wsframe with a C compiler available (pip install .)")
COUNTERS = 5  # attempted, open, failed, received, sent (see _speedups/wsload.h)


def engine_available() -> bool:
    try:
        from wsframe._compiled import loadgen  # noqa: F401
    except ImportError:
        return False
    return True


def _worker(spec: dict, counters, stop_fd: int, cpu: Optional[int], queue) -> None:
    from wsframe._compiled.loadgen import run_load
    from wsframe.loop.eventloop import raise_fd_limit
    raise_fd_limit()  # each worker holds up to PER_PROCESS sockets
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    try:
        result = run_load(**spec, stop_fd=stop_fd, progress=memoryview(counters).cast("B"))
    except Exception as exc:  # reported, not raised: the parent decides
        result = {"error": f"{type(exc).__name__}: {exc}"}
    queue.put(result)


class Fleet:
    """A set of worker processes, each running one ``run_load`` spec."""

    def __init__(self, specs: list[dict], *, cpus: Optional[list[int]] = None) -> None:
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        self._queue = ctx.Queue()
        self._stop_r, self._stop_w = os.pipe()
        self.counters = [ctx.RawArray("q", COUNTERS) for _ in specs]
        self.processes = []
        for i, spec in enumerate(specs):
            cpu = cpus[i % len(cpus)] if cpus else None
            process = ctx.Process(target=_worker, daemon=True,
                                  args=(spec, self.counters[i], self._stop_r, cpu, self._queue))
            self.processes.append(process)

    def start(self) -> "Fleet":
        for process in self.processes:
            process.start()
        return self

    def totals(self) -> dict:
        """Live sums over the workers: attempted, open, failed, received, sent."""
        names = ("attempted", "open", "failed", "received", "sent")
        return {name: sum(c[i] for c in self.counters) for i, name in enumerate(names)}

    def running(self) -> bool:
        return any(p.is_alive() for p in self.processes)

    def stop(self) -> None:
        """Ask every worker to wind down now (they close their connections cleanly)."""
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    def results(self, timeout: float = 60.0) -> list[dict]:
        """Wait for every worker's result dict."""
        out = []
        for _ in self.processes:
            try:
                out.append(self._queue.get(timeout=timeout))
            except Exception:
                out.append({"error": "worker gave no result"})
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
        os.close(self._stop_r)
        os.close(self._stop_w)
        return out


def merge_results(results: list[dict]) -> dict:
    """Add the workers' counters; merge their latency histograms."""
    merged: dict = {"failed": {}, "histogram": {}, "workers": len(results), "errors": []}
    sums = ("attempted", "connected", "survivors", "closed_by_server", "dropped", "peak_open",
            "messages_sent", "messages_received", "bytes_received", "pings_answered",
            "cpu_user", "cpu_system")
    for key in sums:
        merged[key] = 0
    merged["elapsed"] = 0.0
    merged["connect_seconds"] = 0.0
    for result in results:
        if "error" in result:
            merged["errors"].append(result["error"])
            continue
        for key in sums:
            merged[key] += result.get(key, 0)
        merged["elapsed"] = max(merged["elapsed"], result.get("elapsed", 0.0))
        merged["connect_seconds"] = max(merged["connect_seconds"], result.get("connect_seconds", 0))
        for reason, count in result.get("failed", {}).items():
            merged["failed"][reason] = merged["failed"].get(reason, 0) + count
        for upper, count in result.get("histogram", []):
            merged["histogram"][upper] = merged["histogram"].get(upper, 0) + count
    merged["histogram"] = sorted(merged["histogram"].items())
    merged["latency_us"] = latency_summary(merged["histogram"])
    return merged


def percentile(histogram: list, q: float) -> float:
    """The ``q`` quantile (0-1) of a histogram of (upper bound in µs, count)."""
    total = sum(count for _, count in histogram)
    if not total:
        return 0.0
    rank = q * total
    seen = 0
    for upper, count in histogram:
        seen += count
        if seen >= rank:
            return float(upper)
    return float(histogram[-1][0])


def latency_summary(histogram: list) -> dict:
    if not histogram:
        return {}
    total = sum(count for _, count in histogram)
    return {"count": total, "p50": percentile(histogram, 0.50), "p90": percentile(histogram, 0.90),
            "p99": percentile(histogram, 0.99), "p999": percentile(histogram, 0.999),
            "max": float(histogram[-1][0])}
