"""wsframe.tools."""
