"""biodl: build, train, evaluate, interpret and deploy deep-learning models on life-science data.

The top-level names are imported lazily so ``import biodl`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biodl import wiring as _wiring  # noqa: F401  (installs the config hooks; see biodl.wiring)
from biodl._version import __version__

if TYPE_CHECKING:
    from biodl.bundle import Bundle, load
    from biodl.config import ExperimentConfig
    from biodl.experiment import Experiment, RunResult

__all__ = ["Bundle", "Experiment", "ExperimentConfig", "RunResult", "__version__", "load"]

_LAZY = {
    "Experiment": "biodl.experiment",
    "RunResult": "biodl.experiment",
    "ExperimentConfig": "biodl.config",
    "Bundle": "biodl.bundle",
    "load": "biodl.bundle",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'biodl' has no attribute {name!r}")
