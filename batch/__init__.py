"""batch adapter (see its issue)."""
