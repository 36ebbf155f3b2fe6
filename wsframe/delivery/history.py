"""Per-room history: an epoch, the last offset, and the latest publications, bounded by
count and by age, from which a reconnecting client gets exactly what it missed."""
from __future__ import annotations

import os
import time
from collections import deque
from typing import Optional, Union

__all__ = ["RoomHistory", "Histories"]


_EMPTY: deque = deque(maxlen=0)   # shared by histories with no entry yet (idle rooms)


class RoomHistory:
    """The publications of one room in this process (offsets 1, 2, ... in this epoch)."""

    __slots__ = ("epoch", "offset", "entries", "max_count", "max_age")

    def __init__(self, max_count: int, max_age: float, epoch: Optional[str] = None) -> None:
        self.epoch = epoch or os.urandom(4).hex()   # a new history: offsets mean nothing old
        self.offset = 0
        self.entries: deque = _EMPTY   # (offset, published at, data JSON); made on first use
        self.max_count = max_count
        self.max_age = max_age

    def append(self, data_json: str, now: Optional[float] = None) -> int:
        now = time.monotonic() if now is None else now
        self.offset += 1
        entries = self.entries
        if entries is _EMPTY:
            entries = self.entries = deque()
        entries.append((self.offset, now, data_json))
        if len(entries) > self.max_count:
            entries.popleft()
        self._trim(now)
        return self.offset

    def _trim(self, now: float) -> None:
        entries, horizon = self.entries, now - self.max_age
        while entries and entries[0][1] < horizon:
            entries.popleft()

    def since(self, epoch: str, offset: int, now: Optional[float] = None) -> Union[list, str]:
        """The entries after ``offset`` of ``epoch``, all of them, or why not:
        ``"epoch"`` (another history) or ``"trimmed"`` (some are gone)."""
        if epoch != self.epoch or offset > self.offset:
            return "epoch"
        if offset == self.offset:
            return []
        self._trim(time.monotonic() if now is None else now)
        entries = self.entries
        if not entries or entries[0][0] > offset + 1:
            return "trimmed"
        start = offset + 1 - entries[0][0]
        return [entries[i] for i in range(start, len(entries))]


class Histories:
    """The histories of one process's rooms, made on first use."""

    def __init__(self, max_count: int = 1000, max_age: float = 300.0) -> None:
        self.max_count = max_count
        self.max_age = max_age
        self._rooms: dict[str, RoomHistory] = {}

    def get(self, room: str) -> RoomHistory:
        history = self._rooms.get(room)
        if history is None:
            history = self._rooms[room] = RoomHistory(self.max_count, self.max_age)
        return history

    def sweep(self, now: Optional[float] = None, keep=lambda room: False) -> None:
        """Drop the histories of rooms with no member (``keep(room)`` false) whose every
        entry has aged out: a later client of the room gets a new epoch."""
        now = time.monotonic() if now is None else now
        for name in [n for n, h in self._rooms.items()
                     if (not h.entries or h.entries[-1][1] < now - h.max_age) and not keep(n)]:
            del self._rooms[name]

    def __len__(self) -> int:
        return len(self._rooms)
