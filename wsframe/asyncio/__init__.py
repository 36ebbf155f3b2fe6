"""wsframe on asyncio (placeholder, filled below)."""
