"""Inputs for parity checks, and the check itself.

Parity is measured on real inputs whenever possible, in this order:

1. the rows of ``--data-path`` (read with the bundle's column mapping);
2. the rows of the data files or folders recorded in the bundle (its training data: a table, an
   NPZ file, a folder of images), when they still exist and are not too large to read quickly;
3. otherwise synthetic inputs of the model's input shape, reported as such: standard-normal values,
   except that a bag model (``bags`` data type) gets valid bags (standard-normal instances, a 0/1
   mask of real instances with the padding after them), the only inputs its training gives it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biodl.errors import BiodlError

if TYPE_CHECKING:
    from biodl.bundle import Bundle

#: Default tolerance: maximum absolute difference between exported and PyTorch outputs.
TOLERANCE = 1e-4
#: Default number of rows a parity check runs on.
ROWS = 256
#: Recorded training files larger than this (in total) are not read for a parity sample.
MAX_RECORDED_BYTES = 256 * 1024 * 1024
#: Rows also run one at a time (batch size 1) to check the dynamic batch axis.
SINGLE_ROWS = 8


@dataclass
class Sample:
    """Inputs for a parity check.

    Attributes
    ----------
    X_model
        Preprocessed model inputs ``(n, *in_shape)``.
    raw
        The raw inputs they came from, or ``None`` for synthetic inputs.
    source
        Where they came from, for the report.
    real
        Whether they are real data rows.
    """

    X_model: np.ndarray
    raw: np.ndarray | None
    source: str
    real: bool


@dataclass
class ParityReport:
    """Outcome of a parity check (JSON-ready through :meth:`to_dict`)."""

    passed: bool
    max_abs_diff: float
    tolerance: float
    rows: int
    source: str
    real_inputs: bool
    batch_sizes: list[int]
    preprocessing_max_abs_diff: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (non-finite differences become ``None``)."""
        out = asdict(self)
        for key in ("max_abs_diff", "preprocessing_max_abs_diff"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None
        return out

    def summary(self) -> str:
        """One line for the console."""
        verdict = "passed" if self.passed else "FAILED"
        text = (
            f"parity {verdict}: max |Δ| = {self.max_abs_diff:.2e} (tolerance {self.tolerance:g}) on {self.rows} rows of "
            f"{self.source}, batch sizes {', '.join(map(str, self.batch_sizes))}"
        )
        if self.preprocessing_max_abs_diff is not None:
            text += f"; recorded preprocessing reproduces the inputs to {self.preprocessing_max_abs_diff:.2e}"
        if not self.passed and self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def _pick(n: int, rows: int) -> np.ndarray:
    if n <= rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=rows, replace=False))


def _size_within(path: Path, budget: int) -> int | None:
    """Bytes of a file, or of all files under a folder; ``None`` once they exceed ``budget`` (the walk stops there)."""
    if path.is_file():
        size = path.stat().st_size
        return size if size <= budget else None
    total = 0
    for f in path.rglob("*"):
        if f.is_file():
            total += f.stat().st_size
            if total > budget:
                return None
    return total


def _recorded_paths(bundle: Bundle) -> list[str] | None:
    """The bundle's recorded training files and folders, when all still exist and are small enough to read."""
    paths = list(bundle.data_config.path)
    if not paths or not all(Path(p).is_file() or Path(p).is_dir() for p in paths):
        return None
    budget = MAX_RECORDED_BYTES
    for p in paths:
        size = _size_within(Path(p), budget)
        if size is None:
            return None
        budget -= size
    return paths


def _synthetic(bundle: Bundle, n: int) -> tuple[np.ndarray, str]:
    """Synthetic model inputs ``(n, *in_shape)`` and their description."""
    in_shape = tuple(int(s) for s in bundle.meta["model"]["in_shape"])
    rng = np.random.default_rng(0)
    if bundle.modality.name == "bags":
        from biodl.data.bags import synthetic_bags

        return synthetic_bags(in_shape, n, rng), "synthetic bags of standard-normal instances"
    return rng.standard_normal((n, *in_shape)).astype(np.float32), "synthetic standard-normal inputs"


def sample_inputs(
    bundle: Bundle,
    paths: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    rows: int = ROWS,
    use_recorded: bool = True,
) -> Sample:
    """Rows to check parity on (see the module docstring for the order of preference).

    Parameters
    ----------
    bundle
        The loaded bundle.
    paths
        Data files given by the user; errors reading them are raised.
    overrides
        Column-mapping overrides for ``paths`` (as for ``biodl predict``).
    rows
        At most this many rows (a fixed random subset of larger files).
    use_recorded
        Whether to fall back to the bundle's recorded data files.
    """
    from biodl.inference import load_data

    candidates: list[tuple[list[str], Mapping[str, Any] | None, str]] = []
    if paths:
        candidates.append((list(paths), overrides, "data file"))
    elif use_recorded:
        recorded = _recorded_paths(bundle)
        if recorded:
            kind = "folder" if any(Path(p).is_dir() for p in recorded) else "file"
            candidates.append((recorded, None, f"the training data {kind}"))
    for files, over, label in candidates:
        try:
            data = load_data(bundle, files, over, require_targets=False)
        except BiodlError:
            if paths:
                raise
            continue
        idx = _pick(len(data), rows)
        raw = data.X[idx]
        names = ", ".join(Path(f).name for f in files)
        return Sample(bundle.modality.transform(raw), raw, f"{label} {names}", real=True)
    X, what = _synthetic(bundle, min(rows, 64))
    return Sample(X, None, f"{what} (no data file available; pass --data-path to use real rows)", False)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference; infinite when shapes differ or NaNs disagree."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        return float("inf")
    both = ~nan_a
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def check_parity(
    reference: Callable[[np.ndarray], np.ndarray],
    candidate: Callable[[np.ndarray], np.ndarray],
    sample: Sample,
    *,
    tolerance: float = TOLERANCE,
) -> ParityReport:
    """Compare ``candidate`` with ``reference`` on the whole sample and on single rows.

    Both functions map preprocessed inputs ``(n, *in_shape)`` to outputs ``(n, K)``.
    """
    X = sample.X_model
    if len(X) == 0:
        raise BiodlError("no rows to check parity on")
    expected = reference(X)
    sizes = sorted({len(X), 1})
    k = min(SINGLE_ROWS, len(X))
    try:
        diff = max_abs_diff(candidate(X), expected)
        single = np.concatenate([candidate(X[i : i + 1]) for i in range(k)])
    except Exception as exc:  # the exported graph itself fails (runtimes raise their own types)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        report = ParityReport(False, float("inf"), tolerance, len(X), sample.source, sample.real, sizes)
        report.notes.append(
            f"the exported model fails at batch sizes {sizes}: {first[:400]}; a batch size fixed while tracing is the "
            "usual cause (e.g. x.reshape(len(x), ...) instead of x.reshape(x.shape[0], ...) or x.flatten(1))"
        )
        return report
    diff = max(diff, max_abs_diff(single, expected[:k]))
    return ParityReport(diff <= tolerance, diff, tolerance, len(X), sample.source, sample.real, sizes)
