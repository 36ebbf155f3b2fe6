"""wsframe.client.blocking."""
