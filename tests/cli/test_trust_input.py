"""Issue 14 (trust): bad input that used to train a misread model, crash or pass silently.

Each test runs the CLI in-process (``biodl.cli.main.main``) on real data and checks the console
and the run directory. Data: the Mulan yeast table (``../shared/datasets/multilabel/yeast``) and
the ESOL subset shipped in ``tests/data``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.cli.main import main
from conftest import REPO, shared_path

ESOL = REPO / "tests" / "data" / "esol_subset.csv"
QUIET = ["--set", "train.progress_bar=false", "--set", "evaluate.baselines=[]", "--set", "evaluate.plots=false",
         "--set", "evaluate.report=false", "--threads", "1"]  # fmt: skip


def biodl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: ``(exit code, stdout, stderr)``."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def yeast_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 rows of the yeast ARFF as a CSV: Att1..Att103 features, Class1..Class14 labels."""
    from biodl.data.arff import read_arff

    arff = read_arff(shared_path("multilabel", "yeast", "yeast-train.arff"))
    path = tmp_path_factory.mktemp("yeast") / "yeast.csv"
    arff.frame.iloc[:300].to_csv(path, index=False)
    return path


def bundle_features(run: Path) -> list[str]:
    return list(json.loads((run / "model" / "bundle.json").read_text())["columns"]["feature_columns"])


# ---------------------------------------------------------------- 1. non-numeric cell
def test_non_numeric_cell_names_file_line_column_value(
    yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(yeast_csv).iloc[:80]
    frame["Att7"] = frame["Att7"].astype(object)
    frame.loc[4, "Att7"] = "abc"  # data row 5 = file line 6
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    code, _, err = biodl(capsys, "train", "--data-path", str(bad), "--task", "classification", "--target-columns",
                         "Class1", "--output-dir", str(tmp_path / "run"), "--max-epochs", "1", *QUIET)  # fmt: skip
    line = one_line_error(code, err)
    assert f"{bad} line 6" in line and "'Att7'" in line and "'abc'" in line
    assert not (tmp_path / "run" / "model").exists()
    # the documented alternative: skip such rows, counted and listed
    code, out, err = biodl(capsys, "train", "--data-path", str(bad), "--task", "classification", "--target-columns",
                           "Class1", "--output-dir", str(tmp_path / "run"), "--max-epochs", "1", "--set", "data.bad_values=skip",
                           *QUIET)  # fmt: skip
    assert code == 0, err
    skipped = pd.read_csv(tmp_path / "run" / "skipped_rows.csv")
    assert skipped[["row", "line", "column", "input"]].values.tolist() == [[5, 6, "Att7", "abc"]]
    assert "skipped 1 row(s) with non-numeric feature values" in out
    assert len(bundle_features(tmp_path / "run")) == 103  # Att7 stays a feature


# ------------------------------------------------- 2. default features leave out labels
def test_default_features_leave_out_the_other_labels(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, out, err = biodl(capsys, "train", "--data-path", str(yeast_csv), "--task", "classification",
                           "--target-columns", "Class1", "--output-dir", str(run), "--max-epochs", "1", *QUIET)  # fmt: skip
    assert code == 0, err
    features = bundle_features(run)
    assert len(features) == 103 and features[0] == "Att1" and not any(f.startswith("Class") for f in features)
    assert "features: 103 numeric column(s) (Att1, Att2" in out and "Class2" in out and "same name pattern" in out


def test_arff_class_attributes_are_not_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arff = shared_path("multilabel", "yeast", "yeast-train.arff")
    run = tmp_path / "run"
    code, out, err = biodl(capsys, "train", "--data-path", str(arff), "--task", "classification",
                           "--target-columns", "Class3", "--output-dir", str(run), "--max-epochs", "1", *QUIET)  # fmt: skip
    assert code == 0, err
    assert len(bundle_features(run)) == 103 and "a label in the data set's schema" in out


# ------------------------------------------- 3. continuous values as class labels
def test_classification_refuses_continuous_targets(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(yeast_csv).iloc[:40][["Att1", "Att2", "Att3", "Att4"]]
    frame["y"] = frame["Att4"].round(3)  # continuous values
    frame = frame.drop(columns="Att4")
    cont = tmp_path / "cont.csv"
    frame.to_csv(cont, index=False)
    args = ["train", "--task", "classification", "--target-columns", "y", "--output-dir", str(tmp_path / "r"), *QUIET]
    line = one_line_error(*biodl(capsys, *args, "--data-path", str(cont))[::2])
    assert "non-integer" in line and "use --task regression" in line
    frame["y"] = np.arange(40) % 39  # 39 integer classes from 40 rows
    many = tmp_path / "many.csv"
    frame.to_csv(many, index=False)
    line = one_line_error(*biodl(capsys, *args, "--data-path", str(many))[::2])
    assert "39 classes for 40 labelled rows" in line and "use --task regression" in line


# --------------------------------------------------- 7. rare classes, missing labels
def test_rare_class_and_missing_labels_are_reported(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(yeast_csv).iloc[:60][[f"Att{i}" for i in range(1, 11)]]
    frame["kind"] = ["a"] * 30 + ["b"] * 26 + ["c"] * 2 + [None] * 2
    path = tmp_path / "rare.csv"
    frame.to_csv(path, index=False)
    code, out, err = biodl(capsys, "train", "--data-path", str(path), "--task", "classification", "--target-columns",
                           "kind", "--output-dir", str(tmp_path / "r"), "--max-epochs", "1", *QUIET)  # fmt: skip
    assert code == 0, err
    assert "warning: class(es) with very few rows ('c' 2 of 58)" in out
    assert "warning: 2 of 60 row(s) have no label" in out


# ------------------------------------------------ 7. salts listed, empty SMILES shown empty
def test_salts_and_empty_smiles_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(ESOL).iloc[:120].copy()
    frame.loc[3, "smiles"] = frame.loc[3, "smiles"] + ".[Na+].[Cl-]"
    frame.loc[7, "smiles"] = "[Na+].[Cl-]"
    frame.loc[9, "smiles"] = None  # empty cell
    path = tmp_path / "salts.csv"
    frame.to_csv(path, index=False)
    run = tmp_path / "run"
    code, out, err = biodl(capsys, "train", "--data-type", "molecule", "--data-path", str(path), "--task", "regression",
                           "--target-columns", "logp", "--output-dir", str(run), "--max-epochs", "1", "--skip-invalid",
                           "--model", "mlp", *QUIET)  # fmt: skip
    assert code == 0, err
    changed = pd.read_csv(run / "changed_rows.csv", keep_default_na=False)
    assert list(changed["row"]) == [4, 8] and "largest fragment" in changed["reason"].iloc[0]
    assert changed["changed_to"].iloc[1] in ("[Na+]", "[Cl-]")
    assert "2 input row(s) changed" in out
    skipped = pd.read_csv(run / "skipped_rows.csv", keep_default_na=False)
    assert list(skipped["row"]) == [10] and skipped["input"].iloc[0] == "" and "empty" in skipped["reason"].iloc[0]


# ---------------------------------------------------------- 14. did you mean
def test_misspelt_target_column_suggests_the_closest(yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = biodl(capsys, "train", "--data-path", str(yeast_csv), "--task", "classification", "--target-columns",
                         "Clas12", "--output-dir", str(tmp_path / "r"), *QUIET)  # fmt: skip
    line = one_line_error(code, err)
    assert "target column 'Clas12' not found; did you mean 'Class12'?" in line
    assert "Att1," not in line  # the closest columns, not the first 20


# ---------------------------------------------------- 7. duplicate ids: both positions
def test_duplicate_label_table_id_gives_both_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.data.sequence.fasta import read_fasta, write_fasta

    rec = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample.fa"))
    fasta = write_fasta(tmp_path / "s.fa", [f"s{i}" for i in range(6)], [s.decode() for s in rec.sequences[:6]])
    labels = tmp_path / "labels.csv"
    labels.write_text("id,bound\ns0,1\ns1,0\ns2,1\ns1,1\ns3,0\ns4,1\ns5,0\n")
    code, _, err = biodl(capsys, "train", "--data-type", "sequence", "--data-path", str(fasta), "--target-columns",
                         "bound", "--set", f"data.sequence.label_table={labels}", "--output-dir", str(tmp_path / "r"),
                         *QUIET)  # fmt: skip
    line = one_line_error(code, err)
    assert f"{labels}: id 's1' appears more than once" in line and "lines 3 and 5" in line


# ------------------------------------------------ 14. config paths from the YAML's folder
def test_config_paths_are_taken_from_the_yaml_folder(
    yeast_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    frame = pd.read_csv(yeast_csv).iloc[:120][[f"Att{i}" for i in range(1, 21)] + ["Class1"]]
    frame.to_csv(project / "data" / "t.csv", index=False)
    (project / "features.txt").write_text("\n".join(f"Att{i}" for i in range(1, 11)) + "\n")
    cfg = project / "exp.yaml"
    cfg.write_text(
        "data:\n  path: [data/t.csv]\n  task: classification\n  target_columns: [Class1]\n"
        "  feature_columns: ['@features.txt']\ntrain:\n  max_epochs: 1\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = biodl(capsys, "train", "--config", str(cfg), "--output-dir", "run", *QUIET)
    assert code == 0, err
    assert bundle_features(elsewhere / "run") == [f"Att{i}" for i in range(1, 11)]
