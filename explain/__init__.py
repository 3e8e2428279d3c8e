"""The core: build SHAP explainers for registered models and compute explanations.

Imports MLflow, shap, transformers and matplotlib; never FastAPI or PySpark.
"""
