"""Train an SGD classifier on scikit-learn's digits, logging with plain mlflow.

Runs as a Lapis (or Azure ML) command job: the tracking URI, run id and token
come from the environment the job is started with, so ``mlflow.start_run()``
attaches to the job's own run.
"""

from __future__ import annotations

import argparse

import mlflow
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model-dir", default="outputs/model")
    args = parser.parse_args()

    X_raw, y = load_digits(return_X_y=True)
    scaler = StandardScaler().fit(X_raw)
    X = scaler.transform(X_raw)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    params = {
        "loss": "log_loss",
        "alpha": args.alpha,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
    }
    classes = np.unique(y)
    model = SGDClassifier(loss="log_loss", alpha=args.alpha, random_state=0)
    rng = np.random.default_rng(0)

    with mlflow.start_run():
        mlflow.log_params(params)
        step = 0
        for epoch in range(args.epochs):
            order = rng.permutation(len(X_train))
            for start in range(0, len(order), args.batch_size):
                batch = order[start : start + args.batch_size]
                model.partial_fit(X_train[batch], y_train[batch], classes=classes)
                batch_loss = log_loss(
                    y_train[batch], model.predict_proba(X_train[batch]), labels=classes
                )
                mlflow.log_metric("batch_loss", batch_loss, step=step)
                step += 1
            val_accuracy = accuracy_score(y_val, model.predict(X_val))
            mlflow.log_metrics(
                {
                    "train_accuracy": accuracy_score(y_train, model.predict(X_train)),
                    "val_accuracy": val_accuracy,
                    "val_loss": log_loss(y_val, model.predict_proba(X_val), labels=classes),
                },
                step=epoch,
            )
            print(
                f"epoch {epoch + 1:2d}/{args.epochs}  val_accuracy {val_accuracy:.3f}", flush=True
            )
        # The served model takes raw 8x8 pixel values (0-16), so the scaler goes with it.
        served = make_pipeline(scaler, model)
        example = X_raw[:2]
        mlflow.sklearn.log_model(served, name="model", input_example=example)
        # The job's `model` output folder becomes an MLflow model folder that
        # `lapis model create --type mlflow_model` registers and an endpoint serves.
        mlflow.sklearn.save_model(served, args.model_dir, input_example=example)
        print(f"model saved to {args.model_dir}", flush=True)


if __name__ == "__main__":
    main()
