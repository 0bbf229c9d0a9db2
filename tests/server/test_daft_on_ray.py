"""Scale-out on an existing distributed engine: Daft on a local Ray cluster, through Wharf's REST catalog.

Daft (Ray runner) reads a Wharf table through PyIceberg's ``RestCatalog``, aggregates it in
parallel on the session's Ray cluster, and writes the result back as a new Iceberg table through
the same catalog; Wharf's SQL then reads what Daft wrote. The expected numbers are computed here,
in Python, from the formula the rows were made with.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator

import daft
import pytest
import ray

from tests import servers
from tests.server.conftest import RunningServer

CITIES = ("Oslo", "Lima", "Pune", "Kyiv", "Rome")
BATCHES, PER_BATCH = 4, 500


@pytest.fixture(scope="module")
def daft_on_ray(ray_address: str) -> Iterator[str]:
    """Daft's runner set to the session's Ray cluster; this process is a Ray driver for the module."""
    daft.set_runner_ray(address=ray_address)
    try:
        yield ray_address
    finally:
        ray.shutdown()  # disconnect this driver; the cluster stops with the session


def row(i: int) -> tuple[int, str, int]:
    return i, CITIES[(i * 7) % len(CITIES)], (i * 37) % 1000


@daft.func
def where_it_ran(city: str) -> int:
    """The id of the process a row was computed in (a Ray worker's, if it ran on the cluster)."""
    return os.getpid()


def test_daft_on_ray_reads_aggregates_and_writes_back_through_the_rest_catalog(
    server: RunningServer, namespace: str, daft_on_ray: str
) -> None:
    lake = server.lake
    lake.sql(f"CREATE TABLE {namespace}.sales (id BIGINT, city VARCHAR, cents BIGINT)")
    for batch in range(BATCHES):  # one data file each: Daft plans a scan task per file
        values = ", ".join(f"({i}, '{c}', {v})" for i, c, v in map(row, range(batch * PER_BATCH, (batch + 1) * PER_BATCH)))
        lake.sql(f"INSERT INTO {namespace}.sales VALUES {values}")

    catalog = server.catalog()
    source = catalog.load_table(f"{namespace}.sales")
    with daft.execution_config_ctx(scan_tasks_min_size_bytes=0, scan_tasks_max_size_bytes=1):
        df = daft.read_iceberg(source)
        assert df.num_partitions() == BATCHES  # read in parallel: a partition per data file
        df = df.with_column("pid", where_it_ran(df["city"]))
        totals = (
            df.groupby("city")
            .agg(daft.col("cents").sum().alias("total_cents"), daft.col("id").count().alias("orders"), daft.col("pid").max())
            .sort("city")
            .collect()
        )
    result = totals.to_pydict()
    # It ran on the Ray cluster: in its worker processes, not in this one.
    pids = set(result["pid"])
    assert os.getpid() not in pids
    assert all(os.getsid(pid) == servers.ray_session() for pid in pids)

    # Back into the lake, as a new Iceberg table, through the same REST catalog.
    by_city = totals.exclude("pid")
    target = catalog.create_table(f"{namespace}.sales_by_city", schema=by_city.schema().to_pyarrow_schema())
    by_city.write_iceberg(target, mode="append")

    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, city, cents in map(row, range(BATCHES * PER_BATCH)):
        expected[city][0] += cents
        expected[city][1] += 1
    assert lake.sql(f"SELECT city, total_cents, orders FROM {namespace}.sales_by_city ORDER BY city").fetchall() == [
        (city, total, orders) for city, (total, orders) in sorted(expected.items())
    ]
    # A Wharf commit like any other REST commit.
    assert lake.sql(f"SELECT summary['wharf.user'] FROM {namespace}.sales_by_city.snapshots").fetchall() == [("owner",)]
