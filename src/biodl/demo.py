"""``biodl demo``: a complete run on data shipped with the package."""

from __future__ import annotations

from pathlib import Path

from biodl.experiment import Experiment, RunResult

RESOURCES = Path(__file__).parent / "resources"


def demo_config(max_epochs: int | None = None) -> dict[str, object]:
    """The demo experiment: cell-type classification of 700 PBMCs from 765 genes."""
    return {
        "data": {
            "type": "tabular",
            "path": [str(RESOURCES / "pbmc68k_reduced.h5ad")],
            "task": "classification",
            "target_columns": ["bulk_labels"],
        },
        "model": {"name": "mlp", "hidden_sizes": [128, 64]},
        "train": {"max_epochs": max_epochs or 60, "seed": 0},
    }


def run_demo(output_dir: Path, max_epochs: int | None = None) -> RunResult:
    """Train, evaluate and report; prints where the report is."""
    result = Experiment(demo_config(max_epochs)).fit(output_dir)
    print(f"demo finished: open {(output_dir / 'report.html').resolve()}")
    return result
