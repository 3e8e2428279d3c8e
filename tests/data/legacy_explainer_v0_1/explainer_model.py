"""Models-from-code entry: MLflow copies this file into the explainer model.

The class itself comes from the installed `eaas` package, so nothing is cloudpickled.
"""

from mlflow.models import set_model

from explain.pyfunc import ExplainerModel

set_model(ExplainerModel())
