"""eaas: explainability as a service.

The `eaas` command composes explain/, api/, batch/ and reports/.
"""
