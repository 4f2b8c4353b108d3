"""The run directory's life cycle: refuse to clobber a finished run, mark a failed one, prune its checkpoints.

A run directory is *finished* when it holds ``metrics.json`` or ``model/``. Training into it again needs
``overwrite`` (``--overwrite``: everything the earlier run wrote there is removed first, :func:`clear_run_outputs`;
a user's own files stay) or ``resume`` (``--resume``: continue from its checkpoints, everything kept).
``config.yaml`` is written only once the inputs were read; a run that fails after that leaves a ``FAILED`` file
with the error (removed by a later successful run).
Once a run has finished, ``train.keep_checkpoints`` decides which of its Lightning checkpoints stay
(:func:`prune_checkpoints`).
"""

from __future__ import annotations

import re
import shutil
import traceback
from pathlib import Path

from biodl.data.row_report import CHANGED_FILE, SKIPPED_FILE
from biodl.errors import ConfigError
from biodl.io_utils import atomic_write_text
from biodl.training.callbacks import PREVIOUS_CHECKPOINT
from biodl.training.fit import CHECKPOINT_DIR, LAST_CHECKPOINT

#: The marker a failed run leaves in its directory.
FAILED = "FAILED"
#: What makes a run directory a finished run.
FINISHED_MARKERS = ("metrics.json", "model", "model_heldout")


def is_finished_run(out: Path) -> bool:
    """Whether ``out`` holds the outputs of a finished run (``metrics.json`` or ``model/``)."""
    return any((out / name).exists() for name in FINISHED_MARKERS)


def check_run_dir(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Raise a one-line :class:`ConfigError` when ``out`` cannot take a new run."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output-dir {out}: is an existing file, not a directory; give a directory for the run")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--output-dir {out}: {parent} is an existing file, not a directory")
    if out.is_dir() and is_finished_run(out) and not (overwrite or resume):
        raise ConfigError(
            f"--output-dir {out}: holds a finished run (metrics.json / model/); "
            "give --overwrite to replace it, --resume to continue it, or another --output-dir"
        )
    if resume and out.is_dir() and is_finished_run(out) and not has_checkpoints(out):
        raise ConfigError(
            f"--resume: {out} holds a finished run that kept no checkpoint to continue from (train.keep_checkpoints: "
            "none removes them once a run has finished); give --overwrite to train it again, or another --output-dir"
        )


def start_run_dir(out: Path, config_yaml: str, *, overwrite: bool, resume: bool) -> None:
    """Create ``out`` (after :func:`check_run_dir`), clear a replaced run (:func:`clear_run_outputs`) and write
    ``config.yaml``."""
    if overwrite and not resume and out.is_dir():
        removed = clear_run_outputs(out)
        if removed:
            what = f"{removed} file{'s' if removed != 1 else ''}/folder{'s' if removed != 1 else ''}"
            print(f"--overwrite: removed the earlier run's outputs in {out} ({what})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(f"--output-dir {out}: cannot create the run directory ({exc.strerror})") from None
    atomic_write_text(out / "config.yaml", config_yaml)


def mark_failed(out: Path, exc: BaseException) -> None:
    """Write ``out/FAILED``: the error on the first line, then the traceback (best effort)."""
    if not out.is_dir():
        return
    first = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        atomic_write_text(out / FAILED, f"this run failed: {first}\n\n{detail}")
    except OSError:
        pass


def clear_failed(out: Path) -> None:
    """Remove the ``FAILED`` marker of an earlier attempt (after a successful run)."""
    (out / FAILED).unlink(missing_ok=True)


#: Where a run trains further networks, each with its own ``checkpoints/`` (and perhaps its own sub-runs):
#: ensemble members, cross-validation folds, ``model.name: auto`` candidates, ``train.refit`` networks and
#: ``train.select_by: cv`` folds.
SUB_RUNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (".", re.compile(r"member_\d+")),
    (".", re.compile(r"fold_\d+")),
    ("candidates", re.compile(r"\d+_.+")),
    ("refit", re.compile(r".+")),
    ("selection", re.compile(r"fold_\d+")),
)


def checkpoint_dirs(out: Path, depth: int = 4) -> list[Path]:
    """The ``checkpoints/`` folders the run in ``out`` trains into: its own and those of its :data:`SUB_RUNS`.

    Only those known places are looked at (never other folders of ``out``), and no symbolic link is followed.
    """
    found = []
    own = out / CHECKPOINT_DIR
    if own.is_dir() and not own.is_symlink():
        found.append(own)
    if depth > 0:
        for parent, name in SUB_RUNS:
            base = out / parent
            if not base.is_dir() or base.is_symlink():
                continue
            for sub in sorted(base.iterdir()):
                if name.fullmatch(sub.name) and sub.is_dir() and not sub.is_symlink():
                    found += checkpoint_dirs(sub, depth - 1)
    return found


def has_checkpoints(out: Path) -> bool:
    """Whether any network of the run in ``out`` has a checkpoint to continue from."""
    return any(any(d.glob("*.ckpt")) for d in checkpoint_dirs(out))


def prune_checkpoints(out: Path, keep: str) -> None:
    """``train.keep_checkpoints`` of a finished run in ``out``; prints one line with what was removed.

    ``all`` keeps everything; ``last`` removes every ``previous.ckpt`` (each network keeps ``last.ckpt``, for
    ``--resume``); ``none`` removes every checkpoint (``*.ckpt``, and a ``.tmp`` left by a killed write), then the
    ``checkpoints/`` folders left empty. Only the run's own :func:`checkpoint_dirs` are touched. A file that
    cannot be removed is a warning, never a failed run.
    """
    if keep == "all":
        return
    removed, freed, failed = 0, 0, []
    for folder in checkpoint_dirs(out):
        if keep == "last":
            files = [folder / PREVIOUS_CHECKPOINT]
        else:
            files = sorted([*folder.glob("*.ckpt"), *folder.glob("*.ckpt.tmp")])
        for path in files:
            if not (path.is_file() or path.is_symlink()):
                continue
            try:
                size = 0 if path.is_symlink() else path.stat().st_size
                path.unlink()
            except OSError as exc:
                failed.append(f"{path} ({exc.strerror or exc})")
                continue
            removed += 1
            freed += size
        if keep == "none":
            try:
                folder.rmdir()
            except OSError:  # it holds other files
                pass
    if removed:
        if keep == "last":
            what, then = f"{removed} {PREVIOUS_CHECKPOINT}", f"each network keeps {LAST_CHECKPOINT} for --resume"
        else:
            what = f"{removed} checkpoint file{'s' if removed != 1 else ''}"
            then = "model/ holds the weights; the run can no longer continue with --resume"
        print(f"checkpoints (train.keep_checkpoints: {keep}): removed {what} ({freed / 1e6:.1f} MB freed); {then}")
    if failed:
        print(f"warning: train.keep_checkpoints: {len(failed)} checkpoint(s) not removed: {failed[0]}")


#: What a training run writes at the top of its run directory, besides ``config.yaml`` (written again by the new
#: run) and its :data:`SUB_RUNS`. The trackers' own stores (``mlruns/``, ``wandb/``) keep every run apart and stay.
RUN_OUTPUTS = (
    *FINISHED_MARKERS,
    "splits.json",
    SKIPPED_FILE,
    CHANGED_FILE,
    "history.json",
    "diagnostics.json",
    "report.html",
    "selection.json",
    "pretrain.json",
    "transfer.json",
    "label_hierarchy.csv",  # model-specific artifacts (dnae: write_run_artifacts)
    "label_encoder.json",
    FAILED,
    CHECKPOINT_DIR,
    "logs",
    "figures",
)
#: A file left by a write that was killed (:func:`biodl.io_utils.atomic_write_text`) of one of :data:`RUN_OUTPUTS`.
_KILLED_WRITE = re.compile(r"\.(" + "|".join(re.escape(n) for n in RUN_OUTPUTS) + r")\..+\.tmp")


def run_outputs(out: Path) -> list[Path]:
    """What an earlier training run left in ``out``: its :data:`RUN_OUTPUTS` and :data:`SUB_RUNS` (whole).

    Only those known names are listed, never another file or folder of ``out``; no symbolic link is followed
    (a link with a known name is listed itself).
    """
    if not out.is_dir() or out.is_symlink():
        return []
    found = [out / name for name in RUN_OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
    found += [p for p in sorted(out.iterdir()) if _KILLED_WRITE.fullmatch(p.name)]
    for parent, name in SUB_RUNS:
        base = out / parent
        if base.is_dir() and not base.is_symlink():
            found += [sub for sub in sorted(base.iterdir()) if name.fullmatch(sub.name) and sub.is_dir()]
    return found


def clear_run_outputs(out: Path) -> int:
    """Remove the outputs of an earlier run in ``out`` (:func:`run_outputs`; ``--overwrite``); returns how many.

    ``candidates/``, ``refit/`` and ``selection/`` go once they hold nothing else. A path that cannot be removed
    is a one-line :class:`ConfigError`: the new run must not start next to what would pass for its outputs.
    """
    paths = run_outputs(out)
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            raise ConfigError(
                f"--overwrite: cannot remove {path} of the earlier run ({exc.strerror or exc}); "
                "remove it yourself or give another --output-dir"
            ) from None
    for parent in {parent for parent, _ in SUB_RUNS} - {"."}:
        base = out / parent
        if base.is_dir() and not base.is_symlink() and not any(base.iterdir()):
            base.rmdir()
    return len(paths)
