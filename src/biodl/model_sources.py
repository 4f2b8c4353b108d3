"""Model names beside local paths: ``zoo:NAME[@VERSION]``, ``hf://OWNER/REPO[@REVISION]`` and ``http(s)://BASE/NAME``.

A *zoo folder* (local directory or static web folder) holds ``index.json`` and one folder per model version::

    index.json                  {"format": "biodl-zoo", "models": [{name, version, path, files: {file: sha256}, ...}]}
    NAME/VERSION/bundle.json    the bundle (safetensors + JSON) and its model card README.md

``zoo:NAME`` searches the zoo folders in ``BIODL_ZOO_PATH`` (``os.pathsep``-separated directories or URLs), then the
zoo built into biodl. Remote models are fetched only when named, into the cache folder (``BIODL_CACHE``, default the
user cache dir), verified by SHA-256 and refused when they hold a pickle-capable file; nothing is ever unpickled.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from biodl.errors import BundleError

INDEX = "index.json"
ZOO_FORMAT = "biodl-zoo"
#: Suffixes of files that can carry pickled code (never fetched, never loaded).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".npz", ".bin", ".h5", ".keras")
#: Files of a bundle a zoo entry may hold.
ALLOWED_SUFFIXES = (".json", ".safetensors", ".md")
BUILTIN_ZOO = Path(__file__).parent / "resources" / "zoo"
_SCHEME = re.compile(r"^(zoo:|hf:/+|https?:/+)", re.IGNORECASE)
_TIMEOUT = 30.0


def is_model_name(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a zoo, hub or web model rather than a local path."""
    return bool(_SCHEME.match(str(spec)))


def cache_dir() -> Path:
    """Where fetched models are kept: ``BIODL_CACHE``, else the user cache dir (``~/.cache/biodl`` on Linux)."""
    env = os.environ.get("BIODL_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("biodl"))


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_version(text: str) -> tuple[str, str | None]:
    """``NAME@VERSION`` → ``(NAME, VERSION)``; no ``@`` → ``(NAME, None)``."""
    name, sep, version = text.partition("@")
    return name, (version or None) if sep else None


def _normalise_url(spec: str) -> str:
    # Path("http://h/x") collapses the double slash; restore it
    return re.sub(r"^(https?|hf):/+", lambda m: m.group(1).lower() + "://", spec, flags=re.IGNORECASE)


def resolve_model_path(spec: str | os.PathLike[str]) -> Path:
    """The local folder of a model named by ``spec`` (fetched and verified first when remote).

    Parameters
    ----------
    spec
        ``zoo:NAME[@VERSION]``, ``hf://OWNER/REPO[@REVISION]``, ``http(s)://BASE/NAME[@VERSION]`` or a local path
        (returned unchanged).

    Raises
    ------
    BundleError
        Unknown name (with the closest names), checksum mismatch, truncated download, pickle-capable file, no network.
    """
    text = str(spec)
    if not is_model_name(text):
        return Path(spec)
    text = _normalise_url(text)
    if text.lower().startswith("zoo:"):
        return resolve_zoo_name(text[4:])
    if text.startswith("hf://"):
        return fetch_hf(text)
    base, _, tail = text.rstrip("/").rpartition("/")
    name, version = split_version(tail)
    return fetch_http(base, name, version)


# ------------------------------------------------------------------ zoo folders


def zoo_locations() -> list[str]:
    """Configured zoo folders (``BIODL_ZOO_PATH``, in order), then the built-in zoo."""
    return [*split_zoo_path(os.environ.get("BIODL_ZOO_PATH", "")), str(BUILTIN_ZOO)]


def split_zoo_path(text: str, sep: str = os.pathsep) -> list[str]:
    """``BIODL_ZOO_PATH`` split on ``os.pathsep``, keeping URLs whole (on POSIX ``:`` is also in ``http://host:port``).

    >>> split_zoo_path("/zoo:http://127.0.0.1:8000/models:https://example.org/zoo", ":")
    ['/zoo', 'http://127.0.0.1:8000/models', 'https://example.org/zoo']
    """
    parts = text.split(sep)
    out: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        if sep == ":" and part.lower() in ("http", "https") and i + 1 < len(parts) and parts[i + 1].startswith("//"):
            part, i = f"{part}:{parts[i + 1]}", i + 1
            host = part.split("//", 1)[1]
            if "/" not in host and i + 1 < len(parts) and re.match(r"^\d+(/|$)", parts[i + 1]):  # the port
                part, i = f"{part}:{parts[i + 1]}", i + 1
        if part.strip():
            out.append(part.strip())
        i += 1
    return out


def read_index(location: str) -> dict[str, Any]:
    """The parsed ``index.json`` of a zoo folder or web folder (``{"models": []}`` when a local folder has none)."""
    if re.match(r"^https?://", location):
        data = _http_get(f"{location.rstrip('/')}/{INDEX}", what=f"the zoo index of {location}")
        source = f"{location}/{INDEX}"
    else:
        f = Path(location) / INDEX
        if not f.is_file():
            return {"format": ZOO_FORMAT, "models": []}
        data, source = f.read_bytes(), str(f)
    try:
        index = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{source}: not a valid zoo index ({exc})") from None
    if not isinstance(index, dict) or not isinstance(index.get("models"), list):
        raise BundleError(f"{source}: not a {ZOO_FORMAT} index (expected an object with a 'models' list)")
    return index


def _version_key(v: Any) -> tuple[int, ...] | tuple[int, str]:
    parts = str(v).lstrip("v").split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1, str(v))


def find_entry(models: list[dict[str, Any]], name: str, version: str | None, where: str) -> dict[str, Any]:
    """The index entry ``name`` (the given version, else the highest); unknown names suggest the closest."""
    same = [m for m in models if m.get("name") == name]
    if not same:
        names = sorted({str(m.get("name")) for m in models})
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else (f"; known: {', '.join(names[:12])}" if names else "")
        raise BundleError(f"no model named {name!r} in {where}{hint} (biodl zoo list shows them)")
    if version is not None:
        hit = [m for m in same if str(m.get("version")) == version]
        if not hit:
            have = ", ".join(sorted(str(m.get("version")) for m in same))
            raise BundleError(f"model {name!r} has no version {version!r} in {where} (versions: {have})")
        return hit[0]
    return max(same, key=lambda m: _version_key(m.get("version")))


def _models_at(loc: str) -> list[dict[str, Any]]:
    """The index entries of one zoo location; an unreachable web zoo is skipped with a note (local ones raise)."""
    try:
        return list(read_index(loc)["models"])
    except BundleError as exc:
        if not re.match(r"^https?://", loc):
            raise
        print(f"note: skipping the zoo {loc}: {exc}", file=sys.stderr)  # an unreachable web zoo does not hide the local ones
        return []


def all_entries() -> list[tuple[str, dict[str, Any]]]:
    """``(zoo location, entry)`` of every model in the local zoo folders (web folders in ``BIODL_ZOO_PATH`` too)."""
    return [(loc, m) for loc in zoo_locations() for m in _models_at(loc)]


def resolve_zoo_name(text: str) -> Path:
    """``NAME[@VERSION]`` of a configured or built-in zoo → the local bundle folder (fetched when the zoo is remote).

    The first zoo location that has the name (and version) wins; later locations are not read (so a web zoo
    listed after a folder that has the model is never contacted).
    """
    name, version = split_version(text.strip())
    entries: list[tuple[str, dict[str, Any]]] = []
    for loc in zoo_locations():
        here = _models_at(loc)
        entries.extend((loc, m) for m in here)
        if any(m.get("name") == name and (version is None or str(m.get("version")) == version) for m in here):
            entry = find_entry(here, name, version, loc)
            if re.match(r"^https?://", loc):
                return fetch_http(loc, name, str(entry.get("version")))
            return Path(loc) / str(entry["path"])
    find_entry([m for _, m in entries], name, version, "the zoo (" + ", ".join(zoo_locations()) + ")")
    raise BundleError(f"no model named {name!r}")  # pragma: no cover - find_entry raised


# ------------------------------------------------------------------ web folders


def _http_get(url: str, what: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as resp:
            data = resp.read()
            expected = resp.headers.get("Content-Length")
    except urllib.error.HTTPError as exc:
        raise BundleError(f"{url}: HTTP {exc.code} {exc.reason} while fetching {what}") from None
    except http.client.IncompleteRead as exc:
        raise BundleError(f"{url}: truncated download ({len(exc.partial)} bytes, connection closed early)") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise BundleError(
            f"cannot reach {url} ({reason}) while fetching {what}; no network? local paths and built-in zoo names still work"
        ) from None
    if expected is not None and expected.isdigit() and len(data) != int(expected):
        raise BundleError(f"{url}: truncated download ({len(data)} of {expected} bytes)")
    return data


def check_file_name(name: str, source: str) -> None:
    """Refuse a path that escapes its folder, a pickle-capable file or anything but JSON / safetensors / Markdown."""
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise BundleError(f"{source}: refusing file {name!r} (path outside the model folder)")
    if p.suffix.lower() in PICKLE_SUFFIXES:
        raise BundleError(f"{source}: refusing a model that contains a pickle-capable file ({name}); nothing was written")
    if p.suffix.lower() not in ALLOWED_SUFFIXES:
        raise BundleError(f"{source}: refusing unexpected file {name!r} (a zoo model holds only .json, .safetensors and .md)")


def looks_like_pickle(data: bytes) -> bool:
    """Whether bytes start like a pickle stream (protocol 2-5) or a zip archive (``torch.save``)."""
    return (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or data[:4] == b"PK\x03\x04"


def fetch_http(base: str, name: str, version: str | None) -> Path:
    """Fetch model ``name`` from the web zoo folder ``base`` into the cache (verified) and return its folder.

    A cached copy is used without the network when the index cannot be reached.
    """
    parsed = urllib.parse.urlparse(base)
    host = re.sub(r"[^A-Za-z0-9._-]", "_", parsed.netloc + parsed.path.rstrip("/"))
    root = cache_dir() / "http" / host / name
    try:
        index = read_index(base)
    except BundleError as exc:
        cached = _cached_version(root, version)
        if cached is not None and "no network" in str(exc):
            print(f"note: {exc}; using the cached copy {cached}", file=sys.stderr)
            return cached
        raise
    entry = find_entry(index["models"], name, version, base)
    files = entry.get("files")
    if not isinstance(files, dict) or "bundle.json" not in files:
        raise BundleError(f"{base}/{INDEX}: entry {name!r} lists no bundle files (expected files: {{name: sha256}})")
    source = f"{base}/{entry['path']}"
    for fname in files:
        check_file_name(fname, source)
    target = root / str(entry.get("version", "0"))
    if target.is_dir() and _verified(target, files):
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=target.parent))
    try:
        for fname, expected in files.items():
            try:
                data = _http_get(f"{source}/{urllib.parse.quote(fname)}", what=f"{name} ({fname})")
            except BundleError as exc:
                raise BundleError(f"{exc}; the incomplete cache entry was discarded") from None
            if looks_like_pickle(data):
                raise BundleError(f"{source}/{fname}: refusing a pickle; nothing was written to the cache")
            if hashlib.sha256(data).hexdigest() != expected:
                raise BundleError(
                    f"{source}/{fname}: checksum mismatch (SHA-256 differs from the zoo index; the download is corrupted "
                    "or the file was modified); the cache entry was discarded"
                )
            out = tmp / fname
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _verified(folder: Path, files: dict[str, str]) -> bool:
    return all((folder / f).is_file() and sha256_file(folder / f) == h for f, h in files.items())


def _cached_version(root: Path, version: str | None) -> Path | None:
    if version is not None:
        p = root / version
        return p if (p / "bundle.json").is_file() else None
    have = [p for p in root.glob("*") if (p / "bundle.json").is_file()] if root.is_dir() else []
    return max(have, key=lambda p: _version_key(p.name)) if have else None


# ------------------------------------------------------------------ Hugging Face Hub


def parse_hf(spec: str) -> tuple[str, str | None]:
    """``hf://OWNER/REPO[@REVISION]`` → ``("OWNER/REPO", REVISION)``."""
    body = _normalise_url(spec)[len("hf://") :].strip("/")
    repo, revision = split_version(body)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise BundleError(f"{spec}: expected hf://OWNER/REPO[@REVISION]")
    return repo, revision


def fetch_hf(spec: str) -> Path:
    """Download (or find in the offline cache) a Hugging Face Hub repository holding a biodl bundle.

    Endpoint, token and offline mode come from ``huggingface_hub``'s environment variables (``HF_ENDPOINT``,
    ``HF_TOKEN``, ``HF_HUB_OFFLINE``); files land in ``BIODL_CACHE/hf``. The repository's file list is checked
    first: a pickle-capable file refuses the whole repository before anything is downloaded.
    """
    repo, revision = parse_hf(spec)
    try:
        import huggingface_hub
        from huggingface_hub.utils import HfHubHTTPError
    except ImportError:  # pragma: no cover - a declared dependency
        raise BundleError(
            f"{spec}: the Hugging Face Hub needs the package huggingface_hub (pip install huggingface_hub)"
        ) from None
    cache = cache_dir() / "hf"
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        if not offline:
            names = huggingface_hub.list_repo_files(repo, revision=revision)
            for listed in names:
                if Path(listed).suffix.lower() in PICKLE_SUFFIXES:
                    raise BundleError(
                        f"{spec}: refusing a repository that contains a pickle-capable file ({listed}); nothing was downloaded"
                    )
        folder = Path(
            huggingface_hub.snapshot_download(
                repo,
                revision=revision,
                cache_dir=str(cache),
                allow_patterns=["*.json", "*.safetensors", "*.md"],
                local_files_only=offline,
            )
        )
    except BundleError:
        raise
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "" if offline else "; no network? local paths and built-in zoo names still work"
        raise BundleError(f"cannot fetch {spec} from the Hugging Face Hub ({first}){hint}") from None
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix.lower() in PICKLE_SUFFIXES:
            raise BundleError(f"{spec}: refusing a repository that contains a pickle-capable file ({f.name})")
    for candidate in (folder, folder / "model"):
        if (candidate / "bundle.json").is_file():
            return candidate
    have = sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file())[:8]
    raise BundleError(
        f"{spec}: the repository holds no biodl bundle (no bundle.json at its root or in model/; "
        f"files: {', '.join(have) or 'none'})"
    )
