"""Map-containing columns are cast child by child (pyarrow 25 aborts the process on a map key cast)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import wharf
from wharf.tables.arrow_cast import cast_column

SOURCE = pa.struct(
    [
        pa.field("m", pa.map_(pa.string(), pa.int32())),
        pa.field("ms", pa.list_(pa.map_(pa.string(), pa.int64()))),
        pa.field("n", pa.int32()),
    ]
)
TARGET = pa.struct(
    [
        pa.field("m", pa.map_(pa.large_string(), pa.int64())),
        pa.field("ms", pa.large_list(pa.map_(pa.large_string(), pa.int64()))),
        pa.field("n", pa.int64()),
    ]
)
ROWS = [
    {"m": [("a", 1), ("b", None)], "ms": [[("x", 1)], None, []], "n": 1},
    None,
    {"m": None, "ms": None, "n": None},
    {"m": [], "ms": [[("y", 2), ("z", 3)]], "n": 4},
]


def test_nested_maps_cast_like_pyarrow_with_nulls_and_slices() -> None:
    whole = pa.array(ROWS, type=SOURCE)
    column = pa.chunked_array([whole.slice(0, 1), whole.slice(1)])  # a sliced chunk has an offset
    cast = cast_column(column, TARGET)
    assert cast.type == TARGET
    assert cast.to_pylist() == column.to_pylist()
    assert cast.null_count == 1


def test_a_map_value_that_does_not_fit_is_an_arrow_error_not_an_abort() -> None:
    column = pa.chunked_array([pa.array([[("k", 2**40)]], type=pa.map_(pa.string(), pa.int64()))])
    with pytest.raises(pa.ArrowInvalid):
        cast_column(column, pa.map_(pa.large_string(), pa.int32()))


def test_insert_of_maps_nested_in_structs_and_lists(tmp_path: Path) -> None:
    with wharf.connect(tmp_path / "lake") as lake:
        lake.sql("CREATE TABLE t (id INT, s STRUCT(m MAP(VARCHAR, INT), n INT), l MAP(VARCHAR, BIGINT)[])")
        lake.sql("INSERT INTO t VALUES (1, {'m': MAP {'k': 1}, 'n': 2}, [MAP {'a': 5}]), (2, NULL, NULL)")
        rows = lake.sql("SELECT id, s.m['k'], s.n, l[1]['a'] FROM t ORDER BY id").fetchall()
    assert rows == [(1, 1, 2, 5), (2, None, None, None)]
