"""Imported by the forkserver (execution/local.FORKSERVER_PRELOAD), after the libraries: one tiny CSV read
and one scikit-learn fit and predict on a DataFrame. What those first calls import or build lazily (the
dataframe interchange scikit-learn reaches through narwhals, pandas' parser machinery) is then done once
in the forkserver, not again in every forked worker's first mini-batch (20-40 ms each, measured)."""

from __future__ import annotations

import contextlib
import io


def _warm() -> None:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.read_csv(io.BytesIO(b"a,b\n1.0,2.0\n3.0,4.5\n"))
    LinearRegression().fit(frame, [0.0, 1.0]).predict(frame)


# a failure here must not stop the forkserver (multiprocessing skips only an ImportError): the workers
# then import what they need themselves, as before
with contextlib.suppress(Exception):
    _warm()
