import argparse

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--num-leaves", type=int, default=15)
parser.add_argument("--model-dir")
args = parser.parse_args()

X, y = load_digits(return_X_y=True)
X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
with mlflow.start_run():
    mlflow.log_param("num_leaves", args.num_leaves)
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=args.num_leaves, verbose=-1)
    model.fit(X_train, y_train)
    accuracy = accuracy_score(y_test, model.predict(X_test))
    mlflow.log_metric("accuracy", accuracy)
    mlflow.lightgbm.save_model(model, args.model_dir, input_example=X_test.iloc[:2])
    print(f"accuracy {accuracy:.3f}")
