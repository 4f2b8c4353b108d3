"""Variant scoring at scale: ``stream_variant_effects`` on 10^5 and 10^6 SNVs + indels, time and peak memory.

A seeded random genome (two contigs of ``--contig-mb`` Mb) and a VCF in genome order with
``--indel-fraction`` indels (1-3 bp insertions and deletions), the rest SNVs. Each size runs in
its own process (``biodl variants``' code path: chunked scoring streamed to Parquet through a
``.partial`` file) with biodl's default DeepBind on 101 bp; the table records variants/s and the
process's peak RSS, so flat memory shows as the same peak for 10x more variants.

Run: ``.venv/bin/python benchmarks/variants_scale.py``; writes ``benchmarks/results/variants_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results


def _write_inputs(tmp: Path, n_var: int, contig_mb: float, indel_fraction: float, seed: int) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(seed)
    size = int(contig_mb * 1e6)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    contigs = {f"chr{i + 1}": letters[rng.integers(0, 4, size)].tobytes().decode() for i in range(2)}
    fasta = tmp / "genome.fa"
    with open(fasta, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            fh.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    vcf = tmp / "variants.vcf"
    with open(vcf, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        k = 0
        for name, seq in contigs.items():
            m = n_var // 2 if name == "chr1" else n_var - n_var // 2
            pos = np.sort(rng.choice(np.arange(200, size - 200), size=m, replace=False)) + 1
            kind = rng.random(m)
            shift = rng.integers(1, 4, m)
            extra = letters[rng.integers(0, 4, (m, 3))]
            lines = []
            for p, u, s, e in zip(pos.tolist(), kind.tolist(), shift.tolist(), extra.tolist(), strict=True):
                ref = seq[p - 1]
                if u < indel_fraction / 2:  # deletion of s bases after the anchor
                    ref, alt = seq[p - 1 : p + s], ref
                elif u < indel_fraction:  # insertion of s bases after the anchor
                    alt = ref + bytes(e[:s]).decode()
                else:
                    alt = "ACGT"[("ACGT".index(ref) + 1 + s % 3) % 4]
                lines.append(f"{name}\t{p}\tv{k}\t{ref}\t{alt}\t.\t.\t.\n")
                k += 1
            fh.writelines(lines)
    return fasta, vcf


_CHILD = """
import json, resource, sys, time, warnings
import torch
torch.set_num_threads({threads})
from biodl.explain import stream_variant_effects
from biodl.models import build_model
torch.manual_seed(0)
model = build_model("deepbind", (4, 101), 1, {{}}).eval()
warnings.simplefilter("ignore")
t0 = time.perf_counter()
path, summary, _ = stream_variant_effects(model, {fasta!r}, {vcf!r}, {out!r}, activation="none")
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": dt, "peak_rss_mib": rss, "summary": summary}}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--contig-mb", type=float, default=10.0)
    parser.add_argument("--indel-fraction", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cases: list[dict[str, Any]] = []
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for n in args.sizes:
            fasta, vcf = _write_inputs(tmp, n, args.contig_mb, args.indel_fraction, args.seed)
            out = tmp / "scores.parquet"
            code = _CHILD.format(threads=args.threads, fasta=str(fasta), vcf=str(vcf), out=str(out))
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            import pyarrow.parquet as pq

            n_rows = pq.ParquetFile(out).metadata.num_rows
            assert n_rows == n and not (tmp / "scores.parquet.partial").exists()
            case = {"variants": n, "rows_written": n_rows, "process_wall_s": wall, **res,
                    "variants_per_s": n / res["seconds"]}  # fmt: skip
            cases.append(case)
            print(case, flush=True)
            s = res["summary"]
            rows.append([
                n, f"{s['scored']} scored", round(res["seconds"], 1), f"{n / res['seconds']:.0f}", f"{res['peak_rss_mib']:.0f}",
            ])  # fmt: skip
    growth = cases[-1]["peak_rss_mib"] / cases[0]["peak_rss_mib"] - 1 if len(cases) > 1 else 0.0
    notes = (
        f"CPU, {args.threads} thread(s); biodl's default DeepBind (101 bp, both strands); {args.indel_fraction:.0%} indels; "
        f"two contigs of {args.contig_mb:g} Mb; streamed to Parquet in 50,000-variant chunks. Peak RSS growth from the "
        f"smallest to the largest run: {growth:+.0%}."
    )
    write_results("variants_scale", {"settings": vars(args), "cases": cases, "rss_growth": growth},
                  ["variants", "status", "seconds", "variants/s", "peak RSS (MiB)"], rows, notes)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
