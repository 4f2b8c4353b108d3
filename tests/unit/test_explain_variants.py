"""Variant effects on a hand-made genome and VCF with known answers (SNVs, indels, bad records)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from biodl.errors import DataError
from biodl.explain import read_variants, variant_effects, write_variant_effects
from toy_models import one_thread  # noqa: F401

#: chr1, 1-based: 1-4 A, 5-8 C, 9-12 G, 13-16 T, 17-20 A, 21-24 C, 25-28 G, 29-32 T.
CHR1 = "AAAACCCCGGGGTTTTAAAACCCCGGGGTTTT"
VCF = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=32>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
chr1\t10\tsnv\tG\tA\t.\t.\t.
chr1\t9\tdel\tGG\tG\t.\t.\t.
chr1\t8\tins\tC\tCTT\t.\t.\t.
chr1\t10\tmulti\tG\tA,T\t.\t.\t.
chr1\t2\tedge\tA\tG\t.\t.\t.
chr1\t1\tmismatch\tG\tA\t.\t.\t.
chr1\t40\tpast\tA\tG\t.\t.\t.
chr2\t5\tunknown\tA\tG\t.\t.\t.
chr1\t12\tsymbolic\tG\t<DEL>\t.\t.\t.
"""


class GCount(nn.Module):
    """Logit = number of G in the window: every effect is a difference of G counts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 2, :].sum(-1, keepdim=True)


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    fa = tmp_path / "genome.fa"
    fa.write_text(">chr1 test\n" + CHR1[:20] + "\n" + CHR1[20:] + "\n>chrM\nACGT\n")
    return fa


@pytest.fixture
def vcf(tmp_path: Path) -> Path:
    p = tmp_path / "variants.vcf.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(VCF)
    return p


def test_known_answers(genome: Path, vcf: Path) -> None:
    with pytest.warns(RuntimeWarning, match="not scored"):
        res = variant_effects(GCount(), genome, vcf, length=8, tasks=["g"])
    t = res.table.set_index("id")
    # windows of 8 bp start 4 bases left of the variant: snv CCCG[G→A]GGT, del CCCC[GG→G]GGT (extended from the genome),
    # ins ACCC[C→CTT]G (trimmed), edge NNNA[A→G]AAC (padded with N past the contig start)
    expected = {"snv": (4, 3), "del": (4, 3), "ins": (3, 1), "edge": (0, 1)}
    for vid, (g_ref, g_alt) in expected.items():
        row = t.loc[vid]
        assert row["status"] == "scored", vid
        assert row["logodds_diff_g"] == pytest.approx(g_alt - g_ref), vid
        assert row["ref_g"] == pytest.approx(1 / (1 + np.exp(-g_ref)))
        assert row["alt_g"] == pytest.approx(1 / (1 + np.exp(-g_alt)))
        assert row["diff_g"] == pytest.approx(row["alt_g"] - row["ref_g"])
    assert t.loc["del", "type"] == "deletion" and t.loc["ins", "type"] == "insertion" and t.loc["snv", "type"] == "SNV"
    assert bool(t.loc["edge", "clipped"])
    multi = res.table[res.table["id"] == "multi"]
    assert list(multi["alt"]) == ["A", "T"] and list(multi["logodds_diff_g"]) == [-1.0, -1.0]
    assert t.loc["mismatch", "status"] == "ref_mismatch" and t.loc["mismatch", "genome_ref"] == "A"
    assert t.loc["past", "status"] == "past_contig_end"
    assert t.loc["unknown", "status"] == "unknown_contig"
    assert t.loc["symbolic", "status"] == "unsupported_allele"
    assert np.isnan(t.loc["mismatch", "diff_g"])
    s = res.summary
    assert (s["records"], s["variants"], s["multiallelic_split"], s["scored"]) == (9, 10, 1, 6)
    assert (s["ref_mismatch"], s["past_contig_end"], s["unknown_contig"], s["unsupported_allele"]) == (1, 1, 1, 1)


def test_errors_raise_and_edges_skip(genome: Path, vcf: Path) -> None:
    with pytest.raises(DataError, match=r"REF 'G' does not match the genome \('A'\) at chr1:1"):
        variant_effects(GCount(), genome, vcf, length=8, on_error="raise")
    table = pd.DataFrame({"chrom": ["chr1", "chr1"], "pos": [2, 16], "ref": ["A", "T"], "alt": ["G", "C"]})
    with pytest.warns(RuntimeWarning, match="window_past_contig_end"):
        res = variant_effects(GCount(), genome, table, length=8, window_edge="skip")
    assert list(res.table["status"]) == ["window_past_contig_end", "scored"]
    with pytest.raises(DataError, match=r"contig 'chr3' is not in genome\.fa"):
        variant_effects(GCount(), genome, table.assign(chrom="chr3"), length=8, on_error="raise")


def test_rc_average_and_outputs(genome: Path, vcf: Path, tmp_path: Path) -> None:
    table = pd.DataFrame({"chrom": ["chr1"], "pos": [10], "id": ["x"], "ref": ["G"], "alt": ["C"]})
    res = variant_effects(GCount(), genome, table, length=8, rc_average=True, activation="none")
    # forward strand: G 4 → 3; reverse complement: G = C count of the window, 3 → 4: average (3.5, 3.5)
    assert res.table.loc[0, "ref_t0"] == pytest.approx(3.5) and res.table.loc[0, "diff_t0"] == pytest.approx(0.0)
    assert "logodds_diff_t0" not in res.table.columns
    for name in ("v.tsv", "v.parquet", "v.csv"):
        out = write_variant_effects(res, tmp_path / name)
        back = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out, sep="\t" if name.endswith("tsv") else ",")
        assert list(back["id"]) == ["x"]
    variants, counts = read_variants(vcf)
    assert counts == {"records": 9, "variants": 10, "multiallelic_split": 1}
    assert list(variants.columns) == ["chrom", "pos", "id", "ref", "alt", "record"]


def _window_scores_plain(model: nn.Module, windows: list[str]) -> np.ndarray:
    from biodl.data.sequence.alphabet import one_hot_encode

    X = torch.from_numpy(np.stack([one_hot_encode(w, "dna", unknown="zero") for w in windows]).astype(np.float32))
    with torch.inference_mode():
        return model.eval()(X)[:, 0].double().numpy()


@pytest.mark.parametrize("arch", ["deepbind", "basset"])
def test_batched_paths_equal_window_by_window_scores(tmp_path: Path, arch: str) -> None:
    """Sorted block reads, ref/alt/strands in one batch and fast-ISM SNVs give each window's own model output."""
    from biodl.data.sequence.genome import Genome
    from biodl.explain.variant_effects import variant_windows
    from biodl.models import build_model

    rng = np.random.default_rng(0)
    seqs = {"chr2": "".join(rng.choice(list("ACGT"), 3000)), "chr1": "".join(rng.choice(list("ACGT"), 2000))}
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    rows = []
    for i in range(60):  # unsorted, both contigs, SNVs and indels
        chrom = "chr1" if i % 2 else "chr2"
        pos = int(rng.integers(50, len(seqs[chrom]) - 50))
        ref = seqs[chrom][pos - 1]
        alt = {0: "ACGT".replace(ref, "")[i % 3], 1: ref + "GT", 2: ref}[i % 3 if i % 5 == 0 else 0]
        if i % 7 == 0:
            ref, alt = seqs[chrom][pos - 1 : pos + 2], seqs[chrom][pos - 1]
        rows.append((chrom, pos, f"v{i}", ref, alt))
    table = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])
    torch.manual_seed(0)
    params = {"filters": [8, 8, 8], "filter_widths": [7, 5, 3], "pool_sizes": [2, 2, 2], "hidden_sizes": [8]}
    model = build_model(arch, (4, 41), 1, params if arch == "basset" else {"filters": 8, "filter_width": 7}).eval()
    res = variant_effects(model, fa, table, activation="none", batch_size=16)
    g = Genome(fa)
    wins = [variant_windows(g, r.chrom, r.pos, r.ref, r.alt, 41) for r in table.itertuples()]
    t = res.table
    assert list(t["id"]) == list(table["id"])  # input order kept
    np.testing.assert_allclose(t["ref_t0"], _window_scores_plain(model, [w[0] for w in wins]), atol=1e-5)
    np.testing.assert_allclose(t["alt_t0"], _window_scores_plain(model, [w[1] for w in wins]), atol=1e-5)


def _random_case(tmp_path: Path, n: int = 80) -> tuple[Path, pd.DataFrame]:
    """A random two-contig genome and unsorted SNVs, indels, N alleles, edge windows and bad records."""
    rng = np.random.default_rng(3)
    seqs = {"chr2": "".join(rng.choice(list("ACGT"), 1500)), "chr1": "".join(rng.choice(list("ACGT"), 900))}
    seqs["chr1"] = seqs["chr1"][:400] + "N" * 5 + seqs["chr1"][405:]
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    rows = []
    for i in range(n):
        chrom = "chr1" if i % 2 else "chr2"
        pos = int(rng.integers(1, len(seqs[chrom]) + 1))
        ref = seqs[chrom][pos - 1]
        alt = "ACGTN".replace(ref, "")[i % 4]
        if i % 9 == 0:
            ref, alt = seqs[chrom][pos - 1 : pos + 1], ref  # deletion (or REF past the end)
        if i % 11 == 0:
            ref = "ACGT".replace(ref, "")[0]  # REF mismatch
        rows.append((chrom if i % 13 else "chrX", pos, f"v{i}", ref, alt))
    # windows past both contig ends, an N reference letter, an N alternative
    c1, c2 = seqs["chr1"], seqs["chr2"]
    rows += [
        ("chr2", 3, "left", c2[2], "ACGT".replace(c2[2], "")[0]),
        ("chr1", 899, "right", c1[898], "ACGT".replace(c1[898], "")[1]),
    ]
    rows += [("chr1", 402, "refN", "N", "A"), ("chr2", 700, "altN", c2[699], "N")]
    return fa, pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])


def test_stream_equals_in_memory_and_keeps_row_order(tmp_path: Path) -> None:
    """Chunked, streamed output (Parquet and TSV) holds exactly the in-memory table, rows in input order."""
    from biodl.explain.variant_effects import stream_variant_effects
    from biodl.models import build_model

    fa, table = _random_case(tmp_path)
    torch.manual_seed(0)
    model = build_model("deepbind", (4, 31), 2, {"filters": 8, "filter_width": 7, "hidden_sizes": [8]}).eval()
    with pytest.warns(RuntimeWarning, match="not scored"):
        whole = variant_effects(model, fa, table)
    assert {"ref_mismatch", "unknown_contig", "scored"} <= set(whole.table["status"])
    for name in ("out.parquet", "out.tsv"):
        with pytest.warns(RuntimeWarning, match="not scored"):
            path, summary, tasks = stream_variant_effects(model, fa, table, tmp_path / name, chunk_size=7)
        got = pd.read_parquet(path) if name.endswith("parquet") else pd.read_csv(path, sep="\t", keep_default_na=False)
        assert summary == whole.summary and tasks == whole.tasks
        assert list(got["id"]) == list(table["id"])
        np.testing.assert_allclose(got["ref_t1"].replace("", np.nan).astype(float), whole.table["ref_t1"], atol=1e-6)
        np.testing.assert_allclose(got["diff_t0"].replace("", np.nan).astype(float), whole.table["diff_t0"], atol=1e-6)
        assert not (tmp_path / (name + ".partial")).exists()


def test_interrupted_stream_leaves_no_complete_looking_file(tmp_path: Path) -> None:
    """An error in a later chunk removes the partial output; the final name never appears."""
    from biodl.explain.variant_effects import stream_variant_effects

    fa, table = _random_case(tmp_path, n=40)
    calls = {"n": 0}

    class FailsLater(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            if calls["n"] > 2:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the third forward pass
            return x[:, 2, :].sum(-1, keepdim=True)

    out = tmp_path / "scores.parquet"
    with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning):
        stream_variant_effects(FailsLater(), fa, table, out, length=21, chunk_size=5)
    assert calls["n"] == 3
    assert not out.exists() and not (tmp_path / "scores.parquet.partial").exists()


def test_snv_kernel_matches_window_by_window_with_n_and_edges(tmp_path: Path) -> None:
    """The fused SNV kernel (DeepBind, both strands, N letters, clipped windows) equals each window's own output."""
    from biodl.data.sequence.genome import Genome
    from biodl.explain.variant_effects import variant_windows
    from biodl.models import build_model

    fa, table = _random_case(tmp_path)
    torch.manual_seed(1)
    model = build_model("deepbind", (4, 31), 1, {"filters": 8, "filter_width": 7, "padding": "same"}).eval()
    with pytest.warns(RuntimeWarning):
        t = variant_effects(model, fa, table, activation="none").table
    ok = t["status"] == "scored"
    assert t.loc[ok, "clipped"].any() and (t.loc[ok, "type"] == "SNV").sum() > 20
    g = Genome(fa)
    wins = [variant_windows(g, r.chrom, r.pos, r.ref, r.alt, 31) for r in t[ok].itertuples()]
    np.testing.assert_allclose(t.loc[ok, "ref_t0"], _window_scores_plain(model, [w[0] for w in wins]), atol=1e-5)
    np.testing.assert_allclose(t.loc[ok, "alt_t0"], _window_scores_plain(model, [w[1] for w in wins]), atol=1e-5)


def test_stream_reads_a_vcf_in_chunks(tmp_path: Path, genome: Path, vcf: Path) -> None:
    """A VCF read chunk by chunk (multi-allelic records split within a chunk) gives the in-memory table and counts."""
    from biodl.explain.variant_effects import stream_variant_effects

    with pytest.warns(RuntimeWarning, match="not scored"):
        whole = variant_effects(GCount(), genome, vcf, length=8, tasks=["g"])
    with pytest.warns(RuntimeWarning, match="not scored"):
        path, summary, _ = stream_variant_effects(GCount(), genome, vcf, tmp_path / "v.tsv", length=8, tasks=["g"], chunk_size=2)
    got = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert summary == whole.summary
    assert list(got["id"]) == list(whole.table["id"]) and list(got["record"]) == list(whole.table["record"])
    assert list(got["status"]) == list(whole.table["status"])
    np.testing.assert_allclose(got["diff_g"].replace("", np.nan).astype(float), whole.table["diff_g"])
