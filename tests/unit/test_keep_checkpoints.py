"""``train.keep_checkpoints``: what a finished run keeps of its Lightning checkpoints, and only those."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from biodl import ExperimentConfig
from biodl.cli.main import _train_config, build_parser
from biodl.errors import ConfigError
from biodl.experiment.rundir import check_run_dir, checkpoint_dirs, has_checkpoints, prune_checkpoints

#: Checkpoint folders a run trains into (its own, members, candidates with members, refit, select_by cv folds, CV folds).
RUN_CKPTS = [
    "checkpoints",
    "member_1/checkpoints",
    "candidates/0_mlp/checkpoints",
    "candidates/2_ffn/member_0/checkpoints",
    "refit/model/checkpoints",
    "selection/fold_0/checkpoints",
    "fold_1/candidates/1_mlp/checkpoints",
]
#: Files that look like checkpoints but are not the run's: never touched.
NOT_THE_RUNS = ["mine/checkpoints/last.ckpt", "member_x/checkpoints/last.ckpt", "notes/previous.ckpt", "last.ckpt"]


def _run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    for rel in RUN_CKPTS:
        for name in ("last.ckpt", "previous.ckpt"):
            (out / rel).mkdir(parents=True, exist_ok=True)
            (out / rel / name).write_bytes(b"x" * 1000)
    for rel in NOT_THE_RUNS:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(b"y")
    (out / "checkpoints" / "README.txt").write_text("a user's note")
    (out / "metrics.json").write_text("{}")
    return out


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_checkpoint_dirs_are_the_runs_own(tmp_path: Path) -> None:
    out = _run(tmp_path)
    assert sorted(str(d.relative_to(out)) for d in checkpoint_dirs(out)) == sorted(RUN_CKPTS)


@pytest.mark.parametrize("keep", ["all", "last", "none"])
def test_prune(keep: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(tmp_path)
    before = _files(out)
    prune_checkpoints(out, keep)
    printed = capsys.readouterr().out
    after = _files(out)
    assert {f for f in before if not f.endswith(".ckpt")} | set(NOT_THE_RUNS) <= after
    ckpts = {f for f in after if f.endswith(".ckpt")} - set(NOT_THE_RUNS)
    if keep == "all":
        assert after == before and not printed
    elif keep == "last":
        assert ckpts == {f"{d}/last.ckpt" for d in RUN_CKPTS}
        assert f"removed {len(RUN_CKPTS)} previous.ckpt ({len(RUN_CKPTS) * 1000 / 1e6:.1f} MB freed)" in printed
    else:
        assert not ckpts and not has_checkpoints(out)
        assert (out / "checkpoints").is_dir()  # it still holds the note
        assert not (out / "member_1" / "checkpoints").exists()  # emptied: removed
        assert f"removed {2 * len(RUN_CKPTS)} checkpoint files" in printed


def test_resume_of_a_finished_run_without_checkpoints_is_refused(tmp_path: Path) -> None:
    out = _run(tmp_path)
    check_run_dir(out, overwrite=False, resume=True)  # checkpoints kept: resumable
    prune_checkpoints(out, "none")
    with pytest.raises(ConfigError, match=r"finished run that kept no checkpoint.*--overwrite"):
        check_run_dir(out, overwrite=False, resume=True)
    check_run_dir(out, overwrite=True, resume=False)  # training it again from the start is fine


def test_config_key_and_flag(tmp_path: Path) -> None:
    assert ExperimentConfig().train.keep_checkpoints == "last"
    cfg = ExperimentConfig.from_dict({"train": {"keep_checkpoints": "none"}})
    path = tmp_path / "exp.yaml"
    path.write_text(cfg.to_yaml())
    assert ExperimentConfig.from_yaml(path).train.keep_checkpoints == "none"
    with pytest.raises(ConfigError, match=r"train\.keep_checkpoints"):
        ExperimentConfig.from_dict({"train": {"keep_checkpoints": "some"}})
    args: Any = build_parser().parse_args(["train", "--data-path", "x.csv", "--keep-checkpoints", "all"])
    assert _train_config(args).train.keep_checkpoints == "all"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--keep-checkpoints", "some"])
