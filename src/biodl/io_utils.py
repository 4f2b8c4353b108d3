"""Small file-system helpers shared across biodl.

Writes are atomic: the data goes to a temporary file in the destination's
directory, is flushed and fsync'ed, and then renamed over the destination with
:func:`os.replace`. A reader therefore sees either the old file or the complete
new one, never a partial write, even if the process is killed mid-way.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["atomic_write_bytes", "atomic_write_figure", "atomic_write_text"]

_DEFAULT_MODE = 0o666


def _current_umask() -> int:
    """Return the process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """Permission bits the written file should get.

    An existing file keeps its mode; a new one gets ``0o666`` minus the umask,
    as if it had been created with :func:`open`.
    """
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return _DEFAULT_MODE & ~_current_umask()


def _fsync_dir(directory: Path) -> None:
    """Persist a rename on POSIX file systems (best effort, no-op elsewhere)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file. Missing parent directories are created.
    data
        The complete new content of the file.

    Notes
    -----
    The temporary file lives next to ``path`` (same file system, so the final
    :func:`os.replace` is atomic) and is removed if anything fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _target_mode(target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (no newline translation).

    Parameters
    ----------
    path
        Destination file. Missing parent directories are created.
    text
        The complete new content of the file.
    encoding
        Text encoding, UTF-8 by default.
    """
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_figure(fig: Figure, path: str | os.PathLike[str], *, fmt: str = "png", dpi: int = 100) -> Path:
    """Render a matplotlib figure, write it to ``path`` atomically and release the figure.

    Parameters
    ----------
    fig
        The figure; it is cleared afterwards (also when rendering fails).
    path
        Destination file. Missing parent directories are created.
    fmt
        Image format passed to :meth:`matplotlib.figure.Figure.savefig` (``png``, ``svg``, ``pdf``).
    dpi
        Resolution of raster formats.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=fmt, dpi=dpi)
    finally:
        fig.clear()
    atomic_write_bytes(target, buffer.getvalue())
    return target
