"""api adapter (see its issue)."""
