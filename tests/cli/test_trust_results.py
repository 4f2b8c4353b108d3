"""Issue 14 (trust): results that used to be wrong or crash: damaged checkpoints on ``--resume``,
regression curves on another scale than ``metrics.json``, scoring one BED with a multi-task
interval model, the embedding figure. The CLI runs in-process on small real data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_trust_input import QUIET, biodl, one_line_error, yeast_csv

from conftest import REPO, shared_path

ESOL = REPO / "tests" / "data" / "esol_subset.csv"
__all__ = ["yeast_csv"]  # the fixture, shared with test_trust_input


# ------------------------------------------------------------- 6. damaged checkpoint
def test_resume_from_a_damaged_checkpoint(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    # train.keep_checkpoints: all keeps previous.ckpt once the run has finished (the default keeps last.ckpt only)
    args = ["train", "--data-path", str(yeast_csv), "--task", "classification", "--target-columns", "Class1",
            "--model", "mlp", "--output-dir", str(run), "--keep-checkpoints", "all", *QUIET]  # fmt: skip
    code, out, err = biodl(capsys, *args, "--max-epochs", "3")
    assert code == 0, err
    ckpts = run / "checkpoints"
    assert (ckpts / "last.ckpt").is_file() and (ckpts / "previous.ckpt").is_file()  # the last two are kept
    assert "keep_checkpoints" not in out  # nothing removed, nothing said
    code, out, err = biodl(capsys, *args, "--max-epochs", "4", "--resume")
    assert code == 0, err
    assert f"resuming from {ckpts / 'last.ckpt'} (after epoch 3)" in out
    data = (ckpts / "last.ckpt").read_bytes()
    (ckpts / "last.ckpt").write_bytes(data[: len(data) // 3])  # truncated
    code, out, err = biodl(capsys, *args, "--max-epochs", "5", "--resume")
    assert code == 0, err
    assert "last.ckpt is damaged" in out and "resuming from the previous checkpoint" in out and "(after epoch 3)" in out
    assert len(json.loads((run / "history.json").read_text())["epoch"]) == 5
    data = (ckpts / "last.ckpt").read_bytes()
    (ckpts / "last.ckpt").write_bytes(data[: len(data) // 3])
    (ckpts / "previous.ckpt").write_bytes(b"")
    line = one_line_error(*biodl(capsys, *args, "--max-epochs", "6", "--resume")[::2])
    assert "last.ckpt is damaged" in line and "start the run again without --resume" in line


def test_default_auto_run_resumes_its_candidates(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plain table run is ``model.name: auto``: ``--resume`` goes on from each candidate's own checkpoint."""
    run = tmp_path / "run"
    args = ["train", "--data-path", str(yeast_csv), "--task", "classification", "--target-columns", "Class1",
            "--output-dir", str(run), *QUIET]  # fmt: skip
    code, out, err = biodl(capsys, *args, "--max-epochs", "2")
    assert code == 0, err
    ckpts = sorted(run.glob("candidates/*/checkpoints/last.ckpt"))
    assert ckpts, sorted(p.relative_to(run) for p in run.rglob("*"))
    # train.keep_checkpoints: last (the default): every network keeps last.ckpt, none keeps previous.ckpt
    assert not list(run.rglob("previous.ckpt")) and list(run.glob("refit/*/**/checkpoints/last.ckpt"))
    assert "checkpoints (train.keep_checkpoints: last): removed" in out and "MB freed" in out, out
    code, out, err = biodl(capsys, *args, "--max-epochs", "3", "--resume")
    assert code == 0, err
    assert f"resuming from {ckpts[0]} (after epoch 2)" in out, out
    assert not list(run.rglob("previous.ckpt"))  # the resumed run, finished, prunes its own


def test_keep_no_checkpoints(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--keep-checkpoints none``: a finished run (ensemble members, refit, cross-validation folds) keeps no
    Lightning checkpoint, its bundle still predicts, and ``--resume`` says in one line why it cannot go on."""
    data = ["--data-path", str(yeast_csv), "--task", "classification", "--target-columns", "Class1", "--model", "mlp",
            "--max-epochs", "2", "--keep-checkpoints", "none", *QUIET]  # fmt: skip
    run = tmp_path / "run"
    code, out, err = biodl(capsys, "train", *data, "--ensemble-size", "2", "--output-dir", str(run))
    assert code == 0, err
    assert (run / "member_1").is_dir() and (run / "refit").is_dir()  # members and a refit were trained
    assert not list(run.rglob("*.ckpt*")) and not list(run.rglob("checkpoints"))
    assert "checkpoints (train.keep_checkpoints: none): removed " in out and "can no longer continue with --resume" in out
    pred = tmp_path / "pred.csv"
    code, _, err = biodl(capsys, "predict", "--model-path", str(run), "--data-path", str(yeast_csv), "--output", str(pred))
    assert code == 0, err
    assert len(pd.read_csv(pred)) == 300
    metrics = (run / "metrics.json").read_bytes()
    line = one_line_error(*biodl(capsys, "train", *data, "--ensemble-size", "2", "--output-dir", str(run), "--resume")[::2])
    assert "finished run that kept no checkpoint" in line and "--overwrite" in line
    assert (run / "metrics.json").read_bytes() == metrics and not (run / "FAILED").exists()
    folds = tmp_path / "cv"
    code, _, err = biodl(capsys, "train", *data, "--cv", "2", "--output-dir", str(folds))
    assert code == 0, err
    assert (folds / "fold_1").is_dir() and not list(folds.rglob("*.ckpt*"))


# ------------------------------------------------ 11. regression curves on the original scale
def test_regression_curves_use_the_original_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, _, err = biodl(capsys, "train", "--data-type", "molecule", "--data-path", str(ESOL), "--task", "regression",
                         "--target-columns", "logp", "--model", "mlp", "--output-dir", str(run), "--max-epochs", "4",
                         *QUIET)  # fmt: skip
    assert code == 0, err
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    best = metrics["training"]["best_epoch"]
    assert history["val_rmse"][best] == pytest.approx(metrics["val"]["rmse"], rel=1e-4)


# ------------------------------- 13. one BED of regions for a multi-task model; 7. VCF errors name the file
def test_interval_model_predicts_one_bed_and_vcf_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.data.sequence.fasta import read_fasta, write_fasta

    rec = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample.fa"))
    seqs = [s.decode() for s in rec.sequences[:300]]
    genome = write_fasta(tmp_path / "genome.fa", ["chrA", "chrB"], ["".join(seqs[:150]), "".join(seqs[150:])])
    rng = np.random.default_rng(0)
    for task in ("t1", "t2"):
        rows = [
            f"{c}\t{s}\t{s + 150}\n"
            for c in ("chrA", "chrB")
            for s in np.sort(rng.choice(np.arange(500, 29_000, 400), 30, False))
        ]
        (tmp_path / f"{task}.bed").write_text("".join(rows))
    run = tmp_path / "run"
    code, _, err = biodl(capsys, "train", "--data-type", "sequence", "--data-path", str(tmp_path / "t1.bed"),
                         str(tmp_path / "t2.bed"), "--genome", str(genome), "--intervals-width", "200", "--negatives",
                         "flank", "--model", "deepsea", "--set", "model.filters=[8,8,8]", "--set", "model.pool_sizes=[4,4,1]",
                         "--set", "model.dense_size=8", "--output-dir", str(run), "--max-epochs", "1", *QUIET)  # fmt: skip
    assert code == 0, err
    regions = tmp_path / "regions.bed"
    regions.write_text("chrA\t1000\t1200\nchrB\t5000\t5100\nchrB\t9000\t9300\n")
    pred = tmp_path / "pred.csv"
    code, _, err = biodl(capsys, "predict", "--model-path", str(run), "--data-path", str(regions), "--output", str(pred))
    assert code == 0, err
    frame = pd.read_csv(pred)
    assert list(frame.columns) == ["id", "t1", "t2"] and len(frame) == 3 and frame["id"].iloc[0] == "chrA:1000-1200"
    ref = "".join(seqs[:150])[1000]  # chrA position 1001 (1-based)
    wrong = next(b for b in "ACGT" if b != ref.upper())
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchrA\t1001\tv1\t" + wrong + "\tN\n")
    code, _, err = biodl(capsys, "variants", "--model-path", str(run), "--fasta", str(genome), "--vcf", str(vcf),
                         "--output", str(tmp_path / "v.tsv"), "--on-error", "raise")  # fmt: skip
    line = one_line_error(code, err)
    assert str(vcf) in line and "does not match the genome" in line


# ----------------------------------------------------------------- 15. embedding figure
@pytest.mark.parametrize("data_type", ["tabular", "molecule", "image"])
def test_embed_writes_a_2d_figure(data_type: str, yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    model = ["--model", "mlp"]
    if data_type == "tabular":
        data = ["--data-path", str(yeast_csv), "--task", "classification", "--target-columns", "Class1"]
    elif data_type == "molecule":
        data = ["--data-type", "molecule", "--data-path", str(ESOL), "--task", "regression", "--target-columns", "logp"]
    else:  # 160 + 40 BreastMNIST images
        z = np.load(shared_path("images", "breastmnist", "breastmnist_train_val.npz"))
        npz = tmp_path / "breast.npz"
        np.savez(npz, **{k: z[k][:160] if k.startswith("train") else z[k][:40] for k in z.files})
        data, model = ["--data-type", "image", "--data-path", str(npz)], []
    run = tmp_path / "run"
    code, _, err = biodl(capsys, "train", *data, *model, "--output-dir", str(run), "--max-epochs", "1", *QUIET)
    assert code == 0, err
    out = tmp_path / "emb.csv"
    code, printed, err = biodl(capsys, "embed", "--model-path", str(run), "--data-path", data[data.index("--data-path") + 1],
                               "--output", str(out))  # fmt: skip
    assert code == 0, err
    figure = tmp_path / "emb_pca.png"
    assert out.is_file() and figure.is_file() and f"figure: {figure}" in printed
    with Image.open(figure) as im:
        assert im.size[0] >= 300 and im.size[1] >= 200
