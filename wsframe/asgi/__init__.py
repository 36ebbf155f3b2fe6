"""wsframe under ASGI servers: ``uvicorn app:app --ws wsframe.asgi:WebSocketProtocol``."""
from wsframe.asgi.protocol import WebSocketProtocol
from wsframe.asgi.scope import Disconnected

__all__ = ["WebSocketProtocol", "Disconnected"]
