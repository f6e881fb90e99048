import mlflow

with mlflow.start_run():
    mlflow.log_metric("answer", 42)
    print("logged with mlflow", mlflow.__version__)
