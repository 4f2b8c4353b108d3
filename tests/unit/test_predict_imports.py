"""Commands that only predict do not import scikit-learn or SciPy (seconds of start-up, paid per process)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from biodl.cli.main import build_parser
build_parser()
import biodl.bundle, biodl.engine, biodl.inference, biodl.predict_stream, biodl.serve.app
from biodl.metrics import compute_metrics  # registered, not yet imported
heavy = sorted(m for m in ("sklearn", "scipy") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_predict_path_leaves_sklearn_and_scipy_unimported() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "none"


def test_metrics_still_compute_with_the_lazy_functions() -> None:
    import numpy as np

    from biodl.metrics.classification import roc_auc_score
    from biodl.metrics.regression import pearsonr

    assert roc_auc_score(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])) == 1.0
    assert abs(float(pearsonr(np.arange(5.0), 2 * np.arange(5.0))[0]) - 1.0) < 1e-12
