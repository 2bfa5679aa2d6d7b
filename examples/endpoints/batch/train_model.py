"""Train the example heart-disease classifier and save it as an MLflow model.

Everything is synthetic and seeded (nothing is downloaded): a scikit-learn Pipeline with a
ColumnTransformer (one-hot on the string column `thal`, scaling on the numeric ones) and a
LogisticRegression, saved with mlflow.sklearn in the cloudpickle format.

    python examples/endpoints/batch/train_model.py [MODEL_DIR]
    python examples/endpoints/batch/train_model.py --samples examples/endpoints/batch/data

The model folder (default examples/endpoints/batch/model/) is gitignored: never commit pickles.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = HERE / "model"
NUMERIC = [
    "age",
    "sex",
    "cp",
    "trestbps",
    "chol",
    "fbs",
    "restecg",
    "thalach",
    "exang",
    "oldpeak",
    "slope",
    "ca",
]
CATEGORICAL = ["thal"]
THAL_VALUES = ["normal", "fixed", "reversible"]


def synthetic(n: int, seed: int):
    """n rows of heart-disease-like features and a label that depends on them."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(29, 78, n),
            "sex": rng.integers(0, 2, n),
            "cp": rng.integers(0, 4, n),
            "trestbps": rng.integers(94, 200, n),
            "chol": rng.integers(126, 400, n),
            "fbs": rng.integers(0, 2, n),
            "restecg": rng.integers(0, 3, n),
            "thalach": rng.integers(71, 202, n),
            "exang": rng.integers(0, 2, n),
            "oldpeak": np.round(rng.uniform(0.0, 6.2, n), 1),
            "slope": rng.integers(0, 3, n),
            "ca": rng.integers(0, 4, n),
            "thal": rng.choice(THAL_VALUES, n),
        }
    )
    score = (
        0.04 * (frame["age"] - 54)
        + 0.8 * frame["sex"]
        + 0.5 * frame["cp"]
        - 0.03 * (frame["thalach"] - 150)
        + 0.9 * frame["exang"]
        + 0.6 * frame["oldpeak"]
        + 0.7 * frame["ca"]
        + frame["thal"].map({"normal": -1.0, "fixed": 0.5, "reversible": 1.2})
        - 4.5
    )
    label = (score + rng.normal(0.0, 1.0, n) > 0).astype("int64")
    return frame, label


def build_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numeric", StandardScaler(), NUMERIC),
        ]
    )
    return Pipeline([("features", features), ("classifier", LogisticRegression(max_iter=1000))])


def train(model_dir: Path, rows: int = 600, seed: int = 7) -> Path:
    """Train on synthetic data and save an MLflow model to model_dir (replaced if it exists)."""
    import logging
    import warnings

    import mlflow.sklearn
    from mlflow.models import infer_signature

    X, y = synthetic(rows, seed)
    pipeline = build_pipeline().fit(X, y)
    y_pred = pipeline.predict(X)
    with warnings.catch_warnings():
        # the columns are complete integers by construction; mlflow's hint about missing values does not apply
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column", category=UserWarning)
        signature = infer_signature(X, y_pred)
    # cloudpickle is chosen on purpose (skops is not a core dependency); the pickle is our own
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    mlflow.sklearn.save_model(
        pipeline,
        str(model_dir),
        signature=signature,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    return model_dir


def write_samples(folder: Path, files: int = 4, rows: int = 40, seed: int = 11) -> list[Path]:
    """The unlabeled sample CSV files committed under data/."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(files):
        X, _ = synthetic(rows, seed + index)
        path = folder / f"heart-unlabeled-{index}.csv"
        X.to_csv(path, index=False)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=str(DEFAULT_MODEL_DIR), help="where to save the model")
    parser.add_argument("--samples", metavar="DIR", help="write the sample CSV files to DIR instead of training")
    args = parser.parse_args(argv)
    if args.samples:
        for path in write_samples(Path(args.samples)):
            print(path)
        return
    print(train(Path(args.model_dir)))


if __name__ == "__main__":
    main()
