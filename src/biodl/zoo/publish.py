"""Write models into a zoo folder (``biodl zoo push``) or a Hugging Face Hub repository, and rebuild ``index.json``."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from biodl.bundle import META, PREPROCESSING, WEIGHTS, load, resolve_bundle_dir
from biodl.errors import BundleError
from biodl.io_utils import atomic_write_text
from biodl.model_card import CARD, read_card, read_yaml_or_none, render_card
from biodl.model_sources import INDEX, ZOO_FORMAT, check_file_name, is_model_name, sha256_file, split_version
from biodl.zoo.validation import VALIDATION, VALIDATION_IDS, write_validation_rows

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    """A zoo model name: lower-case letters, digits, ``.``, ``_`` and ``-`` (so it is a safe folder and URL part)."""
    if not _NAME.match(name):
        raise BundleError(f"zoo name {name!r}: use lower-case letters, digits, '.', '_' and '-' (e.g. encode-gabpa)")
    return name


#: The measured model of a run whose ``model/`` was trained again on its test rows (``train.refit``).
HELDOUT = "model_heldout"


def _run_dir(model_dir: Path) -> Path:
    in_run = model_dir.name in ("model", HELDOUT) and (model_dir.parent / "config.yaml").is_file()
    return model_dir.parent if in_run else model_dir


def measured_bundle(src: Path) -> Path:
    """``src``, or the run's ``model_heldout/`` when ``src`` is a run's refit ``model/``: a zoo model is the one its
    card's figures (and shipped validation rows) describe."""
    heldout = src.parent / HELDOUT
    if src.name == "model" and (heldout / META).is_file() and (src.parent / "config.yaml").is_file():
        print(f"zoo: {src} was trained again on the run's test rows (train.refit); publishing the measured model "
              f"{heldout}, whose figures the card gives")  # fmt: skip
        return heldout
    return src


def _next_version(zoo: Path, name: str) -> str:
    have = [p.name for p in (zoo / name).glob("*") if (p / META).is_file() and p.name.isdigit()]
    return str(max((int(v) for v in have), default=0) + 1)


def stage(
    run: str | Path, out: Path, *, name: str, version: str, validation_rows: bool | None = None, command: str | None = None
) -> Path:
    """Copy a run's bundle into ``out`` with its card (and the validation rows when asked); returns ``out``."""
    src = measured_bundle(resolve_bundle_dir(run))
    load(src)  # refuse a corrupted, pickled or incompatible bundle before publishing it
    run_dir = _run_dir(src)
    out.mkdir(parents=True, exist_ok=True)
    for f in (META, WEIGHTS, PREPROCESSING):
        shutil.copy2(src / f, out / f)
    if validation_rows is None:
        cfg = read_yaml_or_none(run_dir / "config.yaml")
        validation_rows = bool(((cfg or {}).get("card") or {}).get("validation_rows"))
    if validation_rows:
        if (src / VALIDATION).is_file():
            shutil.copy2(src / VALIDATION, out / VALIDATION)
        else:
            write_validation_rows(run_dir, out / VALIDATION)
    elif (run_dir / "splits.json").is_file():  # which rows of the (not shipped) data the card's validation metric is on
        splits = json.loads((run_dir / "splits.json").read_text())
        meta = json.loads((src / META).read_text())
        files = [Path(p).name for p in (meta.get("data") or {}).get("path") or []]
        ids = {"split": "val", "files": files, "ids": splits.get("val_ids", [])}
        atomic_write_text(out / VALIDATION_IDS, json.dumps(ids))
    card_kw: dict[str, Any] = {"name": name, "version": version}
    if command:
        card_kw["command"] = command
    card_source = run_dir if (run_dir / "metrics.json").is_file() or (run_dir / "config.yaml").is_file() else src
    if card_source == src and (src / CARD).is_file():
        text = (src / CARD).read_text(encoding="utf-8")  # a pulled zoo model: keep its card
    else:
        text = render_card(card_source, bundle=src.name if card_source != src else "model", **card_kw)
    atomic_write_text(out / CARD, text)
    return out


def push(
    run: str | Path,
    to: str,
    *,
    name: str | None = None,
    version: str | None = None,
    validation_rows: bool | None = None,
    command: str | None = None,
) -> str:
    """Publish a run (or bundle, or zoo name) to a zoo folder or ``hf://OWNER/REPO``; returns where it went.

    A folder gets ``NAME/VERSION/`` (bundle, ``README.md`` card) and a rebuilt ``index.json``, so any static web
    server can serve it (``biodl zoo pull http://HOST:PORT/NAME``).
    """
    src = resolve_bundle_dir(run)
    default = _run_dir(src).name if _run_dir(src).name != "model" else "model"
    name = check_name(name or default.lower())
    if to.startswith("hf://") or to.startswith("hf:/"):
        return _push_hf(src, to, name=name, version=version or "1", validation_rows=validation_rows, command=command)
    if is_model_name(to):
        raise BundleError(f"--to {to}: push to a local folder (served by any web server) or to hf://OWNER/REPO")
    zoo = Path(to)
    zoo.mkdir(parents=True, exist_ok=True)
    version = version or _next_version(zoo, name)
    target = zoo / name / version
    tmp = Path(tempfile.mkdtemp(prefix=".push-", dir=zoo))
    try:
        stage(src, tmp, name=name, version=version, validation_rows=validation_rows, command=command)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(target)
        target.chmod(0o755)  # readable by a web server that serves the folder
        for f in target.iterdir():
            f.chmod(0o644)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    index_zoo(zoo)
    return str(target)


def _push_hf(src: Path, to: str, *, name: str, version: str, validation_rows: bool | None, command: str | None) -> str:
    from biodl.model_sources import parse_hf

    repo, revision = parse_hf(to)
    try:
        from huggingface_hub import HfApi
    except ImportError:  # pragma: no cover - a declared dependency
        raise BundleError("pushing to the Hub needs the package huggingface_hub") from None
    with tempfile.TemporaryDirectory() as tmp:
        stage(src, Path(tmp), name=name, version=version, validation_rows=validation_rows, command=command)
        api = HfApi()
        try:
            api.create_repo(repo, exist_ok=True)
            api.upload_folder(repo_id=repo, folder_path=tmp, revision=revision, commit_message=f"biodl zoo push {name} {version}")
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BundleError(f"cannot push to {to} ({first}); set HF_TOKEN (and HF_ENDPOINT for another hub)") from None
    return f"hf://{repo}"


def entry_for(folder: Path, zoo: Path) -> dict[str, Any]:
    """The ``index.json`` entry of one model folder ``zoo/NAME/VERSION``."""
    files = sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file())
    for f in files:
        check_file_name(f, str(folder))
    meta = json.loads((folder / META).read_text())
    card = read_card(folder) or {"front_matter": {}}
    front = card["front_matter"]
    info = front.get("biodl") or {}
    metrics = meta.get("metrics") or {}
    scalars = {
        split: {k: v for k, v in (metrics.get(key) or {}).items() if isinstance(v, int | float) and k != "n"}
        for split, key in (("validation", "val"), ("test", "test"))
        if metrics.get(key)
    }
    rel = folder.relative_to(zoo).as_posix()
    name, _, version = rel.partition("/")
    return {
        "name": name,
        "version": version or "1",
        "path": rel,
        "data_type": (meta.get("data") or {}).get("type"),
        "task": front.get("task") or meta.get("kind"),
        "kind": meta.get("kind"),
        "model": (meta.get("model") or {}).get("name"),
        "description": _description(card.get("markdown", "")),
        "datasets": front.get("datasets") or [],
        "licence": front.get("license") or "other",
        "headline_metric": info.get("headline_metric"),
        "metrics": scalars,
        "network_beats_baseline": info.get("network_beats_baseline"),
        "parent": info.get("parent"),
        "size": sum((folder / f).stat().st_size for f in files),
        "format_version": meta.get("format_version"),
        "biodl_version": meta.get("biodl_version"),
        "files": {f: sha256_file(folder / f) for f in files},
    }


def _description(markdown: str) -> str:
    body = markdown.split("\n---\n", 1)[-1]
    for block in body.split("\n\n")[1:]:
        line = block.strip()
        if line and not line.startswith("#"):
            return line.splitlines()[0][:300]
    return ""


def index_zoo(zoo: str | Path) -> Path:
    """Rebuild ``zoo/index.json`` from the ``NAME/VERSION/`` model folders (refusing pickle-capable files)."""
    root = Path(zoo)
    if not root.is_dir():
        raise BundleError(f"{root}: not a folder")
    entries = [entry_for(b.parent, root) for b in sorted(root.glob(f"*/*/{META}"))]
    index = {"format": ZOO_FORMAT, "format_version": 1, "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "models": entries}  # fmt: skip
    out = root / INDEX
    atomic_write_text(out, json.dumps(index, indent=1, allow_nan=False) + "\n")
    return out


__all__ = ["check_name", "entry_for", "index_zoo", "push", "split_version", "stage"]
