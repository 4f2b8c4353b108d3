"""The ``biodl`` command line."""

from biodl.cli.main import main

__all__ = ["main"]
