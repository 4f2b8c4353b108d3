"""``biodl demo``: a complete run on data shipped with the package (DNA binding sites; the PBMC table too)."""

from __future__ import annotations

from pathlib import Path

from biodl.experiment import Experiment, RunResult

RESOURCES = Path(__file__).parent / "resources"


#: The shipped DNA example: 2,000 REST (NRSF) ChIP-seq peaks from DeepBind's ENCODE data.
DNA_DEMO = RESOURCES / "deepbind_REST_GM12878_AC_2000.seq.gz"


def demo_config(max_epochs: int | None = None) -> dict[str, object]:
    """The demo experiment: REST binding sites vs dinucleotide-shuffled sequence (DeepBind's protocol).

    2,000 bound 101-bp peaks plus two dinucleotide shuffles of each (the default), the default
    sequence model (DeepBind) against logistic regression on k-mer counts; about a minute on 2 CPU
    cores.
    """
    return {
        "data": {
            "type": "sequence",
            "path": [str(DNA_DEMO)],
            "target_columns": ["Bound"],
            "id_column": "EventID",
            "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle"},
        },
        "model": {"name": "deepbind"},
        "train": {"max_epochs": max_epochs or 40, "patience": 5, "seed": 0},
        "evaluate": {"baselines": ["linear"]},
    }


def pbmc_demo_config(max_epochs: int | None = None) -> dict[str, object]:
    """The tabular example: cell-type classification of 700 PBMCs from 765 genes."""
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
