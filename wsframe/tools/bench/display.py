"""Progress while a run goes, and the results afterwards: table, JSON, plot."""
from __future__ import annotations

import json
import sys
import time
from typing import Optional, TextIO

__all__ = ["Progress", "print_table", "write_json", "plot"]


class Progress:
    """One live line on a terminal (rewritten in place); plain lines every few seconds otherwise."""

    def __init__(self, out: TextIO = sys.stderr, every: float = 2.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, text: str) -> None:
        now = time.monotonic()
        line = f"[{now - self._start:6.1f}s] {text}"
        if self.tty:
            self.out.write("\r" + line[:160].ljust(100))
            self.out.flush()
        elif now - self._last >= self.every:
            self.out.write(line + "\n")
            self.out.flush()
            self._last = now

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def print_table(title: str, rows: list[tuple[str, str]], out: TextIO = sys.stdout) -> None:
    width = max(len(name) for name, _ in rows)
    out.write(f"\n{title}\n{'-' * len(title)}\n")
    for name, value in rows:
        out.write(f"  {name.ljust(width)}  {value}\n")
    out.flush()


def write_json(report: dict, path: str) -> None:
    text = json.dumps(report, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        with open(path, "w") as f:
            f.write(text + "\n")


def plot(report: dict, path: str) -> Optional[str]:
    """RSS against connections (capacity) or the latency distribution (echo, broadcast).

    Returns an error string when matplotlib is missing (it is an optional extra).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plotting needs matplotlib: pip install 'wsframe[plot]'"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if report["mode"] == "capacity":
        samples = [s for s in report.get("samples", []) if s["rss"]]
        top = max((s["connections"] for s in samples), default=0)
        last = max((i for i, s in enumerate(samples) if s["connections"] >= 0.99 * top),
                   default=len(samples) - 1)
        samples = samples[:last + 1]  # the ramp and the hold, not the teardown
        ax.plot([s["connections"] for s in samples], [s["rss"] / 2**20 for s in samples],
                marker=".", linewidth=1)
        ax.set_xlabel("open connections")
        ax.set_ylabel("server RSS (MiB)")
        ax.set_title(f"{report['server']}: memory by connection count")
    else:
        histogram = report["result"]["histogram"]
        total = sum(count for _, count in histogram) or 1
        xs, ys, seen = [], [], 0
        for upper, count in histogram:
            seen += count
            xs.append(upper / 1000)
            ys.append(seen / total)
        ax.plot(xs, ys, linewidth=1.5)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("fraction of messages")
        ax.set_title(f"{report['server']}: {report['mode']} latency distribution")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
