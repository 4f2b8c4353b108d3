"""``--overwrite``: every output the replaced run wrote into its directory goes, a user's own files stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from biodl.errors import ConfigError
from biodl.experiment.rundir import RUN_OUTPUTS, clear_run_outputs, run_outputs, start_run_dir

#: What an earlier run left: its files, its sub-runs (an ensemble of 5, a CV fold, a candidate the new run no longer
#: trains, a refit network, a select_by cv fold) and a killed write.
STALE = [
    "metrics.json",
    "model/bundle.json",
    "model_heldout/bundle.json",
    "skipped_rows.csv",
    "changed_rows.csv",
    "splits.json",
    "history.json",
    "diagnostics.json",
    "report.html",
    "FAILED",
    "figures/roc_pr.png",
    "logs/metrics.csv",
    "checkpoints/last.ckpt",
    "member_4/checkpoints/last.ckpt",
    "member_4/logs/metrics.csv",
    "fold_1/metrics.json",
    "candidates/3_old/model/bundle.json",
    "candidates/0_ffn/member_0/logs/metrics.csv",
    "refit/model/checkpoints/last.ckpt",
    "selection/fold_0/checkpoints/last.ckpt",
    ".metrics.json.abc123.tmp",
]
#: A user's own files in the run folder, some with names close to the run's: never touched.
USERS = [
    "notes.txt",
    "my_data/table.csv",
    "member_x/keep.txt",
    "fold_/keep.txt",
    "candidates/README.md",
    "selection/notes.txt",
    "mlruns/0/meta.yaml",
    ".notes.txt.tmp",
]


def _run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    for rel in STALE + USERS:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("x")
    (out / "config.yaml").write_text("# the old run's config\n")
    return out


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_overwrite_removes_the_earlier_runs_outputs_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(tmp_path)
    start_run_dir(out, "# the new run's config\n", overwrite=True, resume=False)
    assert _files(out) == {*USERS, "config.yaml"}
    assert (out / "config.yaml").read_text() == "# the new run's config\n"
    assert (out / "my_data").is_dir() and not (out / "refit").exists()  # refit/ held only the run's networks
    top = {p.split("/")[0] for p in STALE if not p.startswith(("candidates/", "refit/", "selection/"))}
    removed = len(top) + 2 + 1 + 1  # candidates 3_old and 0_ffn, refit/model, selection/fold_0
    assert f"--overwrite: removed the earlier run's outputs in {out} ({removed} files/folders)" in capsys.readouterr().out
    # nothing left of a run: nothing removed, nothing said
    start_run_dir(out, "# again\n", overwrite=True, resume=False)
    assert _files(out) == {*USERS, "config.yaml"} and not capsys.readouterr().out


@pytest.mark.parametrize(("overwrite", "resume"), [(False, True), (True, True), (False, False)])
def test_resume_and_a_plain_run_keep_everything(overwrite: bool, resume: bool, tmp_path: Path) -> None:
    out = _run(tmp_path)
    before = _files(out)
    start_run_dir(out, "# new\n", overwrite=overwrite, resume=resume)
    assert _files(out) == before


def test_symbolic_links_are_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "3_old").mkdir(parents=True)
    (elsewhere / "figures").mkdir()
    (elsewhere / "figures" / "mine.png").write_text("x")
    out = tmp_path / "run"
    out.mkdir()
    (out / "candidates").symlink_to(elsewhere, target_is_directory=True)  # a linked folder: not looked into
    (out / "figures").symlink_to(elsewhere / "figures", target_is_directory=True)  # a known name: the link goes
    assert run_outputs(out) == [out / "figures"]
    assert clear_run_outputs(out) == 1
    assert not (out / "figures").is_symlink() and (elsewhere / "figures" / "mine.png").is_file()
    assert (elsewhere / "3_old").is_dir() and (out / "candidates").is_symlink()


def test_a_file_that_cannot_be_removed_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _run(tmp_path)

    def refuse(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(ConfigError, match=r"--overwrite: cannot remove .*metrics\.json.*Permission denied"):
        clear_run_outputs(out)


def test_known_names_cover_the_finished_markers() -> None:
    assert {"metrics.json", "model", "model_heldout", "skipped_rows.csv", "checkpoints", "logs"} <= set(RUN_OUTPUTS)
    assert "config.yaml" not in RUN_OUTPUTS  # written again by the new run at once
