"""``POST /predict`` on a DNA model: the one-pass one-hot path and the route answered before FastAPI's stack.

A tiny DeepBind trained on 300 REST ChIP-seq peaks (ENCODE, as DeepBind's training data) is served
in process (Starlette's test client); its answers must equal the bundle's own predictions on the
data type's encoding, whichever path a request takes.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path

REST = ("dna", "deepbind_encode_train", "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz")


@pytest.fixture(scope="module")
def sequences() -> list[str]:
    with gzip.open(shared_path(*REST), "rt") as fh:
        seqs = pd.read_csv(fh, sep="\t")["seq"].head(400).tolist()
    return [s for s in seqs if len(s) == 101]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, sequences: list[str]) -> Any:
    from biodl import Experiment, load

    tmp = tmp_path_factory.mktemp("dna")
    table = tmp / "rest.tsv"
    pd.DataFrame({"EventID": [f"e{i}" for i in range(300)], "seq": sequences[:300], "Bound": 1}).to_csv(
        table, sep="\t", index=False
    )
    Experiment(
        data={"type": "sequence", "path": [str(table)], "target_columns": ["Bound"], "id_column": "EventID",
              "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle"}},
        model={"name": "deepbind", "filters": 8, "hidden_sizes": []},
        train={"max_epochs": 1, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(tmp / "run")  # fmt: skip
    return load(tmp / "run")


@pytest.fixture(scope="module")
def client(bundle: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    with TestClient(create_app(bundle, select_engine(bundle, "torch"), max_batch=16)) as c:
        yield c


def _expected(bundle: Any, records: list[str]) -> np.ndarray:
    m = bundle.modality
    return np.asarray(bundle.predict_arrays(m.transform(m.parse_inputs(records))))


def test_one_hot_rows_equal_the_data_types_encoding(bundle: Any, sequences: list[str]) -> None:
    from biodl.serve.payload import sequence_rows

    m = bundle.modality
    args = (m.alphabet.table, m.alphabet.size, m.length)
    mixed = [s.lower() if i % 2 else s for i, s in enumerate(sequences[:64])]
    for records in (sequences[:1], sequences[:64], mixed):
        X = sequence_rows(records, *args)
        assert X is not None and X.dtype == np.float32
        np.testing.assert_array_equal(X, m.transform(m.parse_inputs(records)))


@pytest.mark.parametrize(
    "change",
    [
        lambda s: "N" + s[1:],  # a wildcard: the data type decides (zero column, uniform or error)
        lambda s: s[:-1],  # another length
        lambda s: "Z" + s[1:],  # outside the alphabet
        lambda s: "é" + s[1:],  # not ASCII
    ],
)
def test_unusual_records_go_to_the_data_types_parser(bundle: Any, sequences: list[str], change: Any) -> None:
    from biodl.serve.payload import sequence_rows

    m = bundle.modality
    assert sequence_rows([sequences[0], change(sequences[1])], m.alphabet.table, m.alphabet.size, m.length) is None
    assert sequence_rows([42], m.alphabet.table, m.alphabet.size, m.length) is None  # type: ignore[list-item]


def test_predictions_equal_the_bundles_whichever_path(client: Any, bundle: Any, sequences: list[str]) -> None:
    batches = [sequences[:1], sequences[1:9], [s.lower() for s in sequences[9:12]], ["N" * 5 + sequences[12][5:]]]
    for records in batches:
        res = client.post("/predict", json={"inputs": records})
        assert res.status_code == 200, res.text
        got = np.array([[p["probabilities"][c] for c in bundle.classes] for p in res.json()["predictions"]])
        want = _expected(bundle, records)
        want = np.column_stack([1 - want[:, 0], want[:, 0]]) if want.shape[1] == 1 else want
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bad_records_are_still_named(client: Any, sequences: list[str]) -> None:
    res = client.post("/predict", json={"inputs": [sequences[0], "Z" + sequences[1][1:]]})
    assert res.status_code == 422
    assert "input 1: character 'Z' at position 1 is not in the dna alphabet" in res.json()["detail"]
    res = client.post("/predict", json={"inputs": [sequences[0][:50]]})
    assert res.status_code == 422 and "expected 101 characters, got 50" in res.json()["detail"]
    res = client.post("/predict", content=b'{"inputs": ["ACG', headers={"content-type": "application/json"})
    assert res.status_code == 422 and res.json()["detail"].startswith("malformed JSON")
    res = client.post("/predict", content=b"x" * (9 * 1024 * 1024), headers={"content-type": "application/json"})
    assert res.status_code == 413
    assert client.get("/health").json()["requests"] >= 1  # the rest of the app still answers through FastAPI
