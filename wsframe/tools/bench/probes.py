"""What the kernel says about a server: RSS, fds, CPU time, socket memory (Linux /proc)."""
from __future__ import annotations

import os
from typing import Optional

__all__ = ["process_tree", "rss_bytes", "fd_count", "cpu_seconds", "tcp_sockstat",
           "cheap_ports_per_source", "Sample"]

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's worker processes count too)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory of the process tree."""
    return sum(_status_kib(p, "VmRSS:") for p in process_tree(pid)) * 1024


def fd_count(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree so far."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICKS


def tcp_sockstat() -> dict:
    """/proc/net/sockstat's TCP line (``mem`` is in pages): inuse, orphan, tw, alloc, mem."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()[1:]
                    stats = dict(zip(parts[::2], map(int, parts[1::2])))
                    stats["mem_bytes"] = stats.get("mem", 0) * PAGE
                    return stats
    except OSError:
        pass
    return {}


PORT_MARGIN = 500   # ports left for TIME_WAIT leftovers and other programs


def cheap_ports_per_source(range_file: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """Connections one source address can open to one server address:port at full speed.

    ``connect()`` on a socket bound to an address but no port
    (``IP_BIND_ADDRESS_NO_PORT``) picks its port in ``__inet_hash_connect``
    (Linux >= 4.6), which tries the ports of one parity first and only then
    the other half. Past half of ``ip_local_port_range`` (14,116 of the
    default 32768-60999) every further ``connect()`` first walks the whole
    used half: measured here, 20 us -> 800 us per connect, with the loop
    that calls it unable to read meanwhile. So a source address is planned
    for half the range, less a margin; without the file (not Linux), the
    default range's figure.
    """
    try:
        with open(range_file) as f:
            low, high = (int(x) for x in f.read().split()[:2])
    except (OSError, ValueError):
        low, high = 32768, 60999
    return max(1, (high - low + 1) // 2 - PORT_MARGIN)


class Sample:
    """One reading of a server process."""

    __slots__ = ("t", "connections", "rss", "fds", "cpu")

    def __init__(self, t: float, connections: int, pid: Optional[int]) -> None:
        self.t = t
        self.connections = connections
        self.rss = rss_bytes(pid) if pid else 0
        self.fds = fd_count(pid) if pid else 0
        self.cpu = cpu_seconds(pid) if pid else 0.0

    def as_dict(self) -> dict:
        return {"t": round(self.t, 3), "connections": self.connections, "rss": self.rss,
                "fds": self.fds, "cpu": round(self.cpu, 3)}
