"""Nothing lost: acknowledged messages, dedupe, per-room offsets and resume
(the ``wsframe.v1`` subprotocol, docs/protocol.md).

* :class:`~wsframe.delivery.server.Delivery` -- the server side;
* :class:`~wsframe.delivery.client.ReliableClient` -- the Python client;
* :mod:`~wsframe.delivery.wire` -- the frames; :mod:`~wsframe.delivery.history` -- room history.
"""
from wsframe.delivery.client import ReliableClient
from wsframe.delivery.server import LATER, Delivery
from wsframe.delivery.wire import SESSION_TAKEN, SUBPROTOCOL

__all__ = ["Delivery", "LATER", "ReliableClient", "SESSION_TAKEN", "SUBPROTOCOL"]
