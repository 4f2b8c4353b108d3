"""Spill folders left by killed streamed predictions are removed by the next run in the same folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from biodl.data.store_blocks import SPILL_PREFIX, remove_stale_spills


def test_only_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale, live, foreign = (tmp_path / f"{SPILL_PREFIX}{n}" for n in ("a", "b", "c"))
    for d in (stale, live, foreign):
        d.mkdir()
        (d / "block0.npy").write_bytes(b"x")
    (stale / "owner.pid").write_text(dead.stdout.strip())  # a process that has exited
    (live / "owner.pid").write_text(str(os.getpid()))  # this one, still running
    assert remove_stale_spills(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()  # no owner file: left alone
