"""scikit-learn models scored without importing mlflow (scoring/sklearn_direct.py) must predict exactly what
`mlflow.pyfunc.load_model(...).predict` predicts, for every frame: the frames pyfunc hands over untouched
go straight to the estimator, and every other frame (reordered, extra or missing columns, other dtypes)
goes to the real pyfunc model, with mlflow's conversions and error messages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchctl.scoring import sklearn_direct
from testkit import model_requirements, train_heart_model

pytestmark = pytest.mark.mlflow


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(30, 80, n).astype("float64"),
            "chol": rng.normal(240, 40, n),
            "thal": rng.choice(["normal", "fixed", "reversible"], n),
        }
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real models saved with mlflow: eligible ones (numeric, with strings, no signature, pickle format,
    predict_proba, skops with and without recorded trusted types) and ineligible ones (a boolean column,
    code paths)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("direct")
    x = _frame()
    y = ((x.age > 55) & (x.thal != "normal")).astype(int)
    num = x[["age", "chol"]]
    lr = LogisticRegression().fit(num, y)
    rf = RandomForestClassifier(n_estimators=10, random_state=0).fit(num, y)
    paths = {}

    def save(key: str, model, **kwargs) -> None:
        paths[key] = root / key
        kwargs.setdefault("serialization_format", "cloudpickle")
        kwargs.setdefault("pip_requirements", model_requirements())
        mlflow.sklearn.save_model(model, str(paths[key]), **kwargs)

    paths["pipeline"] = train_heart_model(root / "pipeline")  # the string column, one-hot encoded
    save("lr-pickle", lr, signature=infer_signature(num, lr.predict(num)), serialization_format="pickle")
    save("rf-proba", rf, signature=infer_signature(num, rf.predict_proba(num)), pyfunc_predict_fn="predict_proba")
    save("no-signature", lr)
    save("skops", lr, signature=infer_signature(num, lr.predict(num)), serialization_format="skops")
    save("skops-pipeline", train_skops_pipeline(num, y), signature=infer_signature(num, y), **SKOPS_TRUSTING)
    save(  # skops trusts no tree: mlflow needs it recorded
        "skops-rf-proba",
        rf,
        pyfunc_predict_fn="predict_proba",
        serialization_format="skops",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    flagged = num.assign(flag=num.age > 50)
    save("boolean", LogisticRegression().fit(flagged, y), signature=infer_signature(flagged, y))
    code = root / "helper.py"
    code.write_text("X = 1\n")
    save("code-paths", lr, signature=infer_signature(num, lr.predict(num)), code_paths=[str(code)])
    return paths


# numpy.round is outside skops' default trusted types: the model loads only with it recorded in MLmodel
SKOPS_TRUSTING = {"serialization_format": "skops", "skops_trusted_types": ["numpy.round"]}


def train_skops_pipeline(num: pd.DataFrame, y: pd.Series):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(FunctionTransformer(np.round), LogisticRegression()).fit(num, y)


def pyfunc(path: Path):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path), suppress_warnings=True)


def same(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()  # bit for bit, not approximately


@pytest.mark.parametrize(
    "key", ["pipeline", "lr-pickle", "rf-proba", "no-signature", "skops", "skops-pipeline", "skops-rf-proba"]
)
def test_eligible_models_predict_bit_for_bit_what_pyfunc_predicts(models, key):
    direct = sklearn_direct.load(str(models[key]))
    assert direct is not None
    frame = _frame(500, seed=7)
    if key != "pipeline":
        frame = frame[["age", "chol"]]
    same(direct.predict(frame), pyfunc(models[key]).predict(frame))
    assert direct.pyfunc is None  # scored without mlflow


@pytest.mark.parametrize("key", ["boolean", "code-paths"])
def test_ineligible_models_are_left_to_mlflow(models, key):
    assert sklearn_direct.load(str(models[key])) is None


def _untrust(model: Path, target: Path, trusted: object) -> Path:
    """A copy of a skops model whose MLmodel records other trusted types (`...` drops the key)."""
    import shutil

    import yaml

    shutil.copytree(model, target)
    conf = yaml.safe_load((target / "MLmodel").read_text())
    if trusted is ...:
        del conf["flavors"]["sklearn"]["skops_trusted_types"]
    else:
        conf["flavors"]["sklearn"]["skops_trusted_types"] = trusted
    (target / "MLmodel").write_text(yaml.safe_dump(conf))
    return target


@pytest.mark.parametrize("trusted", [..., [], ["numpy.floor"]], ids=["no-list", "empty-list", "other-type"])
def test_a_skops_model_with_an_untrusted_type_is_refused_as_mlflow_refuses_it(models, tmp_path, trusted):
    """Without numpy.round among the recorded trusted types, skops refuses the file: the same exception,
    type and message, as mlflow.pyfunc.load_model raises; nothing is loaded."""
    from skops.io.exceptions import UntrustedTypesFoundException

    model = _untrust(models["skops-pipeline"], tmp_path / "m", trusted)
    with pytest.raises(UntrustedTypesFoundException) as ours:
        sklearn_direct.load(str(model))
    with pytest.raises(UntrustedTypesFoundException) as theirs:
        pyfunc(model)
    assert str(ours.value) == str(theirs.value)
    assert "numpy.round" in str(ours.value)


def test_a_skops_model_is_left_to_mlflow_when_skops_cannot_read_the_file(models, tmp_path):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(models["skops"], model)
    (model / "model.skops").write_bytes(b"not a zip file")
    assert sklearn_direct.load(str(model)) is None


def test_the_switch_and_mlflows_pickle_gate_turn_it_off(models, monkeypatch):
    monkeypatch.setenv("BATCHCTL_MLFLOW_PYFUNC", "1")
    assert sklearn_direct.load(str(models["lr-pickle"])) is None
    monkeypatch.delenv("BATCHCTL_MLFLOW_PYFUNC")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    assert sklearn_direct.load(str(models["lr-pickle"])) is None
    assert sklearn_direct.load(str(models["skops"])) is None  # mlflow gates skops files too


FRAMES = {
    "reordered": lambda f: f[["chol", "age", "thal"]],
    "extra-column": lambda f: f.assign(extra=1.0),
    "int-for-double": lambda f: f.assign(age=f.age.astype("int64")),
    "string-dtype": lambda f: f.astype({"thal": "string"}),
    "sliced": lambda f: f.iloc[50:120],
}


def outcome(predict, frame) -> tuple:
    """What a predict call gives: its values bit for bit, or its error's type and message."""
    try:
        values = np.asarray(predict(frame))
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("ok", values.dtype.str, values.shape, values.tobytes())


@pytest.mark.parametrize("label", list(FRAMES))
def test_frames_pyfunc_would_change_give_pyfuncs_result(models, label):
    """Predictions or refusal (mlflow refuses an int64 column for a double), exactly as pyfunc's."""
    direct = sklearn_direct.load(str(models["pipeline"]))
    frame = FRAMES[label](_frame(300, seed=3))
    ours, theirs = outcome(direct.predict, frame), outcome(pyfunc(models["pipeline"]).predict, frame)
    assert ours == theirs
    assert (ours[0] == "error") is (label == "int-for-double")
    handed_over = label not in ("string-dtype", "sliced")
    assert (direct.pyfunc is not None) is handed_over


def test_a_missing_column_fails_with_mlflows_own_message(models):
    import mlflow.exceptions

    direct = sklearn_direct.load(str(models["pipeline"]))
    frame = _frame(10).drop(columns="chol")
    with pytest.raises(mlflow.exceptions.MlflowException) as ours:
        direct.predict(frame)
    with pytest.raises(mlflow.exceptions.MlflowException) as theirs:
        pyfunc(models["pipeline"]).predict(frame)
    assert str(ours.value) == str(theirs.value)
    assert "chol" in str(ours.value)


@pytest.mark.parametrize(
    ("key", "switch"),
    [("pipeline", ""), ("pipeline", "1"), ("skops-pipeline", "")],
    ids=["direct", "BATCHCTL_MLFLOW_PYFUNC=1", "skops"],
)
def test_a_worker_scores_an_eligible_model_without_importing_mlflow(models, tmp_path, key, switch):
    """The point of it: the scorer's init and a whole file's scoring leave mlflow unimported, unless
    BATCHCTL_MLFLOW_PYFUNC=1 (which a deployment's environment_variables can also set) asks for pyfunc."""
    data = tmp_path / "in.csv"
    frame = _frame(50)
    (frame if key == "pipeline" else frame[["age", "chol"]]).to_csv(data, index=False)
    code = textwrap.dedent(
        f"""
        import sys
        from batchctl.scoring.base import ScorerRef
        from batchctl.scoring.mlflow_model import MlflowScorer
        s = MlflowScorer(ScorerRef("mlflow", {str(models[key].parent)!r}, {str(models[key])!r},
                                   None, None, "append_row", {str(tmp_path)!r}, "info"))
        s.init()
        out = s.score([{str(data)!r}], ["in.csv"])
        print(out.succeeded, out.rows, any(m == "mlflow" or m.startswith("mlflow.") for m in sys.modules))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "BATCHCTL_MLFLOW_PYFUNC"}
    if switch:
        env["BATCHCTL_MLFLOW_PYFUNC"] = switch
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "50", "True" if switch else "False"]


def test_the_forkserver_preloads_skops_for_a_skops_model_only(models, tmp_path):
    """The driver reads how the model was saved (sklearn_direct.serialization_format) and the forkserver it
    starts imports skops.io, seconds of imports, only when the workers will need it."""
    from batchctl.execution.local import _model_preload
    from batchctl.scoring.base import ScorerRef

    def ref(path: Path, kind: str = "mlflow") -> ScorerRef:
        return ScorerRef(kind, str(path.parent), str(path), None, None, "append_row", str(tmp_path), "info")

    assert sklearn_direct.serialization_format(str(models["skops"])) == "skops"
    assert _model_preload(ref(models["skops"])) == ("skops.io",)
    assert _model_preload(ref(models["skops-pipeline"])) == ("skops.io",)
    assert sklearn_direct.serialization_format(str(models["lr-pickle"])) == "pickle"
    assert _model_preload(ref(models["lr-pickle"])) == ()
    assert _model_preload(ref(models["pipeline"])) == ("cloudpickle",)
    assert _model_preload(ref(models["skops"], kind="script")) == ()
    assert sklearn_direct.serialization_format(str(tmp_path)) is None  # no MLmodel
