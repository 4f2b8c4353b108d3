"""The README's CLI reference names every command and flag the parser accepts."""

from __future__ import annotations

import argparse
from pathlib import Path

from biodl.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_and_flag_is_documented() -> None:
    text = README.read_text()
    missing = []
    for name, sub in _subparsers(build_parser()).items():
        if f"biodl {name}" not in text:
            missing.append(f"biodl {name}")
        for action in sub._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help" and opt not in text:
                    missing.append(f"biodl {name} {opt}")
    assert not missing, f"README.md lacks: {missing}"
