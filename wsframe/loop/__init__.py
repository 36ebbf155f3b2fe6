"""The event loop: epoll on raw fds, one receive buffer, corked writes, fan-out, ticks."""
from wsframe.loop.backpressure import Backpressure, Policy, SendStatus
from wsframe.loop.eventloop import FdStream, Loop, TimerHandle
from wsframe.loop.fanout import BroadcastResult, fan_out

__all__ = ["Loop", "FdStream", "TimerHandle", "fan_out", "BroadcastResult", "Backpressure",
           "Policy", "SendStatus"]
