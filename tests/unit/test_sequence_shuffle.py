"""Dinucleotide shuffles keep every dinucleotide count exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from biodl.data.sequence.alphabet import encode_codes
from biodl.data.sequence.fasta import read_fasta
from biodl.data.sequence.shuffle import dinucleotide_counts, dinucleotide_shuffle, shuffle_many
from conftest import shared_path


@settings(max_examples=150, deadline=None)
@given(seq=st.text(alphabet="ACGTN", min_size=0, max_size=150), seed=st.integers(0, 2**32 - 1))
def test_counts_first_and_last_are_kept(seq: str, seed: int) -> None:
    codes = np.frombuffer(seq.encode(), dtype=np.uint8)
    out = dinucleotide_shuffle(codes, np.random.default_rng(seed))
    assert out.dtype == codes.dtype and len(out) == len(codes)
    np.testing.assert_array_equal(dinucleotide_counts(out), dinucleotide_counts(codes))
    if len(codes):
        assert out[0] == codes[0] and out[-1] == codes[-1]
        np.testing.assert_array_equal(np.sort(out), np.sort(codes))


def test_real_peaks_seeded_and_shuffled() -> None:
    records = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample_test.fa"))
    seqs = [encode_codes(s) for s in records.sequences[:50]]
    a = shuffle_many(seqs, seed=7)
    b = shuffle_many(seqs, seed=7)
    c = shuffle_many(seqs, seed=8)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any((x != y).any() for x, y in zip(a, c, strict=True))
    changed = 0
    for s, t in zip(seqs, a, strict=True):
        np.testing.assert_array_equal(dinucleotide_counts(s), dinucleotide_counts(t))
        changed += int((s != t).any())
    assert changed == len(seqs)  # 200-bp peaks are never returned unchanged


def test_several_shuffles_per_sequence_and_uniformity() -> None:
    # AACGTAC has exactly two Eulerian orders with the same ends; both should appear about equally
    seq = np.frombuffer(b"AACGTAC", dtype=np.uint8)
    outs = shuffle_many([seq], seed=0, times=2000)
    kinds = {o.tobytes() for o in outs}
    assert kinds == {b"AACGTAC", b"ACGTAAC"}
    share = np.mean([o.tobytes() == b"AACGTAC" for o in outs])
    assert 0.45 < share < 0.55
