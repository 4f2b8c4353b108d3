"""Gene-expression inference (D-GEX, Chen et al., *Bioinformatics* 2016): predict target genes from landmark genes.

For expression matrices (AnnData ``.h5ad``, HDF5, or wide tables) the column lists may be given
indirectly:

* ``@FILE`` in ``feature_columns`` / ``target_columns``: names read from a text file (one per line,
  ``#`` comments; relative paths are taken from the working directory);
* ``target_columns: ["@others"]``: every gene (matrix column) not among the features.

Target genes that are matrix columns are moved out of the feature matrix into the per-row
columns, so the tabular data type trains a multi-output regression on them; ``metrics.json`` then
holds the per-gene Pearson correlation (``per_task``) and its mean (``pearson``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.config import DataConfig
from biodl.data.readers import RawTable
from biodl.errors import DataError

OTHERS = "@others"


def read_name_file(path: str | Path) -> list[str]:
    """Names from a text file: one per line; blank lines and ``#`` comments ignored."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"column list file not found: {p}")
    names = [line.split("#", 1)[0].strip() for line in p.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DataError(f"{p}: no names")
    return names


def _expand(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    out: list[str] = []
    for n in names:
        if n.startswith("@") and n != OTHERS:
            out.extend(read_name_file(n[1:]))
        else:
            out.append(n)
    return out


def resolve_columns(raw: RawTable, cfg: DataConfig) -> tuple[RawTable, DataConfig]:
    """Expand ``@FILE``/``@others`` column lists and move matrix-column targets into the frame.

    Returns the (possibly reduced) table and the config with explicit column lists.
    """
    features = _expand(cfg.feature_columns)
    targets = _expand(list(cfg.target_columns)) or []
    if OTHERS in targets:
        if raw.matrix_names is None:
            pool = [str(c) for c in raw.frame.columns if pd.api.types.is_numeric_dtype(raw.frame[c])]
        else:
            pool = list(raw.matrix_names)
        if features is None:
            raise DataError("target_columns: @others needs the feature (landmark) columns: --feature-columns or @FILE")
        chosen = set(features)
        targets = [t for t in targets if t != OTHERS] + [g for g in pool if g not in chosen]
    dup = sorted(set(features or []) & set(targets))
    if dup:
        raise DataError(f"column(s) {dup[:5]} are both features and targets")
    if raw.matrix is not None and raw.matrix_names is not None:
        pos = {n: i for i, n in enumerate(raw.matrix_names)}
        from_matrix = [t for t in targets if t in pos and t not in raw.frame.columns]
        if from_matrix:
            idx = [pos[t] for t in from_matrix]
            frame = pd.concat([raw.frame, pd.DataFrame(raw.matrix[:, idx], columns=from_matrix)], axis=1)
            keep = np.setdiff1d(np.arange(len(raw.matrix_names)), idx)
            raw = RawTable(frame, raw.matrix[:, keep], [raw.matrix_names[i] for i in keep], raw.path)
    if features != cfg.feature_columns or targets != list(cfg.target_columns):
        cfg = cfg.model_copy(update={"feature_columns": features, "target_columns": targets})
    return raw, cfg
