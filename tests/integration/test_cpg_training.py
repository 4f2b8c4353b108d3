"""DeepCpG-style training: the CpG module on the real serum cells (chr18), the DNA module and the joint model on a
genome the test writes (the real chr18 sequence is not available), bundles with every input's fitted state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biodl import load
from biodl.experiment import Experiment
from biodl.inference import load_data, predict_frame
from conftest import shared_path

QUIET = {"threads": 1, "progress_bar": False}
NO_FIGURES = {"plots": False, "report": False}


def test_cpg_module_on_real_cells(tmp_path: Path) -> None:
    paths = [str(shared_path("methylation", "deepcpg_smallwood2014", f"{c}_chr18.tsv.gz")) for c in ("BS27_4_SER", "BS28_2_SER")]
    exp = Experiment(
        data={"type": "cpg", "path": paths, "task": "classification", "cpg": {"k": 10}},
        model={"name": "deepcpg", "gru_hidden": 16, "cpg_embed": 16},
        train={**QUIET, "max_epochs": 2},
        evaluate=NO_FIGURES,
    )
    res = exp.fit(tmp_path / "run")
    test = res.metrics["test"]
    assert set(test["per_task"]) == {"BS27_4_SER", "BS28_2_SER"}
    assert test["auroc"] > 0.65  # neighbouring states predict a site's state (chance: 0.5)
    assert res.metrics["baseline"]["name"] == "neighbour_mean"


def _genome_and_cells(root: Path, n_sites: int = 1500) -> tuple[Path, list[Path]]:
    """A random 'chr1' with a CpG every 40 bp; a site is methylated when the base after its CG is A or C (cell a)
    or G or T (cell b), each cell observing a random 70 % of the sites."""
    rng = np.random.default_rng(0)
    seq = rng.choice(list("ACGT"), size=n_sites * 40 + 100)
    pos = np.arange(50, 50 + 40 * n_sites, 40)  # 1-based C of each CpG
    seq[pos - 1], seq[pos] = "C", "G"
    after = seq[pos + 1]
    genome = root / "genome.fa"
    genome.write_text(">chr1\n" + "".join(seq) + "\n")
    cells = []
    for name, methylated in (("a", "AC"), ("b", "GT")):
        state = np.isin(after, list(methylated)).astype(int)
        keep = rng.random(n_sites) < 0.7
        path = root / f"{name}_chr1.tsv"
        path.write_text("".join(f"1\t{p}\t{s}\n" for p, s in zip(pos[keep], state[keep], strict=True)))
        cells.append(path)
    return genome, cells


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    return _genome_and_cells(tmp_path_factory.mktemp("genome"), n_sites=1500)


@pytest.mark.parametrize("modules", [["dna"], None])
def test_dna_module_and_joint_model_on_a_written_genome(
    tmp_path: Path, written: tuple[Path, list[Path]], modules: list[str] | None
) -> None:
    genome, cells = written
    exp = Experiment(
        data={"type": "cpg", "path": [str(c) for c in cells], "task": "classification",
              "sequence": {"genome": str(genome)}, "cpg": {"k": 3, "window": 21, "block_size": 5000},
              "inputs": {"seq": {"type": "dna-window"}, "neighbours": {"type": "cpg-neighbours"}}},
        model={"name": "deepcpg", "modules": [m.replace("dna", "seq") for m in modules] if modules else None,
               "dna_filters": 16, "gru_hidden": 8, "cpg_embed": 8, "joint_hidden": [16]},
        train={**QUIET, "max_epochs": 6, "lr": 0.005},
        evaluate={**NO_FIGURES, "baselines": []},
    )  # fmt: skip
    res = exp.fit(tmp_path / "run")
    assert res.metrics["val"]["auroc"] > 0.8  # the base after the CpG decides the state: the DNA branch reads it
    bundle = load(tmp_path / "run")
    assert set(bundle.meta["model"]["params"]["inputs"]) == {"seq", "neighbours"}
    data = load_data(bundle, [str(c) for c in cells], require_targets=True)
    frame, out = predict_frame(bundle, data)
    assert list(frame.columns) == ["id", "a", "b"] and out.shape == (len(data), 2)
    if modules is None:  # explain: the base after the CpG's G (offset +2) drives both cells' predictions
        from biodl.explain.multi_input import explain_multi_input

        X = bundle.modality.transform(data.X[:200])
        res = explain_multi_input(bundle, X, np.asarray(data.ids)[:200], targets=[0, 1], method="ixg")
        assert res.parts["seq"].shape == (200, 2, 4, 21) and res.parts["neighbours"].shape == (200, 2, 2, 6, 3)
        table = res.position_table("seq")
        for cell in ("a", "b"):
            rows = table[table.target == cell]
            assert int(rows.offset[rows.mean_abs_attribution.idxmax()]) == 2
        assert (res.input_shares().share_seq > 0.5).mean() > 0.8  # the DNA input, not the neighbours, decides


def test_two_tables_as_two_inputs(tmp_path: Path) -> None:
    """``--data-type multi``: two data types' files aligned by id; the target follows the second file only."""
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 240
    ids = [f"e{i}" for i in range(n)]
    signal = rng.standard_normal(n)
    first = pd.DataFrame({"id": ids, "noise": rng.standard_normal(n), "y": (signal > 0).astype(int)})
    order = rng.permutation(n)
    second = pd.DataFrame({"id": [ids[i] for i in order], "signal": signal[order], "other": rng.standard_normal(n)})
    first.to_csv(tmp_path / "first.csv", index=False)
    second.to_csv(tmp_path / "second.csv", index=False)
    exp = Experiment(
        data={"type": "multi", "id_column": "id", "target_columns": ["y"], "task": "classification",
              "inputs": {"a": {"type": "tabular", "path": [str(tmp_path / "first.csv")]},
                         "b": {"type": "tabular", "path": [str(tmp_path / "second.csv")]}}},
        model={"name": "deepcpg", "dense_hidden": 8, "joint_hidden": [8]},
        train={**QUIET, "max_epochs": 15, "lr": 0.01},
        evaluate={**NO_FIGURES, "baselines": ["linear"]},
    )  # fmt: skip
    res = exp.fit(tmp_path / "run")
    assert res.metrics["test"]["auroc"] > 0.85  # only possible when row i of 'b' is example i of 'a'
    bundle = load(tmp_path / "run")
    raw = bundle.modality.parse_inputs([{"a": {"noise": 0.1}, "b": {"signal": 2.0, "other": 0.0}}])
    assert raw.shape == (1, 3)
    # predict: --data-path gives the first input's files, the second input keeps its own
    data = load_data(bundle, [str(tmp_path / "first.csv")], require_targets=False)
    frame, _ = predict_frame(bundle, data)
    assert len(frame) == n and list(frame.id[:3]) == ids[:3]
    # explain: the second input (the signal) carries most of the attribution, per input and per feature
    from biodl.explain.multi_input import explain_multi_input

    res = explain_multi_input(bundle, bundle.modality.transform(data.X), np.asarray(data.ids), targets=[0], method="ig")
    assert res.parts["a"].shape == (n, 1, 1) and res.parts["b"].shape == (n, 1, 2)
    shares = res.input_shares()
    assert shares.share_b.mean() > 0.7 > shares.share_a.mean()
    b = np.abs(res.parts["b"]).mean(axis=(0, 1))
    assert b[0] > b[1]  # 'signal' over 'other'
