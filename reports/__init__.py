"""reports adapter (see its issue)."""
