# The custom scoring script of Azure's heart-classifier-mlflow example, as Azure runs it:
# init() loads the model once per worker, run() scores one mini-batch of CSV files.
import glob
import os

import mlflow
import pandas as pd


def init():
    global model

    # AZUREML_MODEL_DIR is an environment variable created during deployment
    # It is the path to the model folder
    model_path = glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*/")[0]

    # load the model
    model = mlflow.pyfunc.load_model(model_path)


def run(mini_batch):
    print(f"run method start: {__file__}, run({len(mini_batch)} files)")
    results = []

    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        pred = model.predict(data)

        df = pd.DataFrame(pred, columns=["predictions"])
        df["file"] = os.path.basename(file_path)
        results.append(df[["file", "predictions"]])

    return pd.concat(results) if results else pd.DataFrame(columns=["file", "predictions"])
