"""A scikit-learn model saved by mlflow, scored without importing mlflow.

`import mlflow.pyfunc` is about half of a worker's start-up (~1.5-2 s of CPU on the 2-core machine, for
tracking, GenAI and gateway modules a batch worker never calls). For the sklearn flavor, pyfunc does three
things: deserialize the model file (`model.pkl` with pickle or cloudpickle, or `model.skops` with
`skops.io.load` and the trusted types the MLmodel records), check the input against the signature, and
call the estimator's `predict_fn`. This module does the same where that is provably pyfunc's behaviour, and hands
everything else to mlflow:

* eligible models only (`load`): the sklearn flavor in the pickle, cloudpickle or skops format, no code paths,
  no model config, no params schema, no type-hint signature, and a signature (if any) whose inputs are
  named, required, and of a type whose check mlflow skips when the column already has it (double, float,
  long, integer, string);
* per call (`DirectSklearn.predict`): when the frame has exactly the signature's columns, in its order,
  each already of its type, mlflow's `_enforce_named_col_schema` returns `DataFrame({name: frame[name]})`,
  and so does this; any other frame (extra or reordered columns, an int column for a double, a missing
  column) goes to the real pyfunc model, loaded then, so its conversions and its error messages are
  mlflow's own.

A skops model is loaded as `mlflow.sklearn._load_model_from_local_file` loads it:
`skops.io.load(path, trusted=<the flavor's skops_trusted_types>)`. A file holding a type outside skops'
defaults and that list is refused with skops' own `UntrustedTypesFoundException`, the very exception
(type and message) that `mlflow.pyfunc.load_model` raises, so the worker's start fails as it would
through mlflow. Any other failure to load hands the model to mlflow, which fails with its own message.

`BATCHCTL_MLFLOW_PYFUNC=1` turns this off (every model through mlflow.pyfunc); so does
`MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`, which mlflow then enforces itself (for skops files too).
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

# mlflow signature column types -> the dtype a CSV column is read with (Azure's driver does the same)
SIGNATURE_DTYPES = {
    "string": "string",
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "boolean",
}
# the types whose column mlflow's schema check passes through untouched when it already has that dtype
# (booleans are converted: the nullable "boolean" dtype becomes numpy bool)
PASS_THROUGH = ("double", "float", "long", "integer", "string")
STRING = "string"
PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")
OFF = "BATCHCTL_MLFLOW_PYFUNC"
FORMATS = ("pickle", "cloudpickle", "skops")


class DirectSklearn:
    """The unpickled estimator's `predict_fn`, called as mlflow's pyfunc wrapper calls it."""

    def __init__(self, model_dir: str, estimator: Any, predict_fn: str, schema: list[tuple[str, str]] | None):
        self.model_dir = model_dir
        self.predict_fn = getattr(estimator, predict_fn)
        self.schema = schema
        self.pyfunc: Any = None  # the real pyfunc model, loaded for the first frame this cannot take

    def untouched(self, frame: Any) -> Any:
        """The frame that pyfunc's schema check would hand to the model, or None when it would convert,
        reorder or drop columns (or refuse the frame)."""
        import numpy as np
        import pandas as pd

        if self.schema is None:
            return frame  # no signature: pyfunc passes its input as it is
        if not isinstance(frame, pd.DataFrame) or list(frame.columns) != [name for name, _ in self.schema]:
            return None
        for name, kind in self.schema:
            dtype = frame[name].dtype
            if kind == STRING:
                if not (dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype)):
                    return None
            elif dtype != kind:
                return None
        return pd.DataFrame({name: frame[name] for name, _ in self.schema})

    def predict(self, frame: Any) -> Any:
        data = self.untouched(frame)
        if data is not None:
            return self.predict_fn(data)
        if self.pyfunc is None:
            import mlflow.pyfunc

            self.pyfunc = mlflow.pyfunc.load_model(self.model_dir, suppress_warnings=True)
        return self.pyfunc.predict(frame)


def _schema(signature: dict[str, Any]) -> list[tuple[str, str]] | None | Literal[False]:
    """[(name, dtype)] from the signature's inputs, None without inputs, False if not eligible."""
    if not signature.get("inputs"):
        return None
    schema = []
    for col in json.loads(signature["inputs"]):
        kind = SIGNATURE_DTYPES.get(col.get("type")) if col.get("type") in PASS_THROUGH else None
        if kind is None or not isinstance(col.get("name"), str) or col.get("required", True) is not True:
            return False
        if col.get("optional"):  # mlflow < 2.9 wrote optional columns this way
            return False
        schema.append((col["name"], kind))
    return schema


def _mlmodel(model_dir: str) -> dict[str, Any]:
    """The model folder's MLmodel file, parsed (raises when it is missing or unreadable)."""
    import yaml

    with open(os.path.join(model_dir, "MLmodel"), encoding="utf-8") as handle:
        return dict(yaml.safe_load(handle))


def serialization_format(model_dir: str) -> str | None:
    """How the MLmodel in `model_dir` says its scikit-learn model was saved (pickle, cloudpickle, skops);
    None for another flavor or an unreadable file. The driver reads it to preload what workers will import."""
    try:
        sk = (_mlmodel(model_dir).get("flavors") or {}).get("sklearn") or {}
        fmt = sk.get("serialization_format", "pickle") if sk else None
        return fmt if fmt in FORMATS else None
    except Exception:
        return None


def load(model_dir: str) -> DirectSklearn | None:
    """The model, when pyfunc would do nothing but deserialize a scikit-learn estimator and call it; None
    (mlflow loads it) otherwise. Raises skops' UntrustedTypesFoundException as mlflow would."""
    if os.environ.get(OFF, "").strip().lower() in ("1", "true", "yes"):
        return None
    if os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower() not in ("true", "1"):
        return None
    try:
        conf = _mlmodel(model_dir)
        flavors = conf.get("flavors") or {}
        pyfunc, sk = flavors.get("python_function") or {}, flavors.get("sklearn") or {}
        predict_fn = pyfunc.get("predict_fn") or "predict"
        fmt = sk.get("serialization_format", "pickle")
        signature = conf.get("signature") or {}
        if (
            pyfunc.get("loader_module") != "mlflow.sklearn"
            or not pyfunc.get("model_path")
            or pyfunc.get("code")
            or pyfunc.get("model_config")
            or predict_fn not in PREDICT_FNS
            or not sk
            or fmt not in FORMATS
            or sk.get("code")
            or conf.get("is_signature_from_type_hint")
            or conf.get("type_hint_from_example")
            or signature.get("params")
        ):
            return None
        schema = _schema(signature)
        if schema is False:
            return None
        path = os.path.join(model_dir, pyfunc["model_path"])
        if not os.path.isfile(path):
            return None
        trusted = sk.get("skops_trusted_types")
        if trusted is not None and not (isinstance(trusted, list) and all(isinstance(t, str) for t in trusted)):
            return None
    except Exception:  # anything unexpected in the metadata: mlflow reads it
        return None
    estimator = _load_skops(path, trusted) if fmt == "skops" else _unpickle(path, fmt)
    if estimator is None:
        return None
    if not hasattr(estimator, predict_fn):
        return None  # mlflow says what is missing
    return DirectSklearn(model_dir, estimator, predict_fn, schema or None)


def _load_skops(path: str, trusted: list[str] | None) -> Any:
    """`skops.io.load` with the model's recorded trusted types, as mlflow calls it; skops' refusal of an
    untrusted type propagates (mlflow raises the same exception); None on any other failure."""
    try:
        import skops.io
        from skops.io.exceptions import UntrustedTypesFoundException
    except Exception:  # skops missing or broken: mlflow says so
        return None
    try:
        return skops.io.load(path, trusted=trusted)
    except UntrustedTypesFoundException:
        raise
    except Exception:  # mlflow loads it again and fails with its own message
        return None


def _unpickle(path: str, fmt: str) -> Any:
    try:
        with open(path, "rb") as handle:
            if fmt == "cloudpickle":
                import cloudpickle

                return cloudpickle.load(handle)
            else:
                import pickle

                return pickle.load(handle)
    except Exception:  # mlflow loads it again and fails with its own message
        return None
