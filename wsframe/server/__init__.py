"""wsframe.server.server."""
