"""``biodl zoo build`` / ``make zoo``: retrain zoo configs and package them, reporting each card's metric next to the
shipped one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biodl.model_sources import BUILTIN_ZOO, INDEX


def _shipped(zoo: Path, name: str) -> dict[str, Any] | None:
    f = zoo / INDEX
    if not f.is_file():
        return None
    hits = [m for m in json.loads(f.read_text()).get("models", []) if m.get("name") == name]
    return hits[-1] if hits else None


def build(
    configs: Sequence[str | Path],
    *,
    to: str | Path | None = None,
    runs_dir: str | Path = "runs/zoo",
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Train each config (its ``card.name`` is the zoo name) and push it into ``to`` (default: the built-in zoo).

    Returns one row per model: ``name``, ``metric`` (the card's headline), ``shipped`` (the validation value in the
    zoo before the build, if any) and ``rebuilt``.
    """
    from biodl.experiment import Experiment
    from biodl.zoo.publish import push

    zoo = Path(to) if to is not None else BUILTIN_ZOO
    rows = []
    for config in configs:
        exp = Experiment.from_yaml(config, overrides=list(overrides))
        name = exp.config.card.name or Path(config).stem
        before = _shipped(zoo, name)
        run = Path(runs_dir) / name
        exp.fit(run)
        command = f"biodl zoo build {config}   # or: biodl train --config {config} --output-dir {run}"
        version = str(before["version"]) if before else "1"
        push(run, str(zoo), name=name, version=version, command=command)
        after = _shipped(zoo, name) or {}
        metric = after.get("headline_metric")
        old = ((before or {}).get("metrics") or {}).get("validation", {}).get(metric)
        new = (after.get("metrics") or {}).get("validation", {}).get(metric)
        rows.append({"name": name, "metric": metric, "shipped": old, "rebuilt": new})
    return rows
