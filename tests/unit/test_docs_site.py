"""The documentation site's generated pages cover the code, and every page is in the navigation."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml
from pydantic import BaseModel

from biodl.config import ExperimentConfig, ModelConfig
from biodl.models import MODELS

ROOT = Path(__file__).resolve().parents[2]


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "docs" / "_hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel) and ann is not ModelConfig:
            out += _keys(ann, f"{prefix}{name}.")
        elif ann is not ModelConfig:
            out.append(f"{prefix}{name}")
    return out


def test_schema_page_lists_every_key_with_its_default() -> None:
    page = _hook().schema_markdown()
    keys = _keys(ExperimentConfig, "")
    assert len(keys) > 80
    missing = [k for k in keys if f"| `{k}` |" not in page]
    assert not missing, f"schema page lacks {missing}"
    assert '| `train.logger` | `tensorboard` \\| `csv` \\| `mlflow` \\| `wandb` | `"tensorboard"` |' in page
    assert "| `data.h5ad_backed` | bool | `false` | AnnData: stream rows from disk" in page
    for name in MODELS.names():  # every architecture's own parameters
        assert f"### `model.name: {name}`" in page
    assert "| `data.path` | list[str] | `[]` | input file(s) (`--data-path`) |" in page  # a flag's help fills a gap


def test_every_docs_page_is_in_the_navigation() -> None:
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: object) -> set[str]:
        if isinstance(nav, list):
            return set().union(*(pages(x) for x in nav)) if nav else set()
        if isinstance(nav, dict):
            return set().union(*(pages(v) for v in nav.values()))
        return {str(nav)}

    in_nav = pages(cfg["nav"])
    docs = ROOT / "docs"
    on_disk = {str(p.relative_to(docs)) for p in docs.rglob("*.md") if "_hooks" not in p.parts}
    generated = {"reference/schema.md", "reference/cli.md", "results.md"}
    assert not on_disk - in_nav, f"pages not in mkdocs.yml's nav: {sorted(on_disk - in_nav)}"
    absent = in_nav - on_disk - generated - set(cfg["extra"]["optional_pages"])
    assert not absent, f"nav entries without a page: {sorted(absent)}"


def test_missing_optional_pages_leave_the_navigation(tmp_path: Path) -> None:
    hook = _hook()
    (tmp_path / "index.md").write_text("# x\n")
    (tmp_path / "trust.md").write_text("# trust\n")
    config = {
        "docs_dir": str(tmp_path),
        "extra": {"optional_pages": ["trust.md", "mil.md"]},
        "nav": [{"Home": "index.md"}, {"Guides": [{"Trust": "trust.md"}, {"MIL": "mil.md"}]}, {"Only": [{"MIL": "mil.md"}]}],
    }
    assert hook.on_config(config)["nav"] == [{"Home": "index.md"}, {"Guides": [{"Trust": "trust.md"}]}]


def test_results_page_is_the_readme_table() -> None:
    page = _hook().results_markdown()
    readme = (ROOT / "README.md").read_text()
    table = [line for line in page.splitlines() if line.startswith("| ")]
    assert len(table) > 5 and all(line in readme for line in table)
