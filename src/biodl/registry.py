"""A small name → object registry, as in chemprop v2.

Example
-------
>>> METRICS: Registry[Callable[..., float]] = Registry("metric")
>>> @METRICS.register("rmse")
... def rmse(y_true, y_pred): ...
>>> METRICS["rmse"]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from biodl.errors import ConfigError

T = TypeVar("T")


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """Map CLI names (kebab- or snake-case) to registered objects.

    Parameters
    ----------
    kind
        What is registered, used in error messages ("model", "metric", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower().replace("-", "_")

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering an object under ``name``."""

        def deco(obj: T) -> T:
            key = self._key(name)
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[key] = obj
            return obj

        return deco

    def __getitem__(self, name: str) -> T:
        key = self._key(name)
        if key not in self._items:
            raise ConfigError(
                f"unknown {self.kind} {name!r}{suggest(key, self.names())}; choose one of: {', '.join(self.names())}"
            )
        return self._items[key]

    def get(self, name: str) -> T:
        """Same as ``registry[name]`` (raises :class:`ConfigError` when unknown)."""
        return self[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


#: Functions of higher layers that the bottom layer (:mod:`biodl.config`) calls by name: checks of a
#: whole experiment config against the registries of data types, models, metrics and tune spaces.
#: :mod:`biodl.wiring` installs them when the package is imported (``biodl/__init__.py``), so the
#: config schema never imports a higher layer (the import-linter layers contract).
HOOKS: dict[str, Callable[..., Any]] = {}


def hook(name: str) -> Callable[..., Any]:
    """The installed hook ``name`` (see :data:`HOOKS`)."""
    if name not in HOOKS:  # biodl/__init__.py installs every hook before any submodule runs
        raise RuntimeError(f"biodl hook {name!r} is not installed (biodl.wiring was not imported)")
    return HOOKS[name]
