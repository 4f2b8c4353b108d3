"""Start ``biodl serve`` as a real process on a free loopback port, for server and browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIODL = str(Path(sys.executable).parent / "biodl")


@dataclass
class Server:
    """A running server: its base URL, process and everything it printed so far."""

    url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.output)


def _drain(proc: subprocess.Popen[str], sink: list[str], started: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line)
        if "serving " in line and " on http://" in line:
            started.set()
    started.set()


@contextmanager
def serve(model_path: Path, *args: str, timeout: float = 180.0) -> Iterator[Server]:
    """Run ``biodl serve --port 0`` and yield once ``/health`` answers; stop it afterwards."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [BIODL, "serve", "--model-path", str(model_path), "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    started = threading.Event()
    threading.Thread(target=_drain, args=(proc, output, started), daemon=True).start()
    try:
        if not started.wait(timeout) or proc.poll() is not None:
            raise RuntimeError(f"biodl serve did not start:\n{''.join(output)[-3000:]}")
        line = next(x for x in output if " on http://" in x)
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}/health never answered:\n{''.join(output)[-3000:]}")
            time.sleep(0.2)
        yield Server(url, proc, output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
