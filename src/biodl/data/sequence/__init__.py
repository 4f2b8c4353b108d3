"""Sequence data: alphabets and one-hot encoding, FASTA, sequence tables, intervals + genome,
dinucleotide shuffles, k-mer counts, augmentation, and the ``sequence`` data type."""

from biodl.data.sequence.alphabet import (
    ALPHABETS,
    DNA,
    PROTEIN,
    RNA,
    Alphabet,
    decode_codes,
    encode_codes,
    get_alphabet,
    one_hot_codes,
    one_hot_decode,
    one_hot_encode,
    reverse_complement,
)
from biodl.data.sequence.augment import SequenceAugment
from biodl.data.sequence.fasta import FastaRecords, read_fasta, write_fasta
from biodl.data.sequence.kmers import kmer_counts, kmer_names
from biodl.data.sequence.modality import SequenceModality
from biodl.data.sequence.shuffle import dinucleotide_counts, dinucleotide_shuffle, shuffle_many

__all__ = [
    "ALPHABETS",
    "DNA",
    "PROTEIN",
    "RNA",
    "Alphabet",
    "FastaRecords",
    "SequenceAugment",
    "SequenceModality",
    "decode_codes",
    "dinucleotide_counts",
    "dinucleotide_shuffle",
    "encode_codes",
    "get_alphabet",
    "kmer_counts",
    "kmer_names",
    "one_hot_codes",
    "one_hot_decode",
    "one_hot_encode",
    "read_fasta",
    "reverse_complement",
    "shuffle_many",
    "write_fasta",
]
