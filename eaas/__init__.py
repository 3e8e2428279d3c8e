"""eaas: explainability as a service.

Everything is importable under this name: `eaas.explain` (the core), `eaas.api` (REST),
`eaas.batch` (Spark), `eaas.reports`; the `eaas` command composes them (`eaas.cli`).
"""

from eaas import _legacy

_legacy.install()  # explainers logged by eaas 0.1 import `explain.pyfunc` (deprecated alias)
