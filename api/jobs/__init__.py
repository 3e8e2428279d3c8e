"""Explanation jobs: work accepted now, run beside requests, kept in the explanation store's
database and resumed after a crash. `store.py` (tables and guarded transactions), `intake.py`
(submission checks), `runner.py` (the per-process runner), `results.py` (JSON Lines, Parquet);
the routes are api/routes/jobs.py. docs/api.md (the API), docs/operations.md (running them).
"""
