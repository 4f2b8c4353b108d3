"""User-facing errors.

Every error a user can cause (bad file, bad column, bad config key) is a
:class:`BiodlError`. The CLI prints ``error: <message>`` on one line and exits
with status 2 for these; anything else is a bug and shows a traceback.
"""

from __future__ import annotations


class BiodlError(Exception):
    """Base class of errors caused by user input."""


class ConfigError(BiodlError):
    """An invalid experiment configuration (unknown key, wrong type, bad value)."""


class DataError(BiodlError):
    """Unreadable or inconsistent input data (missing file or column, bad value)."""


class BundleError(BiodlError):
    """A model bundle that cannot be loaded safely."""
