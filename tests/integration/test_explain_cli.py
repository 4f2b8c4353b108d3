"""End to end: a tiny sequence model's run report gains the interpretation section; explain/motifs/variants CLIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.cli.main import main
from toy_models import one_thread  # noqa: F401

LENGTH = 60


def _write_fasta(path: Path, seqs: list[str], prefix: str) -> Path:
    path.write_text("".join(f">{prefix}{i}\n{s}\n" for i, s in enumerate(seqs)))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A DeepBind model trained for a few epochs on random sequences with / without a planted CTCF site."""
    from biodl import Experiment
    from biodl.explain import jaspar_motifs

    db = jaspar_motifs()
    ppm = db.ppms[next(i for i, m in enumerate(db.ids) if m.startswith("MA0139"))]
    rng = np.random.default_rng(0)
    pos, neg = [], []
    for i in range(300):
        s = rng.choice(list("ACGT"), LENGTH)
        if i % 2 == 0:
            site = [("ACGT")[rng.choice(4, p=ppm[:, j])] for j in range(ppm.shape[1])]
            k = rng.integers(0, LENGTH - len(site))
            s[k : k + len(site)] = site
            pos.append("".join(s))
        else:
            neg.append("".join(s))
    d = tmp_path_factory.mktemp("explain")
    pos_fa, neg_fa = _write_fasta(d / "bound.fa", pos, "b"), _write_fasta(d / "unbound.fa", neg, "u")
    exp = Experiment(
        data={"type": "sequence", "path": [str(pos_fa), str(neg_fa)]},
        model={"name": "deepbind", "filters": 8, "filter_width": 17, "hidden_sizes": [], "dropout": 0.0},
        train={"max_epochs": 6, "progress_bar": False, "seed": 0, "batch_size": 32, "lr": 0.01},
        evaluate={"baselines": []},
    )
    out = d / "run"
    exp.fit(out)
    return out, pos_fa


def test_report_has_interpretation(run: tuple[Path, Path]) -> None:
    out, _ = run
    html = (out / "report.html").read_text()
    assert "Interpretation" in html and "Mutation maps" in html and "Filter motifs" in html
    files = {p.name for p in (out / "interpretation").iterdir()}
    assert {"motifs.meme", "motif_matches.tsv", "filter_logos.png", "mutation_map_0.png"} <= files


def test_explain_cli(run: tuple[Path, Path], tmp_path: Path) -> None:
    out, pos_fa = run
    ism = tmp_path / "ism"
    assert main(["explain", "--model-path", str(out), "--data-path", str(pos_fa), "--method", "ism", "--output-dir", str(ism),
                 "--max-sequences", "4", "--plots", "2"]) == 0  # fmt: skip
    assert np.load(ism / "attributions.npy").shape == (4, 4, LENGTH)
    npz = np.load(ism / "explain.npz")
    assert npz["sequences"].shape == (4, 4, LENGTH) and list(npz["ids"][:2]) == ["b0", "b1"]
    assert len(list((ism / "figures").glob("*.png"))) == 2 and len(list((ism / "figures").glob("*.svg"))) == 2
    dl = tmp_path / "dl"
    assert main(["explain", "--model-path", str(out), "--data-path", str(pos_fa), "--method", "deeplift", "--n-shuffles", "2",
                 "--output-dir", str(dl), "--max-sequences", "3", "--plots", "1", "--format", "png"]) == 0  # fmt: skip
    assert np.load(dl / "attributions.npy").shape == (3, 4, LENGTH)
    # sequences shorter than the model's input: an error naming the record, or padded with N on request
    short = _write_fasta(tmp_path / "short.fa", ["ACGT" * 10], "s")
    assert main(["explain", "--model-path", str(out), "--data-path", str(short), "--output-dir", str(tmp_path / "e")]) == 2
    assert main(["explain", "--model-path", str(out), "--data-path", str(short), "--output-dir", str(tmp_path / "p"),
                 "--length-mode", "pad", "--method", "ig", "--plots", "0"]) == 0  # fmt: skip


def test_motifs_cli(run: tuple[Path, Path], tmp_path: Path) -> None:
    out, pos_fa = run
    mo = tmp_path / "motifs"
    assert main(["motifs", "--model-path", str(out), "--data-path", str(pos_fa), "--output-dir", str(mo)]) == 0
    table = pd.read_csv(mo / "motif_matches.tsv", sep="\t")
    assert list(table.columns) == ["filter", "rank", "jaspar_id", "jaspar_name", "score", "p_value"]
    assert table.groupby("filter")["rank"].max().max() == 5
    # default --jaspar-versions best: every version compared, each matrix (base ID) once per filter
    base = table["jaspar_id"].str.rsplit(".", n=1).str[0]
    assert not base.groupby(table["filter"]).apply(lambda s: s.duplicated().any()).any()
    assert (mo / "motifs.meme").read_text().startswith("MEME version 4")
    assert any((mo / "logos").glob("filter_*.png"))
    assert main(["motifs", "--model-path", str(out), "--data-path", str(pos_fa), "--output-dir", str(mo), "--layer", "nope"]) == 2


def test_motifs_cli_latest_versions(run: tuple[Path, Path], tmp_path: Path) -> None:
    from biodl.explain import jaspar_motifs

    out, pos_fa = run
    mo = tmp_path / "latest"
    assert main(["motifs", "--model-path", str(out), "--data-path", str(pos_fa), "--output-dir", str(mo),
                 "--jaspar-versions", "latest", "--top", "3"]) == 0  # fmt: skip
    table = pd.read_csv(mo / "motif_matches.tsv", sep="\t")
    assert len(table) and set(table["jaspar_id"]) <= set(jaspar_motifs().ids)
    with pytest.raises(SystemExit) as err:  # argparse: unknown choice
        main(["motifs", "--model-path", str(out), "--data-path", str(pos_fa), "--output-dir", str(mo),
              "--jaspar-versions", "newest"])  # fmt: skip
    assert err.value.code == 2


def test_variants_cli(run: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = run
    rng = np.random.default_rng(1)
    chrom = "".join(rng.choice(list("ACGT"), 200))
    genome = _write_fasta(tmp_path / "g.fa", [chrom], "chr")  # contig "chr0"
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT"]
    lines += [f"chr0\t{p}\tv{p}\t{chrom[p - 1]}\t{alt[chrom[p - 1]]}" for p in (50, 100)]
    lines += [f"chr0\t120\tdel\t{chrom[119:122]}\t{chrom[119]}", f"chr0\t150\tbad\t{alt[chrom[149]]}\tA", "chrX\t10\tx\tA\tC"]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    res = tmp_path / "scores.tsv"
    assert main(["variants", "--model-path", str(out), "--fasta", str(genome), "--vcf", str(vcf), "--output", str(res)]) == 0
    table = pd.read_csv(res, sep="\t").set_index("id")
    assert list(table["status"]) == ["scored", "scored", "scored", "ref_mismatch", "unknown_contig"]
    diff_cols = [c for c in table.columns if c.startswith("logodds_diff_")]
    assert len(diff_cols) == 1 and table[diff_cols[0]].iloc[:3].notna().all()
    assert main(["variants", "--model-path", str(out), "--fasta", str(genome), "--vcf", str(vcf), "--output", str(res),
                 "--on-error", "raise"]) == 2  # fmt: skip
