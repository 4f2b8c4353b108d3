"""Alphabets and one-hot encoding through a 256-entry byte lookup table.

Every alphabet is a table that maps each byte (both cases) to a code: ``0..A-1`` for the
``A`` symbols, :data:`WILDCARD` for ``N``/ambiguity codes, :data:`INVALID` for anything else.
Encoding never loops over bases in Python: bytes go through the table in one C call
(``bytes.translate``) and codes become one-hot rows by vectorised comparisons, written
straight into a compact ``uint8`` array of shape ``(N, A, L)``.

>>> onehot = one_hot_encode("ACGTN")
>>> onehot.shape, onehot.dtype
((4, 5), dtype('uint8'))
>>> one_hot_decode(onehot)
'ACGTN'
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from biodl.errors import DataError

#: Code of ``N`` and other ambiguity symbols: all-zero (or uniform) one-hot column.
WILDCARD = 254
#: Code of padding and masked characters: always an all-zero column.
BLANK = 253
#: Code of a byte that is not in the alphabet.
INVALID = 255

UnknownMode = Literal["zero", "uniform", "error", "mask"]

# Bases per chunk when a long sequence is encoded: small enough to stay in cache.
_CHUNK = 1 << 19


@dataclass(frozen=True)
class Alphabet:
    """An ordered set of symbols and its byte lookup table.

    Attributes
    ----------
    name
        ``dna``, ``rna`` or ``protein``.
    symbols
        The ``A`` symbols in channel order (upper case).
    wildcards
        Symbols meaning "unknown" (``N``, IUPAC ambiguity codes, ``X``), encoded as
        :data:`WILDCARD`.
    complement
        The complement of each symbol (``None`` for protein); for DNA/RNA it is the reversed
        symbol order, so the reverse complement of a one-hot array is a flip of both axes.
    """

    name: str
    symbols: str
    wildcards: str
    complement: str | None
    lut: np.ndarray = field(init=False, repr=False, compare=False)
    table: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lut = np.full(256, INVALID, dtype=np.uint8)
        for code, sym in enumerate(self.symbols):
            lut[ord(sym.upper())] = lut[ord(sym.lower())] = code
        for sym in self.wildcards:
            lut[ord(sym.upper())] = lut[ord(sym.lower())] = WILDCARD
        lut.setflags(write=False)
        object.__setattr__(self, "lut", lut)
        object.__setattr__(self, "table", lut.tobytes())

    @property
    def size(self) -> int:
        """Number of channels ``A``."""
        return len(self.symbols)

    @property
    def unknown_symbol(self) -> str:
        """The symbol written for all-zero / uniform columns when decoding."""
        return self.wildcards[0]

    @property
    def complementable(self) -> bool:
        """Whether reverse complements exist (DNA, RNA)."""
        return self.complement is not None


DNA = Alphabet("dna", "ACGT", "NRYSWKMBDHV", "TGCA")
RNA = Alphabet("rna", "ACGU", "NRYSWKMBDHV", "UGCA")
PROTEIN = Alphabet("protein", "ACDEFGHIKLMNPQRSTVWY", "XBZJUO", None)
ALPHABETS: dict[str, Alphabet] = {a.name: a for a in (DNA, RNA, PROTEIN)}


def get_alphabet(name: str | Alphabet) -> Alphabet:
    """The alphabet called ``name`` (``dna``, ``rna``, ``protein``)."""
    if isinstance(name, Alphabet):
        return name
    try:
        return ALPHABETS[name.lower()]
    except KeyError:
        raise DataError(f"unknown alphabet {name!r}; choose one of {sorted(ALPHABETS)}") from None


class BadCharacter(NamedTuple):
    """Where a character outside the alphabet was found.

    Attributes
    ----------
    position
        0-based position in the byte buffer.
    char
        The offending character.
    n_invalid
        How many bytes of the buffer are invalid.
    """

    position: int
    char: str
    n_invalid: int


def encode_codes(data: bytes, alphabet: str | Alphabet = "dna") -> np.ndarray:
    """Map bytes to alphabet codes with the lookup table.

    Parameters
    ----------
    data
        ASCII bytes, ``(L,)``.
    alphabet
        The alphabet.

    Returns
    -------
    np.ndarray
        ``(L,)`` uint8: ``0..A-1``, :data:`WILDCARD` or :data:`INVALID`.
    """
    alpha = get_alphabet(alphabet)
    return np.frombuffer(data.translate(alpha.table), dtype=np.uint8)


def find_invalid(codes: np.ndarray, data: bytes) -> BadCharacter | None:
    """The first :data:`INVALID` code (with its character), or ``None``."""
    bad = codes == INVALID
    n = int(np.count_nonzero(bad))
    if n == 0:
        return None
    i = int(np.argmax(bad))
    return BadCharacter(i, chr(data[i]), n)


def one_hot_codes(codes: np.ndarray, size: int, unknown: UnknownMode = "zero", *, batch: int = 4096) -> np.ndarray:
    """One-hot encode a code matrix.

    Parameters
    ----------
    codes
        ``(N, L)`` uint8 codes (``0..A-1``, :data:`WILDCARD`, :data:`BLANK`).
    size
        Alphabet size ``A``.
    unknown
        ``uniform`` writes ``1/A`` in every channel of wildcard positions (float32 output);
        otherwise wildcards are all-zero columns and the output is uint8.
    batch
        Rows encoded per step (bounds temporary memory).

    Returns
    -------
    np.ndarray
        ``(N, A, L)`` uint8 (0/1), or float32 for ``unknown="uniform"``.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, L), got shape {codes.shape}")
    n, length = codes.shape
    uniform = unknown == "uniform"
    out = np.empty((n, size, length), dtype=np.float32 if uniform else np.uint8)
    for start in range(0, n, batch):
        c = codes[start : start + batch]
        o = out[start : start + batch]
        if uniform:
            o[...] = c[:, None, :] == np.arange(size, dtype=np.uint8)[None, :, None]
            o += (c == WILDCARD)[:, None, :] * np.float32(1.0 / size)
        else:
            np.equal(c[:, None, :], np.arange(size, dtype=np.uint8)[None, :, None], out=o.view(bool))
    return out


#: Size of CPython's compact-ASCII string header (the characters follow it in the same block).
_ASCII_HEADER = sys.getsizeof("") - 1


def _byte_view(sequence: str | bytes) -> np.ndarray | None:
    """The sequence's bytes as a read-only ``uint8`` array without copying them, or ``None``.

    Bytes-like input is viewed directly. A CPython ``str`` of ASCII characters is stored as one
    block (header, characters, terminating NUL); it is viewed in place when the block has exactly
    that size, so no byte outside the string is read. Anything else (PyPy, non-ASCII text) returns
    ``None`` and is copied chunk by chunk instead. The caller must keep ``sequence`` alive.
    """
    if isinstance(sequence, bytes | bytearray | memoryview):
        return np.frombuffer(sequence, dtype=np.uint8)
    n = len(sequence)
    if (
        sys.implementation.name != "cpython"
        or n == 0
        or not sequence.isascii()
        or sys.getsizeof(sequence) != _ASCII_HEADER + n + 1
    ):
        return None
    block = (ctypes.c_uint8 * n).from_address(id(sequence) + _ASCII_HEADER)
    view = np.frombuffer(memoryview(block), dtype=np.uint8)  # type: ignore[call-overload,unused-ignore]
    probe = [0, n // 2, n - 1]
    if view[probe].tobytes() != "".join(sequence[i] for i in probe).encode("ascii"):
        return None  # not the layout we expect: copy instead
    view.flags.writeable = False
    return view


def _encode_chunk(chunk: bytes | np.ndarray, alpha: Alphabet, out: np.ndarray, folded: np.ndarray) -> tuple[int, int]:
    """Encode one chunk into ``out`` ``(A, len(chunk))``.

    Symbols are letters, so the table's rows are matched by comparing case-folded bytes
    (``byte | 0x20``) with each lower-case symbol: exact for letters and SIMD-vectorised.

    Returns
    -------
    tuple of int
        Bytes that are not symbols, and how many of them are the main wildcard (``N``/``X``).
    """
    raw = chunk if isinstance(chunk, np.ndarray) else np.frombuffer(chunk, dtype=np.uint8)
    fold = folded[: len(raw)]
    np.bitwise_or(raw, np.uint8(0x20), out=fold)
    for a, sym in enumerate(alpha.symbols.lower().encode("ascii")):
        np.equal(fold, sym, out=out[a].view(bool))
    other = len(raw) - int(np.count_nonzero(out))
    if other == 0:
        return 0, 0
    wild = np.equal(fold, ord(alpha.unknown_symbol.lower()), out=folded[len(folded) // 2 :][: len(raw)].view(bool))
    return other, int(np.count_nonzero(wild))


def _encode_range(
    sequence: str | bytes, alpha: Alphabet, out: np.ndarray, lo: int, hi: int, unknown: UnknownMode
) -> tuple[list[np.ndarray], tuple[int, str] | None]:
    """Encode ``sequence[lo:hi]`` chunk by chunk; returns (wildcard positions, first error)."""
    folded = np.empty(2 * min(hi - lo, _CHUNK), dtype=np.uint8)  # case-folded bytes, then the wildcard mask
    wild_at: list[np.ndarray] = []
    whole = _byte_view(sequence)
    for start in range(lo, hi, _CHUNK):
        end = min(start + _CHUNK, hi)
        if whole is not None:  # no copy, and no GIL held between the NumPy calls
            other, n_wild = _encode_chunk(whole[start:end], alpha, out[:, start:end], folded)
            if other == 0 or (other == n_wild and unknown in ("zero", "mask")):
                continue  # only symbols, or symbols and N
            chunk = whole[start:end].tobytes()
        else:
            piece = sequence[start:end]
            try:
                chunk = piece.encode("ascii") if isinstance(piece, str) else bytes(piece)
            except UnicodeEncodeError as exc:
                return wild_at, (start + exc.start, f"character {piece[exc.start]!r} is not in the {alpha.name} alphabet")
            other, n_wild = _encode_chunk(chunk, alpha, out[:, start:end], folded)
            if other == 0 or (other == n_wild and unknown in ("zero", "mask")):
                continue
        codes = encode_codes(chunk, alpha)
        bad = find_invalid(codes, chunk)
        if bad is not None and unknown != "mask":
            return wild_at, (
                start + bad.position,
                f"character {bad.char!r} is not in the {alpha.name} alphabet ({alpha.symbols}; unknown: "
                f"{alpha.wildcards}); use unknown='mask' to encode it as all-zero",
            )
        wild = np.flatnonzero(codes == WILDCARD)
        if wild.size and unknown == "error":
            return wild_at, (start + int(wild[0]), f"unknown base {chr(chunk[int(wild[0])])!r} (unknown='error')")
        if wild.size and unknown == "uniform":
            wild_at.append(wild + start)
    return wild_at, None


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def one_hot_encode(
    sequence: str | bytes, alphabet: str | Alphabet = "dna", unknown: UnknownMode = "zero", *, n_threads: int | None = None
) -> np.ndarray:
    """One-hot encode one (possibly chromosome-sized) sequence.

    The sequence is processed in cache-sized chunks, each written directly into its slice of
    the output, so memory stays at the output plus one chunk per thread. Chunks holding
    characters other than the symbols and ``N`` go through the byte lookup table to tell
    wildcards from errors.

    Parameters
    ----------
    sequence
        The sequence (either case), ``L`` characters.
    alphabet
        ``dna`` (ACGT), ``rna`` (ACGU) or ``protein`` (20 amino acids), or an :class:`Alphabet`.
    unknown
        ``zero``: wildcards (``N``...) are all-zero columns; ``uniform``: ``1/A`` (float32);
        ``error``: wildcards are errors; ``mask``: any character outside the alphabet becomes an
        all-zero column instead of an error.
    n_threads
        Threads encoding parts of a long sequence at once (NumPy releases the GIL); ``None``
        (default) uses the CPU cores this process may run on, one per 256 kbp chunk at most, so
        short sequences stay on the calling thread. The result does not depend on it.

    Returns
    -------
    np.ndarray
        ``(A, L)`` uint8 (float32 for ``uniform``).

    Raises
    ------
    DataError
        For a character outside the alphabet (or a wildcard with ``unknown="error"``), naming
        its 1-based position.
    """
    alpha = get_alphabet(alphabet)
    n = len(sequence)
    out = np.empty((alpha.size, n), dtype=np.uint8)
    threads = available_cores() if n_threads is None else int(n_threads)
    parts = max(1, min(threads, -(-n // _CHUNK)))
    bounds = [
        (_CHUNK * (-(-n // _CHUNK) * i // parts), min(n, _CHUNK * (-(-n // _CHUNK) * (i + 1) // parts))) for i in range(parts)
    ]
    if parts == 1:
        results = [_encode_range(sequence, alpha, out, 0, n, unknown)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(parts) as pool:
            results = list(pool.map(lambda b: _encode_range(sequence, alpha, out, b[0], b[1], unknown), bounds))
    errors = [err for _, err in results if err is not None]
    if errors:
        pos, msg = min(errors)
        raise DataError(f"position {pos + 1}: {msg}")
    if unknown == "uniform":
        flo = out.astype(np.float32)
        for wild_at, _ in results:
            for idx in wild_at:
                flo[:, idx] = np.float32(1.0 / alpha.size)
        return flo
    return out


def one_hot_decode(onehot: np.ndarray, alphabet: str | Alphabet = "dna") -> str | list[str]:
    """Turn one-hot arrays back into strings.

    Parameters
    ----------
    onehot
        ``(A, L)`` or ``(N, A, L)``; columns without a single 1 decode to the wildcard symbol.

    Returns
    -------
    str or list of str
        One string for ``(A, L)``, a list of ``N`` strings for ``(N, A, L)``.
    """
    alpha = get_alphabet(alphabet)
    arr = np.asarray(onehot)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != alpha.size:
        raise ValueError(f"expected (N, {alpha.size}, L) or ({alpha.size}, L), got shape {np.asarray(onehot).shape}")
    symbols = np.frombuffer((alpha.symbols + alpha.unknown_symbol).encode("ascii"), dtype=np.uint8)
    code = arr.argmax(axis=1)
    code[arr.max(axis=1) != 1] = alpha.size
    chars = symbols[code]
    out = [row.tobytes().decode("ascii") for row in chars]
    return out[0] if single else out


def decode_codes(codes: np.ndarray, alphabet: str | Alphabet = "dna") -> list[str]:
    """Codes ``(N, L)`` back to strings (wildcards and blanks as the wildcard symbol)."""
    alpha = get_alphabet(alphabet)
    table = np.full(256, ord(alpha.unknown_symbol), dtype=np.uint8)
    table[: alpha.size] = np.frombuffer(alpha.symbols.encode("ascii"), dtype=np.uint8)
    return [row.tobytes().decode("ascii") for row in table[np.asarray(codes, dtype=np.uint8)]]


def reverse_complement(onehot: np.ndarray) -> np.ndarray:
    """Reverse complement of DNA/RNA one-hot arrays ``(..., 4, L)`` (a flip of both axes)."""
    return np.ascontiguousarray(np.flip(np.asarray(onehot), axis=(-2, -1)))
