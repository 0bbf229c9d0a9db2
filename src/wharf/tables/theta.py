"""Apache DataSketches theta sketches of Iceberg values, as Iceberg's Puffin ``apache-datasketches-theta-v1`` blob.

The Puffin spec defines the blob as the serialized *compact* theta sketch (DataSketches' default
seed 9001) fed with each value in Iceberg's single-value binary serialization (an ``int`` as 4
little-endian bytes, a ``string`` as its UTF-8 bytes, a ``uuid`` as 16 big-endian bytes, …).
Java and Trino hash those bytes; a sketch merged with theirs must hash the same bytes.

The ``datasketches`` Python binding updates a sketch only from a Python ``int`` (hashed as 8
bytes), ``float`` or ``str``: it cannot hash 4-byte integers, dates, floats, booleans,
decimals, UUIDs or binary values the way Iceberg serializes them. So the sketch is built here:
MurmurHash3_x64_128 (what DataSketches hashes with), vectorised with numpy over values of equal
byte length, and the compact sketch's serial-version-3 layout. ``tests/tables/test_theta.py``
checks it byte for byte against the ``datasketches`` library where the library can hash the same
bytes (8-byte integers, strings) and that the library reads every sketch written here back.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

DEFAULT_SEED = 9001
DEFAULT_LG_K = 12  # 4096 nominal entries: DataSketches' (and Iceberg's) default
MAX_THETA = (1 << 63) - 1

_C1 = np.uint64(0x87C37B91114253D5)
_C2 = np.uint64(0x4CF5AD432745937F)
_SERIAL_VERSION = 3
_COMPACT_FAMILY = 3
_FLAG_READ_ONLY, _FLAG_EMPTY, _FLAG_COMPACT, _FLAG_ORDERED = 2, 4, 8, 16


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(k: np.ndarray) -> np.ndarray:
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xFF51AFD7ED558CCD)
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xC4CEB9FE1A85EC53)
    return k ^ (k >> np.uint64(33))


def _le64(block: np.ndarray) -> np.ndarray:
    """Rows of up to 8 bytes → little-endian uint64 (short rows are zero-padded, as MurmurHash3's tail is)."""
    padded = np.zeros((block.shape[0], 8), dtype=np.uint8)
    padded[:, : block.shape[1]] = block
    return padded.view("<u8").reshape(-1).astype(np.uint64)


def murmur3_x64_128(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MurmurHash3_x64_128 of each row of a ``(n, length)`` uint8 matrix: arrays ``(h1, h2)``."""
    n, length = rows.shape
    with np.errstate(over="ignore"):
        h1 = np.full(n, seed, dtype=np.uint64)
        h2 = np.full(n, seed, dtype=np.uint64)
        blocks = length // 16
        for b in range(blocks):
            k1 = _le64(rows[:, b * 16 : b * 16 + 8])
            k2 = _le64(rows[:, b * 16 + 8 : b * 16 + 16])
            h1 ^= _rotl(k1 * _C1, 31) * _C2
            h1 = (_rotl(h1, 27) + h2) * np.uint64(5) + np.uint64(0x52DCE729)
            h2 ^= _rotl(k2 * _C2, 33) * _C1
            h2 = (_rotl(h2, 31) + h1) * np.uint64(5) + np.uint64(0x38495AB5)
        tail = rows[:, blocks * 16 :]
        if tail.shape[1] > 8:
            h2 ^= _rotl(_le64(tail[:, 8:]) * _C2, 33) * _C1
        if tail.shape[1] > 0:
            h1 ^= _rotl(_le64(tail[:, :8]) * _C1, 31) * _C2
        h1 ^= np.uint64(length)
        h2 ^= np.uint64(length)
        h1 = h1 + h2
        h2 = h2 + h1
        h1 = _fmix(h1)
        h2 = _fmix(h2)
        h1 = h1 + h2
        h2 = h2 + h1
    return h1, h2


def seed_hash(seed: int = DEFAULT_SEED) -> int:
    """DataSketches' 16-bit seed hash (MurmurHash3 of the seed as one long, hash seed 0)."""
    h1, _ = murmur3_x64_128(np.frombuffer(struct.pack("<q", seed), dtype=np.uint8).reshape(1, 8), 0)
    return int(h1[0]) & 0xFFFF


def theta_hashes(values: Iterable[bytes], seed: int = DEFAULT_SEED) -> np.ndarray:
    """The distinct 63-bit theta hashes of serialized values (empty values are ignored, as DataSketches does)."""
    by_length: dict[int, list[bytes]] = defaultdict(list)
    for value in values:
        if value:
            by_length[len(value)].append(value)
    parts = [np.zeros(0, dtype=np.uint64)]
    for length, group in by_length.items():
        rows = np.frombuffer(b"".join(group), dtype=np.uint8).reshape(len(group), length)
        parts.append(murmur3_x64_128(rows, seed)[0] >> np.uint64(1))
    return np.unique(np.concatenate(parts))


def fixed_width_hashes(rows: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Theta hashes of values that all serialize to ``rows.shape[1]`` bytes (numbers, dates, timestamps)."""
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return np.zeros(0, dtype=np.uint64)
    return np.unique(murmur3_x64_128(np.ascontiguousarray(rows), seed)[0] >> np.uint64(1))


def compact_sketch(hashes: np.ndarray, *, lg_k: int = DEFAULT_LG_K, seed: int = DEFAULT_SEED) -> bytes:
    """Serialize the ordered compact theta sketch of distinct theta ``hashes`` (serial version 3).

    Up to ``2**lg_k`` hashes the sketch is exact; beyond, it keeps the ``2**lg_k`` smallest and
    theta is the next one (a KMV sketch: the estimate is retained entries / (theta / 2**63)).
    A hash of 0 is never retained (DataSketches skips it).
    """
    ordered = np.sort(hashes[hashes != 0])
    k = 1 << lg_k
    theta = MAX_THETA
    if ordered.size > k:
        theta = int(ordered[k])
        ordered = ordered[:k]
    flags = _FLAG_READ_ONLY | _FLAG_COMPACT | _FLAG_ORDERED
    header = struct.pack("<BBBBBBH", 0, _SERIAL_VERSION, _COMPACT_FAMILY, 0, 0, 0, seed_hash(seed))
    if ordered.size == 0 and theta == MAX_THETA:
        return bytes([1]) + header[1:5] + bytes([flags | _FLAG_EMPTY]) + header[6:]
    entries = ordered.astype("<u8").tobytes()
    if ordered.size == 1 and theta == MAX_THETA:
        return bytes([1]) + header[1:5] + bytes([flags]) + header[6:] + entries
    preamble_longs = 2 if theta == MAX_THETA else 3
    head = bytes([preamble_longs]) + header[1:5] + bytes([flags]) + header[6:]
    head += struct.pack("<II", int(ordered.size), 0)
    if preamble_longs == 3:
        head += struct.pack("<Q", theta)
    return head + entries


def estimate(hashes: np.ndarray, lg_k: int = DEFAULT_LG_K) -> float:
    """The distinct-count estimate the compact sketch of ``hashes`` gives."""
    ordered = np.sort(hashes[hashes != 0])
    k = 1 << lg_k
    if ordered.size <= k:
        return float(ordered.size)
    return k / (int(ordered[k]) / float(MAX_THETA))
