"""MLflow's REST protocol (``/api/2.0/mlflow``, ``/ajax-api/2.0/mlflow``, artifacts proxy)."""
