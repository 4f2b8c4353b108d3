"""Every command and flag is documented: the README names every command (its front door), and the
generated command-line reference of the documentation site lists every flag with its help."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from biodl.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def reference_hook() -> ModuleType:
    """The MkDocs hook that generates the reference pages (docs/_hooks/reference.py)."""
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "docs" / "_hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_names_every_command() -> None:
    text = README.read_text()
    missing = [f"biodl {name}" for name in _subparsers(build_parser()) if f"biodl {name}" not in text]
    assert not missing, f"README.md lacks: {missing}"


def test_cli_reference_documents_every_command_and_flag() -> None:
    page = reference_hook().cli_markdown()
    missing = []

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        for name, sub in _subparsers(parser).items():
            if f"## `biodl {prefix}{name}`" not in page:
                missing.append(f"biodl {prefix}{name}")
            for action in sub._actions:
                for opt in action.option_strings:
                    if opt.startswith("--") and opt != "--help" and f"`{opt}`" not in page:
                        missing.append(f"biodl {prefix}{name} {opt}")
            walk(f"{prefix}{name} ", sub)

    walk("", build_parser())
    assert not missing, f"the generated CLI reference lacks: {missing}"
    assert "AnnData with obs['biodl_pred']" in page  # help texts are carried over


def test_readme_commands_use_existing_flags() -> None:
    """Flags written in the README's commands exist (a renamed flag breaks the front door's examples)."""
    known: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:  # sub-commands of sub-commands too (biodl zoo push --to)
        for sub in _subparsers(parser).values():
            known.update(opt for a in sub._actions for opt in a.option_strings)
            walk(sub)

    walk(build_parser())
    known |= {"--help", "--version", "--debug"}
    lines, cont = [], False
    for line in README.read_text().splitlines():  # biodl command lines (with their continuation lines)
        if line.lstrip().startswith("biodl ") or cont:
            lines.append(line.split("#", 1)[0])
        cont = line.rstrip().endswith("\\") and (cont or line.lstrip().startswith("biodl "))
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", "\n".join(lines)))
    assert {"--data-path", "--logger", "--output"} <= used
    assert not used - known, f"README.md uses unknown flags: {sorted(used - known)}"
