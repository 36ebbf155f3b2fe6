"""What happens when a peer reads slower than we write.

Every server connection has a limit on the bytes queued for it in user
space. A send that would go over it is handled by a policy, chosen per
server and overridable per send:

* :attr:`Policy.WAIT`: the message is **not** queued and :attr:`SendStatus.BLOCKED`
  comes back; the endpoint's ``on_drain`` runs once the queue has emptied,
  and the sender retries then. Nothing is lost silently.
* :attr:`Policy.DROP`: the message is skipped for that peer and counted
  (:attr:`SendStatus.DROPPED`): right for live data where the next message
  supersedes this one (a driver's position). Rooms use it by default.
* :attr:`Policy.CLOSE`: the connection is closed with 1008 and a reason, its queue
  discarded (:attr:`SendStatus.CLOSED`).

A message is always accepted when the queue is empty, however large, so
that any single message can be sent. Memory per connection is therefore
bounded by ``max_queue`` plus one message.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = ["SendStatus", "Backpressure", "Policy"]


class Policy(Enum):
    """What happens to a send that would take a peer's queue past its limit."""

    WAIT = "wait"    # not queued: BLOCKED, retry after on_drain
    DROP = "drop"    # skipped for this peer and counted: live data superseded by the next
    CLOSE = "close"  # the peer is cut off with 1008


class SendStatus(IntEnum):
    """The outcome of a send on a server connection."""

    OK = 0        # written, or queued within the limit
    DROPPED = 1   # "drop" policy: skipped for this peer, counted
    BLOCKED = 2   # "wait" policy: not queued; retry after on_drain
    CLOSED = 3    # "close" policy, or the connection is no longer open


@dataclass(frozen=True)
class Backpressure:
    """The per-connection queue limit and the policy past it."""

    max_queue: int = 1 << 20     # per peer, on top of the kernel's socket buffer (MiBs already)
    policy: Policy = Policy.CLOSE  # a peer that stops reading is cut off, not buffered for

    def __post_init__(self) -> None:
        if not isinstance(self.policy, Policy):
            raise TypeError(f"policy must be a Policy, not {self.policy!r}")
        if self.max_queue < 1:
            raise ValueError("max_queue must be positive")
