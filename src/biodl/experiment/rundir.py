"""The run directory's life cycle: refuse to clobber a finished run, mark a failed one.

A run directory is *finished* when it holds ``metrics.json`` or ``model/``. Training into it again needs
``overwrite`` (``--overwrite``: the old ``metrics.json`` and ``model/`` are removed first) or ``resume``
(``--resume``: continue from its checkpoints). ``config.yaml`` is written only once the inputs were read;
a run that fails after that leaves a ``FAILED`` file with the error (removed by a later successful run).
"""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path

from biodl.errors import ConfigError
from biodl.io_utils import atomic_write_text

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


def start_run_dir(out: Path, config_yaml: str, *, overwrite: bool, resume: bool) -> None:
    """Create ``out`` (after :func:`check_run_dir`), clear a replaced finished run and write ``config.yaml``."""
    if overwrite and not resume and out.is_dir():
        for name in FINISHED_MARKERS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
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
