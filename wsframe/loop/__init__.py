"""wsframe.loop.eventloop."""
