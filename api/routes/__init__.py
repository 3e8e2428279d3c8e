"""The service's routers, one module each, every one a module-level `router`; thin: they
resolve dependencies (api/deps.py) and hand explain requests to the data plane."""
