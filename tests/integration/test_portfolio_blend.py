"""The molecule ``auto`` portfolio's two families (a dense network on fingerprints + descriptors, a D-MPNN on
graphs + descriptors) read the same packed graphs, so their average is one saved network that ``predict``
reloads. Real ESOL subset (tests/data/esol_subset.csv); tiny networks, few epochs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from biodl import Experiment
from biodl import bundle as bundle_io
from biodl.data.molecule.graph import BASE_WIDTH
from biodl.data.molecule.modality import BLEND_FEATURIZER, MoleculeModality
from biodl.experiment.portfolio import candidate_config
from biodl.explain.molecule import explain_molecules
from biodl.models.ensemble import Ensemble

ESOL = Path(__file__).resolve().parents[1] / "data" / "esol_subset.csv"
DATA = {"molecule": {"featurizer": list(BLEND_FEATURIZER), "n_bits": 128}}
TINY = (
    {"name": "ffn", "hidden_sizes": [16], "train": {"ensemble_size": 2}, "data": DATA},
    {"name": "dmpnn", "hidden_size": 16, "depth": 2, "ffn_hidden_sizes": [16], "extra_features": ["rdkit2d"], "data": DATA},
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    patch = pytest.MonkeyPatch()
    patch.setattr(MoleculeModality, "portfolio", TINY)
    out = tmp_path_factory.mktemp("blend") / "run"
    try:
        exp = Experiment(
            data={"type": "molecule", "path": [str(ESOL)], "task": "regression", "target_columns": ["logp"],
                  "split": "random", "split_sizes": [0.7, 0.15, 0.15]},
            train={"max_epochs": 4, "batch_size": 32, "progress_bar": False, "seed": 0, "threads": 1},
            evaluate={"baselines": ["linear"], "plots": False, "report": False},
        )  # fmt: skip
        assert exp.config.data.molecule.featurizer == ["morgan_counts", "rdkit2d"]  # the baseline's features
        exp.fit(out)
    finally:
        patch.undo()
    return out, dict(json.loads((out / "metrics.json").read_text()))


def test_both_families_train_on_the_same_graphs(run: tuple[Path, dict[str, Any]]) -> None:
    _, m = run
    cands = m["model_selection"]["candidates"]
    trained = [c for c in cands if c["status"] == "trained"]
    assert len(trained) == 2
    metas = [json.loads((Path(c["model_dir"]) / "bundle.json").read_text()) for c in trained]
    assert [x["data"]["molecule"]["featurizer"] for x in metas] == [list(BLEND_FEATURIZER)] * 2
    assert metas[0]["model"]["in_shape"] == metas[1]["model"]["in_shape"]  # same inputs: they can be averaged
    best_single = min(c["val"]["rmse"] for c in trained)
    average = next(c for c in cands if c["index"] == "average")
    rule = average["blend_rule"]
    assert rule["rule"] == "auto" and rule["prior"] == "average"  # molecules: the mean of the two families
    assert rule["gain_over_best"] == pytest.approx(best_single - average["val"]["rmse"])  # positive: the mean is better
    single_clearly_better = -rule["gain_over_best"] > rule["standard_error"] > 0
    if average["status"] == "averaged":  # kept unless the better family wins validation by more than 1 SE
        assert not single_clearly_better and m["val"]["rmse"] == pytest.approx(average["val"]["rmse"])
    else:
        assert single_clearly_better and m["val"]["rmse"] == pytest.approx(best_single)
    assert m["baseline"]["name"] == "linear"  # the yardstick stays on the run's own vector features


def test_a_blend_of_the_two_families_saves_reloads_and_predicts_their_mean(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, m = run
    dirs = [Path(c["model_dir"]) for c in m["model_selection"]["candidates"] if c["status"] == "trained"]
    members = [bundle_io.load(d) for d in dirs]
    specs = [(str(b.meta["model"]["name"]), dict(b.meta["model"]["params"])) for b in members]
    blend = Ensemble.blend([b.model for b in members], specs, "regression").eval()
    name, params = blend.spec()
    first = members[0]
    meta = {**first.meta, "model": {**first.meta["model"], "name": name, "params": params}}
    saved = bundle_io.Bundle(blend, first.modality, meta, first.target_scaler).save(tmp_path / "model")
    again = bundle_io.load(saved)
    smiles = np.array(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"], dtype=object)
    X = again.modality.transform(smiles)
    got = again.predict_arrays(X)
    want = np.mean([b.predict_arrays(b.modality.transform(smiles)) for b in members], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # per-atom attributions of the blend: each family's, weighted by its share of the mean
    both = explain_molecules(again, ["c1ccccc1O"], target=0)[0]
    parts = [explain_molecules(b, ["c1ccccc1O"], target=0)[0] for b in members]
    assert both.weights.shape == (7,) and np.isfinite(both.weights).all() and np.abs(both.weights).sum() > 0
    np.testing.assert_allclose(both.weights, np.mean([p.weights for p in parts], axis=0), rtol=1e-4, atol=1e-6)


def test_the_dmpnn_reads_only_the_descriptors_and_the_ffn_the_slots(run: tuple[Path, dict[str, Any]]) -> None:
    _, m = run
    dirs = [Path(c["model_dir"]) for c in m["model_selection"]["candidates"] if c["status"] == "trained"]
    ffn_b, dmpnn_b = (bundle_io.load(d) for d in dirs)
    X = dmpnn_b.modality.transform(np.array(["CCO", "c1ccccc1N"], dtype=object))
    n_bits = 128
    rows, width = X.shape[1:]
    slots = X[:, :, BASE_WIDTH:].reshape(len(X), -1).copy()
    changed = slots.copy()
    changed[:, :n_bits] += 5.0  # the fingerprint part of the slots
    Xc = X.copy()
    Xc[:, :, BASE_WIDTH:] = changed.reshape(len(X), rows, width - BASE_WIDTH)
    with torch.no_grad():
        d0, d1 = (dmpnn_b.model(torch.from_numpy(a)) for a in (X, Xc))
        f0, f1 = (ffn_b.model(torch.from_numpy(a)) for a in (X, Xc))
    assert torch.allclose(d0, d1)  # extra_features: [rdkit2d]: the fingerprint slots are not read
    assert not torch.allclose(f0, f1)  # the dense network reads them
    mask = dmpnn_b.model.extra_mask  # type: ignore[union-attr]
    assert mask[:n_bits].sum() == 0 and mask[n_bits:].sum() == len(dmpnn_b.modality.featurizers[1].names())


def test_the_default_candidates_read_the_same_inputs() -> None:
    from biodl.config import ExperimentConfig

    base = ExperimentConfig.from_dict({"data": {"type": "molecule", "task": "regression"}})
    cfgs = [candidate_config(base, c) for c in MoleculeModality.portfolio]
    assert {c.model.name for c in cfgs} == {"ffn", "dmpnn"}
    assert all(c.data == cfgs[0].data for c in cfgs)  # one prepared input: the two can be averaged
    assert base.data.molecule.featurizer == ["morgan_counts", "rdkit2d"]


def test_molecule_classification_keeps_the_better_family_unless_validation_favours_the_mean(tmp_path: Path) -> None:
    """The mean of the two families is the prior for regression only: a classification run on real molecules
    (ESOL's, labelled soluble above the median log-solubility) records prior ``single`` and keeps the better
    family unless the mean wins validation by more than one standard error."""
    import pandas as pd

    frame = pd.read_csv(ESOL)
    frame["soluble"] = (frame["logp"] > frame["logp"].median()).astype(int)
    path = tmp_path / "esol_soluble.csv"
    frame.drop(columns=["logp"]).to_csv(path, index=False)
    patch = pytest.MonkeyPatch()
    patch.setattr(MoleculeModality, "portfolio", TINY)
    out = tmp_path / "run"
    try:
        Experiment(
            data={"type": "molecule", "path": [str(path)], "task": "classification", "target_columns": ["soluble"],
                  "split": "random", "split_sizes": [0.7, 0.15, 0.15]},
            train={"max_epochs": 3, "batch_size": 32, "progress_bar": False, "seed": 0, "threads": 1},
            evaluate={"baselines": [], "plots": False, "report": False},
        ).fit(out)  # fmt: skip
    finally:
        patch.undo()
    m = json.loads((out / "metrics.json").read_text())
    cands = m["model_selection"]["candidates"]
    trained = [c for c in cands if c["status"] == "trained"]
    average = next(c for c in cands if c["index"] == "average")
    rule = average["blend_rule"]
    assert rule["prior"] == "single" and MoleculeModality.blend_prior_for("regression") == "average"
    metric = m["model_selection"]["metric"]
    wins = rule["gain_over_best"] > rule["standard_error"] > 0
    want = average["val"][metric] if wins else max(c["val"][metric] for c in trained)
    assert average["status"] == ("averaged" if wins else "not chosen") and m["val"][metric] == pytest.approx(want)


def test_the_report_draws_atom_attributions_of_the_averaged_families(run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The run report's atom figure of ``auto``'s average: D-MPNN and dense members both attributed (it
    was skipped with a note, "graph attributions need a D-MPNN")."""
    from biodl.bundle import load
    from biodl.explain.run_figures import molecule_figures
    from biodl.inference import load_data

    out, _ = run
    bundle = load(out)
    data = load_data(bundle, [str(ESOL)], {}, require_targets=False)
    rows = np.arange(4)
    X = np.asarray(bundle.modality.transform(data.X[rows]))
    figures = molecule_figures(bundle.modality, bundle.model, X, data, rows, bundle.predict_arrays(X), tmp_path)
    (path,) = figures.values()
    assert path.is_file() and len(list(tmp_path.glob("atoms_*.png"))) == 4
