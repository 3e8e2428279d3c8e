"""The REST adapter (FastAPI): `app.py` composes it; docs/architecture.md lists its modules."""
