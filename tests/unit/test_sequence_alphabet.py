"""One-hot encoding: lookup-table correctness and round trips (property-based), k-mer counts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from biodl.data.sequence import alphabet as alpha_mod
from biodl.data.sequence.alphabet import (
    DNA,
    INVALID,
    PROTEIN,
    RNA,
    WILDCARD,
    decode_codes,
    encode_codes,
    one_hot_codes,
    one_hot_decode,
    one_hot_encode,
    reverse_complement,
)
from biodl.data.sequence.augment import SequenceAugment, shift_batch
from biodl.data.sequence.kmers import kmer_counts, kmer_names
from biodl.errors import DataError

ALPHABETS = [DNA, RNA, PROTEIN]


def symbols_of(a: alpha_mod.Alphabet, *, wild: bool = True) -> st.SearchStrategy[str]:
    chars = a.symbols + a.symbols.lower() + (a.wildcards + a.wildcards.lower() if wild else "")
    return st.text(alphabet=chars, min_size=0, max_size=300)


def test_lookup_table_maps_every_byte() -> None:
    for a in ALPHABETS:
        for byte in range(256):
            ch = chr(byte)
            code = int(a.lut[byte])
            if ch.upper() in a.symbols and ch.isascii() and ch.isalpha():
                assert code == a.symbols.index(ch.upper()), (a.name, ch)
            elif ch.upper() in a.wildcards and ch.isascii() and ch.isalpha():
                assert code == WILDCARD, (a.name, ch)
            else:
                assert code == INVALID, (a.name, byte)


@pytest.mark.parametrize("a", ALPHABETS, ids=lambda a: a.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(a: alpha_mod.Alphabet, data: st.DataObject) -> None:
    seq = data.draw(symbols_of(a))
    onehot = one_hot_encode(seq, a)
    assert onehot.shape == (a.size, len(seq)) and onehot.dtype == np.uint8
    assert set(np.unique(onehot)) <= {0, 1}
    assert (onehot.sum(axis=0) <= 1).all()
    expected = "".join(c.upper() if c.upper() in a.symbols else a.unknown_symbol for c in seq)
    assert one_hot_decode(onehot, a) == expected
    # the batch path (codes through the table, then one-hot) agrees with the single-sequence path
    codes = encode_codes(seq.encode(), a)
    batch = one_hot_codes(codes.reshape(1, -1), a.size)
    np.testing.assert_array_equal(batch[0], onehot)
    assert decode_codes(codes.reshape(1, -1), a) == [expected]


@settings(max_examples=60, deadline=None)
@given(seq=st.text(alphabet="ACGTacgt", min_size=1, max_size=200))
def test_column_is_one_hot_of_the_base(seq: str) -> None:
    onehot = one_hot_encode(seq)
    for i, c in enumerate(seq):
        assert onehot[:, i].tolist() == [int(c.upper() == b) for b in "ACGT"]


@settings(max_examples=40, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=1, max_size=200))
def test_reverse_complement_matches_strings(seq: str) -> None:
    rc = seq[::-1].translate(str.maketrans("ACGTN", "TGCAN"))
    assert one_hot_decode(reverse_complement(one_hot_encode(seq))) == rc
    batch = torch.from_numpy(one_hot_encode(seq)[None])
    aug = SequenceAugment(rc=True, shift=0)
    out = aug(batch.repeat(64, 1, 1), generator=torch.Generator().manual_seed(0))
    decoded = set(one_hot_decode(out.numpy()))
    assert decoded <= {seq, rc} and (len(decoded) == 2 or seq == rc)


def test_uniform_unknown_and_dtype() -> None:
    x = one_hot_encode("ACNt", unknown="uniform")
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[:, 2], 0.25)
    np.testing.assert_allclose(x.sum(axis=0), 1.0)
    codes = encode_codes(b"ACNT").reshape(1, -1)
    np.testing.assert_allclose(one_hot_codes(codes, 4, "uniform")[0], x)


def test_errors_name_the_position() -> None:
    with pytest.raises(DataError, match=r"position 4: character 'Z' is not in the dna alphabet"):
        one_hot_encode("ACGZ")
    with pytest.raises(DataError, match=r"position 3: unknown base 'N'"):
        one_hot_encode("ACNT", unknown="error")
    with pytest.raises(DataError, match="position 2"):
        one_hot_encode("AéT")
    masked = one_hot_encode("AC-T", unknown="mask")
    assert masked[:, 2].sum() == 0 and masked[:, 3].tolist() == [0, 0, 0, 1]
    with pytest.raises(DataError, match="'U' is not in the dna alphabet"):
        one_hot_encode("ACGU")
    assert one_hot_decode(one_hot_encode("ACGU", "rna"), "rna") == "ACGU"


def test_chunked_encoding_of_a_long_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alpha_mod, "_CHUNK", 1000)
    rng = np.random.default_rng(0)
    seq = rng.choice(list("ACGTNacgt"), size=5555).astype(object)
    text = "".join(seq)
    x = one_hot_encode(text)
    assert one_hot_decode(x) == text.upper()
    np.testing.assert_array_equal(one_hot_encode(text, n_threads=3), x)
    bad = text[:4321] + "!" + text[4322:]
    for threads in (1, 3):
        with pytest.raises(DataError, match="position 4322: character '!'"):
            one_hot_encode(bad, n_threads=threads)
    worse = bad[:1500] + "?" + bad[1501:]  # the first error wins, whichever thread finds it
    with pytest.raises(DataError, match=r"position 1501: character '\?'"):
        one_hot_encode(worse, n_threads=3)
    uniform = one_hot_encode(text, unknown="uniform", n_threads=2)
    np.testing.assert_allclose(uniform[:, np.array([c in "Nn" for c in text])], 0.25)


def test_shift_fills_with_unknown() -> None:
    x = torch.from_numpy(one_hot_encode("ACGTA")[None].repeat(2, axis=0))
    out = shift_batch(x, torch.tensor([1, -2]))
    assert one_hot_decode(out.numpy()) == ["NACGT", "GTANN"]
    assert out.dtype == torch.uint8


@settings(max_examples=40, deadline=None)
@given(seqs=st.lists(st.text(alphabet="ACGTN", min_size=12, max_size=12), min_size=1, max_size=5), k=st.integers(1, 3))
def test_kmer_counts_match_naive_counting(seqs: list[str], k: int) -> None:
    onehot = np.stack([one_hot_encode(s) for s in seqs])
    counts = kmer_counts(onehot, k)
    names = kmer_names("ACGT", k)
    assert counts.shape == (len(seqs), 4**k)
    for row, s in zip(counts, seqs, strict=True):
        naive = dict.fromkeys(names, 0)
        for i in range(len(s) - k + 1):
            if "N" not in s[i : i + k]:
                naive[s[i : i + k]] += 1
        assert row.tolist() == [naive[n] for n in names]


def test_kmer_names() -> None:
    assert kmer_names("ACGT", 2)[:5] == ["AA", "AC", "AG", "AT", "CA"]
    assert len(kmer_names("ACGT", 3)) == 64 and len(set(itertools.chain(kmer_names("AC", 3)))) == 8


def test_strings_are_read_in_place_and_other_inputs_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPython ASCII str is viewed without a copy; bytes, non-ASCII text and str subclasses
    take the copying path; all give the same encoding and the same error positions."""
    monkeypatch.setattr(alpha_mod, "_CHUNK", 1000)
    rng = np.random.default_rng(1)
    text = "".join(rng.choice(list("ACGTNacgtn"), size=4097))
    view = alpha_mod._byte_view(text)
    assert view is not None and view.tobytes() == text.encode() and not view.flags.writeable
    assert alpha_mod._byte_view(text + "é") is None  # not ASCII

    class Tagged(str):
        pass

    assert alpha_mod._byte_view(Tagged(text)) is None  # another memory layout
    expected = one_hot_encode(text.encode())
    for form in (text, Tagged(text), bytearray(text.encode())):
        np.testing.assert_array_equal(one_hot_encode(form, n_threads=2), expected)
    bad = text[:2500] + "Z" + text[2501:]
    for form in (bad, bad.encode()):
        with pytest.raises(DataError, match="position 2501: character 'Z'"):
            one_hot_encode(form, n_threads=2)
