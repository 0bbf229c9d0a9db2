"""Containment: no name and no path property can make Wharf write a file outside the lake's allowed roots.

Every test runs the attempt inside a directory tree and asserts that afterwards not a single
file or directory exists outside the lake (and outside registered locations).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

import wharf
from wharf.errors import AccessDenied, InvalidArgument, WharfError
from wharf.identifiers import MAX_NAME_BYTES

pytestmark = pytest.mark.metadata_backends  # SQLite and PostgreSQL metadata (tests/conftest.py)

BAD_NAMES = [
    "..",
    ".",
    "../escape",
    "a/b",
    "..\\escape",
    "nul\x00byte",
    "new\nline",
    "tab\there",
    "",
    "   ",
    "x" * (MAX_NAME_BYTES + 1),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[wharf.Lakehouse, Path]]:
    """A lake in ``tmp_path/area/lake``; yields it and the area, whose other contents are checked after."""
    area = tmp_path / "area"
    with wharf.connect(area / "lake", user="owner") as lake:
        lake.sql("CREATE TABLE t (id BIGINT)")
        yield lake, area


def _outside(area: Path, *allowed: Path) -> list[Path]:
    roots = [area / "lake", *allowed]
    return [p for p in area.rglob("*") if not any(p == r or r in p.parents or p in r.parents for r in roots)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.mark.metadata_backends("sqlite")  # names are checked before the catalog; the API test covers both
@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
@pytest.mark.parametrize(
    "statement",
    [
        "CREATE SCHEMA {q}",
        "CREATE TABLE {q} (id BIGINT)",
        "CREATE TABLE default.{q} AS SELECT 1 AS id",
        "CREATE TABLE {q}.t (id BIGINT)",
        "ALTER TABLE t RENAME TO {q}",
    ],
)
def test_bad_names_are_refused_in_every_position(sandbox: tuple[wharf.Lakehouse, Path], statement: str, name: str) -> None:
    lake, area = sandbox
    with pytest.raises(WharfError) as info:
        lake.sql(statement.format(q=_quote(name)))
    assert not isinstance(info.value, wharf.errors.InternalError)
    assert _outside(area) == []
    assert lake.tables() == ["default.t"]


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "x\x00"])
def test_bad_names_are_refused_by_every_api(sandbox: tuple[wharf.Lakehouse, Path], name: str) -> None:
    lake, area = sandbox
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    with pytest.raises(WharfError):  # a dotted name string may split differently: refused either way
        lake.create_table(f"default.{name}", pa.table({"id": [1]}))
    attempts = [
        lambda: lake.catalog.create_table(("default", name), schema),
        lambda: lake.catalog.create_namespace(name),
        lambda: lake.catalog.rename_table(("default", "t"), ("default", name)),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidArgument, match="not a valid"):
            attempt()
    assert _outside(area) == []


def test_names_with_spaces_dots_and_unicode_are_fine(sandbox: tuple[wharf.Lakehouse, Path]) -> None:
    lake, area = sandbox
    lake.sql('CREATE SCHEMA "sales 2025"')
    lake.sql('CREATE TABLE "sales 2025"."v1.2 café" AS SELECT 1 AS id')
    assert lake.sql('SELECT id FROM "sales 2025"."v1.2 café"').scalar() == 1
    assert _outside(area) == []


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE x (id BIGINT) LOCATION '{outside}'",
        "CREATE TABLE x (id BIGINT) LOCATION '{lake}/warehouse/../../elsewhere'",
        "CREATE TABLE x (id BIGINT) TBLPROPERTIES ('write.data.path' = '{outside}')",
        "CREATE TABLE x (id BIGINT) TBLPROPERTIES ('write.metadata.path' = '{outside}')",
        "CREATE TABLE x TBLPROPERTIES ('write.data.path' = '{outside}') AS SELECT 1 AS id",
        "ALTER TABLE t SET TBLPROPERTIES ('write.data.path' = '{outside}')",
        "ALTER TABLE t SET TBLPROPERTIES ('write.object-storage.path' = '{outside}')",
        "ALTER TABLE t SET TBLPROPERTIES ('write.metadata.path' = '{lake}/warehouse/../..')",
    ],
)
def test_path_properties_and_locations_stay_inside(sandbox: tuple[wharf.Lakehouse, Path], statement: str) -> None:
    lake, area = sandbox
    outside = area / "elsewhere"
    with pytest.raises(AccessDenied, match="outside the lake"):
        lake.sql(statement.format(outside=outside, lake=lake.path.resolve()))
    lake.sql("INSERT INTO t VALUES (1)")  # the table still writes where it should
    assert _outside(area) == []


def test_relative_paths_are_refused(sandbox: tuple[wharf.Lakehouse, Path]) -> None:
    lake, area = sandbox
    with pytest.raises(InvalidArgument, match="relative path"):
        lake.sql("ALTER TABLE t SET TBLPROPERTIES ('write.data.path' = 'data')")


def test_clients_of_the_catalog_are_contained(sandbox: tuple[wharf.Lakehouse, Path]) -> None:
    lake, area = sandbox
    table = lake.catalog.load_table("default.t")
    with pytest.raises(AccessDenied):
        table.transaction().set_properties({"write.data.path": str(area / "elsewhere")}).commit_transaction()
    from pyiceberg.table.update import SetLocationUpdate

    from wharf import pyiceberg_compat as compat

    moving = table.transaction()  # PyIceberg has no public API for it; REST clients send this update
    compat.stage(moving, (SetLocationUpdate(location=str(area / "elsewhere")),))
    with pytest.raises(AccessDenied):
        moving.commit_transaction()
    with pytest.raises(AccessDenied):
        lake.catalog.create_table(("default", "y"), table.schema(), location=str(area / "elsewhere"))
    with pytest.raises(AccessDenied):
        lake.catalog.create_namespace("ns", {"location": str(area / "elsewhere")})
    assert _outside(area) == []


def test_the_owner_registers_an_external_location(sandbox: tuple[wharf.Lakehouse, Path]) -> None:
    lake, area = sandbox
    external = area / "external"
    external.mkdir()
    analyst = lake.session(user="analyst")
    with pytest.raises(AccessDenied, match="register"):
        analyst.register_location(str(external))
    assert lake.register_location(str(external)) == f"file://{external.resolve()}"
    assert lake.register_location(str(external) + "/") == f"file://{external.resolve()}"  # idempotent
    assert lake.locations() == [f"file://{external.resolve()}"]
    lake.sql(f"CREATE TABLE ext (id BIGINT) LOCATION '{external}/ext'")
    lake.sql("INSERT INTO ext VALUES (1), (2)")
    lake.sql("GRANT SELECT ON TABLE ext TO USER analyst")
    assert analyst.sql("SELECT count(*) FROM ext").scalar() == 2  # the governed engine may read it now
    assert any(p.suffix == ".parquet" for p in (external / "ext").rglob("*"))
    with pytest.raises(AccessDenied):
        lake.sql(f"CREATE TABLE nope (id BIGINT) LOCATION '{area}/external2'")
    assert _outside(area, external) == []
