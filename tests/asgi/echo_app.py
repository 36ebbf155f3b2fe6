"""A raw ASGI echo app (no framework): the Autobahn testee and the benchmark's application.

    uvicorn tests.asgi.echo_app:app --ws wsframe.asgi:WebSocketProtocol
"""


async def app(scope, receive, send):
    """Echo every WebSocket message as it came (text as text, bytes as bytes)."""
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return
