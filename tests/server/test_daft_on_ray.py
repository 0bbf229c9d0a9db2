"""Scale-out on an existing distributed engine: Daft on a local Ray cluster, through Wharf's REST catalog.

Daft (Ray runner) reads a Wharf table through PyIceberg's ``RestCatalog``, aggregates it in
parallel on the session's Ray cluster, and writes the result back as a new Iceberg table through
the same catalog (``tests/server/daft_job.py``, in a process of its own); Wharf's SQL then reads
what Daft wrote. The expected numbers are computed here, in Python, from the formula the rows were
made with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests import servers
from tests.server.conftest import RunningServer

CITIES = ("Oslo", "Lima", "Pune", "Kyiv", "Rome")
BATCHES, PER_BATCH = 4, 500
ROOT = Path(__file__).resolve().parents[2]


def row(i: int) -> tuple[int, str, int]:
    return i, CITIES[(i * 7) % len(CITIES)], (i * 37) % 1000


def test_daft_on_ray_reads_aggregates_and_writes_back_through_the_rest_catalog(
    server: RunningServer, namespace: str, ray_address: str
) -> None:
    lake = server.lake
    lake.sql(f"CREATE TABLE {namespace}.sales (id BIGINT, city VARCHAR, cents BIGINT)")
    for batch in range(BATCHES):  # one data file each: Daft plans a scan task per file
        values = ", ".join(f"({i}, '{c}', {v})" for i, c, v in map(row, range(batch * PER_BATCH, (batch + 1) * PER_BATCH)))
        lake.sql(f"INSERT INTO {namespace}.sales VALUES {values}")

    job = subprocess.run(
        [sys.executable, "-m", "tests.server.daft_job", server.url, namespace, ray_address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))},
    )
    assert job.returncode == 0, job.stderr[-5000:]
    seen = json.loads(job.stdout.strip().splitlines()[-1])
    print("daft job timings (s):", seen["seconds"])
    # Read in parallel (a partition per data file) and computed on the Ray cluster: in its worker
    # processes, none of them the driver.
    assert seen["partitions"] == BATCHES
    assert seen["worker_pids"] and seen["driver_pid"] not in seen["worker_pids"]
    assert seen["worker_sessions"] == [servers.ray_session()]

    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, city, cents in map(row, range(BATCHES * PER_BATCH)):
        expected[city][0] += cents
        expected[city][1] += 1
    assert seen["written_rows"] == len(expected)
    assert lake.sql(f"SELECT city, total_cents, orders FROM {namespace}.sales_by_city ORDER BY city").fetchall() == [
        (city, total, orders) for city, (total, orders) in sorted(expected.items())
    ]
    # Daft's write is a Wharf commit like any other REST commit.
    assert lake.sql(f"SELECT summary['wharf.user'] FROM {namespace}.sales_by_city.snapshots").fetchall() == [("owner",)]
