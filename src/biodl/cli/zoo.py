"""``biodl zoo``: list, show, pull, push, index and build zoo models."""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME_HELP = "zoo name (encode-gabpa, zoo:encode-gabpa@1), hf://OWNER/REPO[@REVISION] or http(s)://BASE/NAME"


def add_parser(sub: Any) -> None:
    """Register ``biodl zoo`` and its sub-commands."""
    zp = sub.add_parser(
        "zoo",
        help="pretrained models by name: list, show, pull, push, index, build",
        description="The model zoo. Names work wherever --model-path is accepted: zoo:NAME[@VERSION] (BIODL_ZOO_PATH "
        "folders, then the built-in zoo), hf://OWNER/REPO[@REVISION], http(s)://BASE/NAME. Remote models are fetched "
        "only when named, into BIODL_CACHE, and verified by SHA-256.",
    )
    zsub = zp.add_subparsers(dest="zoo_command", required=True, metavar="{list,show,pull,push,index,build}")
    ls = zsub.add_parser("list", help="models of the zoo (table, or --json)")
    ls.add_argument(
        "--json", action="store_true", help="a JSON array: name, version, data_type, task, metrics, licence, size, ..."
    )
    ls.add_argument("--all-versions", action="store_true", help="every version, not only the newest")
    sh = zsub.add_parser("show", help="print a model's card")
    sh.add_argument("name", help=NAME_HELP)
    pl = zsub.add_parser("pull", help="fetch a model into the cache (verified) and print its folder")
    pl.add_argument("name", help=NAME_HELP)
    pu = zsub.add_parser("push", help="publish a run to a zoo folder or hf://OWNER/REPO (bundle, card, index entry)")
    pu.add_argument("run", help="run directory, its model/ folder, or a model name")
    pu.add_argument("--to", required=True, help="zoo folder (serve it with any static web server) or hf://OWNER/REPO")
    pu.add_argument("--name", help="model name in the zoo (default: the run directory's name)")
    pu.add_argument("--version", help="version (default: the next integer in the folder)")
    pu.add_argument(
        "--validation-rows",
        action="store_true",
        default=None,
        help="ship the validation split's inputs (only where the data's licence allows; default: card.validation_rows)",
    )
    pu.add_argument(
        "--reproduce", metavar="COMMAND", help="the command that reproduces the model, for the card's Reproduce section"
    )
    ix = zsub.add_parser("index", help="rebuild index.json of a zoo folder")
    ix.add_argument("dir", help="zoo folder")
    bd = zsub.add_parser(
        "build", help="train zoo configs (examples/zoo/*.yaml) and package them; compares with the shipped cards"
    )
    bd.add_argument("configs", nargs="+", help="config files with a card: section")
    bd.add_argument("--to", default=None, help="zoo folder (default: the built-in zoo inside the package)")
    bd.add_argument("--runs-dir", default="runs/zoo", help="where the training runs go (default runs/zoo)")
    bd.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every model, e.g. train.max_epochs=2")  # fmt: skip


def cmd_zoo(args: argparse.Namespace) -> int:
    """Run a ``biodl zoo`` sub-command."""
    from biodl import zoo

    sub = args.zoo_command
    if sub == "list":
        rows = zoo.list_models(all_versions=args.all_versions)
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            _print_table(rows)
    elif sub == "show":
        print(zoo.show(args.name))
    elif sub == "pull":
        print(zoo.pull(args.name))
    elif sub == "push":
        where = zoo.push(args.run, args.to, name=args.name, version=args.version, validation_rows=args.validation_rows,
                         command=args.reproduce)  # fmt: skip
        print(f"pushed to {where}")
    elif sub == "index":
        out = zoo.index_zoo(args.dir)
        print(f"wrote {out} ({len(json.loads(out.read_text())['models'])} models)")
    elif sub == "build":
        from biodl.zoo.build import build

        rows = build(args.configs, to=args.to, runs_dir=args.runs_dir, overrides=args.overrides)
        _print_build(rows)
    return 0


def _size(n: Any) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from biodl.zoo.catalogue import headline

    table = Table(title=f"biodl zoo ({len(rows)} models)")
    for col in ("name", "version", "data type", "task", "data", "headline metric", "size", "licence"):
        table.add_column(col)
    for r in rows:
        data = ", ".join(r.get("datasets") or [])
        short = data[:40] + ("…" if len(data) > 40 else "")
        cells = (r["name"], r["version"], r["data_type"], r["task"], short, headline(r), _size(r.get("size")), r.get("licence"))
        table.add_row(*(str(c) for c in cells))
    Console(width=200).print(table)


def _print_build(rows: list[dict[str, Any]]) -> None:
    print("model | metric | shipped (validation) | rebuilt (validation) | Δ")
    for r in rows:
        old, new = r.get("shipped"), r.get("rebuilt")
        delta = f"{new - old:+.4f}" if isinstance(old, float) and isinstance(new, float) else "–"
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "–"  # noqa: E731
        print(f"{r['name']} | {r['metric']} | {fmt(old)} | {fmt(new)} | {delta}")


COMMANDS = {"zoo": cmd_zoo}
