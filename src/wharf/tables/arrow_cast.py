"""Casting Arrow columns to a table's Arrow types, working around map casts that abort pyarrow 25.

pyarrow 25 aborts the whole process (a failed ``CHECK`` in ``array_nested.cc``, not an exception)
when it casts a map whose key type changes, e.g. DuckDB's ``map<string, int32>`` to Iceberg's
``map<large_string, int32>``. Wharf declares ``pyarrow>=17`` and Daft pins ``pyarrow<26``, so users
meet that version. Maps, and lists and structs that contain maps, are therefore rebuilt here from
their children, each child cast on its own; every other type takes pyarrow's own ``cast``.
"""

from __future__ import annotations

import pyarrow as pa


def cast_column(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """``column`` cast to ``target`` with pyarrow's safe cast; raises ``ArrowInvalid`` as ``cast`` does."""
    if not _contains_map(target):
        return column.cast(target, safe=True)
    return pa.chunked_array([_cast_array(chunk, target) for chunk in column.chunks], type=target)


def _contains_map(t: pa.DataType) -> bool:
    if pa.types.is_map(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _contains_map(t.value_type)
    if pa.types.is_struct(t):
        return any(_contains_map(t.field(i).type) for i in range(t.num_fields))
    return False


def _cast_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type.equals(target):
        return array
    if not _contains_map(target):
        return array.cast(target, safe=True)
    if array.offset:
        array = pa.concat_arrays([array])  # from_arrays refuses a null mask over sliced offsets
    mask = array.is_null() if array.null_count else None
    if pa.types.is_map(target) and pa.types.is_map(array.type):
        return pa.MapArray.from_arrays(
            array.offsets,
            _cast_array(array.keys, target.key_type),
            _cast_array(array.items, target.item_type),
            type=target,
            mask=mask,
        )
    if (pa.types.is_list(target) or pa.types.is_large_list(target)) and (
        pa.types.is_list(array.type) or pa.types.is_large_list(array.type)
    ):
        list_class = pa.LargeListArray if pa.types.is_large_list(target) else pa.ListArray
        offsets = array.offsets.cast(pa.int64() if pa.types.is_large_list(target) else pa.int32())
        return list_class.from_arrays(offsets, _cast_array(array.values, target.value_type), type=target, mask=mask)
    if pa.types.is_struct(target) and pa.types.is_struct(array.type):
        children = []
        for i in range(target.num_fields):
            name = target.field(i).name
            source = array.type.get_field_index(name)
            if source < 0:
                raise pa.ArrowInvalid(f"struct field '{name}' is missing from {array.type}")
            children.append(_cast_array(array.field(source), target.field(i).type))
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    raise pa.ArrowNotImplementedError(f"cannot cast {array.type} to {target}")
