"""The run directory of ``biodl train``: a finished run is never clobbered, a failed one is marked (issue 14, items 4-5),
``--overwrite`` leaves nothing of the run it replaces."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

from conftest import run_biodl


def train(data: Path, out: Path, *extra: str, target: str = "is_mono") -> subprocess.CompletedProcess[str]:
    genes = [c for c in pd.read_csv(data, nrows=1).columns if c.startswith("g_")][:20]
    args = [
        "train", "--data-path", str(data), "--task", "classification", "--target-columns", target,
        "--feature-columns", *genes, "--id-column", "cell", "--output-dir", str(out), "--max-epochs", "1",
        "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[]", "--set", "evaluate.plots=false", *extra,
    ]  # fmt: skip
    return run_biodl(*args)


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def finished_run(out: Path) -> None:
    """A run directory as a finished run leaves it (its files' content does not matter here)."""
    (out / "model").mkdir(parents=True)
    (out / "model" / "bundle.json").write_text("{}")
    (out / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.9}}))
    (out / "config.yaml").write_text("# the finished run's config\n")


def test_output_dir_naming_a_file(small_csv: Path, tmp_path: Path) -> None:
    target = tmp_path / "a_file"
    target.write_text("not a directory\n")
    msg = one_line_error(train(small_csv, target))
    assert str(target) in msg and "existing file" in msg
    assert target.read_text() == "not a directory\n"
    msg = one_line_error(train(small_csv, target / "run"))
    assert "existing file" in msg


def test_finished_run_is_refused_and_left_intact(small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    finished_run(out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a run that would fail on its input and one that would succeed: both refused, nothing written
    for target in ("no_such_column", "is_mono"):
        msg = one_line_error(train(small_csv, out, target=target))
        assert "finished run" in msg and "--overwrite" in msg
        after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert after == before


def test_failed_input_with_overwrite_keeps_the_old_config(small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    finished_run(out)
    msg = one_line_error(train(small_csv, out, "--overwrite", target="no_such_column"))
    assert "no_such_column" in msg
    # the inputs were never read: config.yaml still belongs to the old run's model and metrics
    assert (out / "config.yaml").read_text() == "# the finished run's config\n"
    assert (out / "metrics.json").exists() and (out / "model" / "bundle.json").exists()


def test_failed_run_is_marked_and_cleared_by_a_later_run(small_csv: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.csv"
    frame = pd.read_csv(small_csv, nrows=2)
    frame.to_csv(tiny, index=False)
    out = tmp_path / "run"
    msg = one_line_error(train(tiny, out))
    assert "too few" in msg
    # either no directory, or one clearly marked failed, never a half run that looks finished
    assert out.is_dir() and (out / "FAILED").exists()
    assert "too few" in (out / "FAILED").read_text().splitlines()[0]
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    # an unfinished (failed) directory takes a new run without --overwrite; success removes the marker
    res = train(small_csv, out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (out / "FAILED").exists() and (out / "metrics.json").exists()
    first = (out / "metrics.json").read_text()
    # now finished: refused without --overwrite, replaced with it
    assert "--overwrite" in one_line_error(train(small_csv, out, "--seed", "5"))
    assert (out / "metrics.json").read_text() == first
    res = train(small_csv, out, "--seed", "5", "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "seed: 5" in (out / "config.yaml").read_text()


def test_overwrite_leaves_nothing_of_the_replaced_run(small_csv: Path, tmp_path: Path) -> None:
    """The earlier run's row report must not describe the new run (it had bad rows, the new data has none)."""
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(small_csv)
    gene = next(c for c in frame.columns if c.startswith("g_"))
    frame[gene] = frame[gene].astype(object)
    frame.loc[3, gene] = "abc"
    frame.to_csv(bad, index=False)
    out = tmp_path / "run"
    res = train(bad, out, "--set", "data.bad_values=skip", "--set", "train.ensemble_size=2", "--model", "mlp")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "skipped_rows.csv").is_file() and (out / "member_1").is_dir()
    (out / "notes.txt").write_text("a user's note")
    res = train(small_csv, out, "--overwrite", "--model", "mlp")
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"--overwrite: removed the earlier run's outputs in {out} (" in res.stdout
    assert not (out / "skipped_rows.csv").exists() and not list(out.glob("member_*"))
    assert (out / "notes.txt").read_text() == "a user's note"
    assert (out / "metrics.json").is_file() and "skipped" not in res.stdout
