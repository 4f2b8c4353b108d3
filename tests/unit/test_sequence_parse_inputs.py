"""Request records (sequence strings) become the same codes as sequences read from files."""

from __future__ import annotations

import numpy as np
import pytest

from biodl.config import DataConfig
from biodl.data.sequence.modality import SequenceModality
from biodl.errors import DataError


def _modality(**seq: object) -> SequenceModality:
    mod = SequenceModality(DataConfig.model_validate({"type": "sequence", "sequence": seq}))
    mod.length = 8
    return mod


def test_strings_encode_like_files() -> None:
    mod = _modality()
    codes = mod.parse_inputs(["ACGTacgt", "NNACGTAA"])
    onehot = mod.transform(codes)
    assert onehot.shape == (2, 4, 8)
    np.testing.assert_array_equal(onehot[0].argmax(axis=0), [0, 1, 2, 3, 0, 1, 2, 3])
    assert onehot[1, :, :2].sum() == 0  # N → all-zero column
    assert onehot[1, :, 2:].sum() == 6


@pytest.mark.parametrize(
    ("inputs", "pattern"),
    [
        (["ACGTACG"], r"input 0: expected 8 characters, got 7"),
        (["ACGTACGT", "ACGZACGT"], r"input 1: character 'Z' at position 4 is not in the dna alphabet"),
        ([42], r"input 0: expected a non-empty dna sequence string"),
    ],
)
def test_bad_records_name_the_input(inputs: list[object], pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        _modality().parse_inputs(inputs)


def test_mask_mode_zeroes_other_characters() -> None:
    onehot = _modality(unknown="mask").transform(_modality(unknown="mask").parse_inputs(["ACGZACGT"]))
    assert onehot[0, :, 3].sum() == 0 and onehot[0].sum() == 7
