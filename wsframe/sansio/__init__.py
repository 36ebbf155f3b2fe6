"""The sans-IO protocol core: bytes in, events out; no sockets, clocks or threads.

:class:`ServerProtocol` / :class:`ClientProtocol` (events API with the opening
handshake), :class:`Protocol` (the hook-based core they and the loop's
connections are built on), :mod:`~wsframe.sansio.events`.
"""
from wsframe.sansio.protocol import Limits, Protocol, State
from wsframe.sansio.roles import ClientProtocol, EventProtocol, ServerProtocol

__all__ = ["ServerProtocol", "ClientProtocol", "EventProtocol", "Protocol", "Limits", "State"]
