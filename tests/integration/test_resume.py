"""A run killed with SIGKILL mid-training resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import PBMC


def _cmd(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "biodl",
        "train",
        "--data-path",
        str(PBMC),
        "--task",
        "classification",
        "--target-columns",
        "bulk_labels",
        "--output-dir",
        str(out),
        "--max-epochs",
        "20",
        "--set",
        "train.early_stopping=false",
        "--set",
        "model.hidden_sizes=[32]",
        "--set",
        "train.progress_bar=false",
        "--set",
        "train.checkpoint_every_n_steps=2",
        "--set",
        "evaluate.baselines=[]",
        "--set",
        "train.batch_size=32",
        *extra,
    ]


def _kill_at_checkpoint(out: Path, ckpt: Path, *, wait: float, what: str) -> None:
    """Start the run, SIGKILL it once ``ckpt`` holds a whole checkpoint (written atomically), mid-training."""
    proc = subprocess.Popen(_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + wait
    try:
        while time.time() < deadline and not (ckpt.exists() and ckpt.stat().st_size > 0):
            time.sleep(0.1)
        assert proc.poll() is None, f"the run finished before {what} could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigkill_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ckpt = out / "checkpoints" / "last.ckpt"
    _kill_at_checkpoint(out, ckpt, wait=120, what="its training")
    assert ckpt.exists() and not (out / "metrics.json").exists()
    res = subprocess.run(_cmd(out, "--resume"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["epochs"] == 20
    history = json.loads((out / "history.json").read_text())
    # the epochs finished before the kill are kept (the history is restored from the checkpoint);
    # an epoch interrupted mid-way is not repeated: Lightning resumes at the next epoch boundary
    epochs = [int(e) for e in history["epoch"]]
    assert epochs[0] <= 1 and epochs == list(range(epochs[0], 20))


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    res = subprocess.run(_cmd(tmp_path / "fresh", "--resume"), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: --resume: no checkpoint at")
    assert "Traceback" not in res.stderr


def test_a_run_killed_in_its_refit_resumes_the_refit(tmp_path: Path) -> None:
    """``train.refit`` (default for a 700-cell table): killed while training again on training + test rows, the run
    resumes the measured training from its finished checkpoint and the refit from its own."""
    out = tmp_path / "run"
    ckpt = out / "refit" / "model" / "checkpoints" / "last.ckpt"
    _kill_at_checkpoint(out, ckpt, wait=180, what="its refit")
    assert not (out / "metrics.json").exists() and not (out / "model_heldout").exists()
    res = subprocess.run(_cmd(out, "--resume"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["epochs"] == 20 and metrics["refit"]["shipped"] == "refit"
    assert (out / "model_heldout" / "weights.safetensors").is_file() and (out / "model" / "weights.safetensors").is_file()
    # the refit went on from its own checkpoint (not from scratch), and ran to the measured training's 20 epochs
    assert f"resuming from {ckpt}" in res.stdout
    import pandas as pd

    log = pd.read_csv(out / "refit" / "model" / "logs" / "metrics.csv")
    assert sorted({int(e) for e in log["epoch"].dropna()}) == list(range(20))
