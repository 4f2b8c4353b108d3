"""The REST server: a FastAPI app around one loaded bundle, run with uvicorn.

``create_app`` needs FastAPI; :mod:`biodl.serve.card` and :mod:`biodl.serve.explain` do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biodl.serve.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from biodl.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'biodl.serve' has no attribute {name!r}")
