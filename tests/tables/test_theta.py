"""Theta sketches written for Puffin statistics, checked against the Apache DataSketches library.

The library's Python binding hashes an ``int`` as 8 little-endian bytes, a ``float`` as the 8 bytes
of a double and a ``str`` as its UTF-8 bytes: exactly Iceberg's single-value serialization of
``long``, ``double`` and ``string``. For those types Wharf's sketches must be byte-identical to the
library's; for every type the library must read them back with the right estimate.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import numpy as np
import pyarrow as pa
import pytest
from pyiceberg import types as it

from wharf.tables import theta
from wharf.tables.statistics import value_hashes

datasketches = pytest.importorskip("datasketches")


def library_sketch(values: list[object]) -> bytes:
    sketch = datasketches.update_theta_sketch()
    for v in values:
        sketch.update(v)
    return bytes(sketch.compact().serialize())


def test_seed_hash_is_datasketches_default() -> None:
    assert theta.seed_hash() == datasketches.update_theta_sketch().get_seed_hash()


@pytest.mark.parametrize("count", [0, 1, 3, 100, 4000])
def test_long_sketches_match_the_library_byte_for_byte(count: int) -> None:
    values = [i * 7919 - 5000 for i in range(count)]
    ours = theta.compact_sketch(value_hashes(it.LongType(), pa.array(values, pa.int64())))
    assert ours == library_sketch(values)


def test_string_and_double_sketches_match_the_library_byte_for_byte() -> None:
    # lengths 0..40 cover MurmurHash3's empty input (ignored), tails and 16-byte blocks; multi-byte UTF-8 too
    strings = ["x" * i for i in range(41)] + ["héllo", "日本語テキスト", "a"]
    assert theta.compact_sketch(value_hashes(it.StringType(), pa.array(strings))) == library_sketch(strings)
    doubles = [0.5, -3.25, 1e300, 2.0, 0.5]
    assert theta.compact_sketch(value_hashes(it.DoubleType(), pa.array(doubles))) == library_sketch(doubles)


def test_estimation_mode_sketches_read_back_close_to_the_truth() -> None:
    values = pa.array(np.arange(200_000, dtype=np.int64))
    sketch = datasketches.compact_theta_sketch.deserialize(theta.compact_sketch(value_hashes(it.LongType(), values)))
    assert sketch.is_estimation_mode and sketch.num_retained == 4096
    assert abs(sketch.get_estimate() - 200_000) / 200_000 < 0.05  # ~1.6% standard error at k = 4096
    assert sketch.get_lower_bound(3) <= 200_000 <= sketch.get_upper_bound(3)


@pytest.mark.parametrize(
    ("field_type", "values"),
    [
        (it.BooleanType(), pa.array([True, False, None, True])),
        (it.IntegerType(), pa.array([1, 2, 3, None], pa.int32())),
        (it.FloatType(), pa.array([1.5, 2.5], pa.float32())),
        (it.DateType(), pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)])),
        (it.TimeType(), pa.array([dt.time(1, 2, 3), dt.time(4, 5, 6)], pa.time64("us"))),
        (it.TimestampType(), pa.array([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], pa.timestamp("us"))),
        (it.TimestamptzType(), pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us", tz="UTC"))),
        (it.DecimalType(10, 2), pa.array([decimal.Decimal("1.50"), decimal.Decimal("-2.25")], pa.decimal128(10, 2))),
        (it.UUIDType(), pa.array([str(uuid.uuid4()), str(uuid.uuid4())])),
        (it.BinaryType(), pa.array([b"\x00\x01", b"\xff"], pa.binary())),
        (it.FixedType(2), pa.array([b"ab", b"cd"], pa.binary(2))),
    ],
)
def test_every_primitive_type_gives_a_sketch_the_library_reads(field_type: it.PrimitiveType, values: pa.Array) -> None:
    sketch = datasketches.compact_theta_sketch.deserialize(theta.compact_sketch(value_hashes(field_type, values)))
    assert sketch.get_estimate() == len({v for v in values.to_pylist() if v is not None})


def test_ints_hash_iceberg_four_byte_serialization() -> None:
    """An ``int`` is 4 little-endian bytes in Iceberg, so its hash differs from the same value as a ``long``."""
    as_int = value_hashes(it.IntegerType(), pa.array([42], pa.int32()))
    as_long = value_hashes(it.LongType(), pa.array([42], pa.int64()))
    assert as_int.tolist() == theta.theta_hashes([(42).to_bytes(4, "little")]).tolist()
    assert as_int.tolist() != as_long.tolist()
