"""A Daft job on the session's Ray cluster, run as its own process by ``test_daft_on_ray.py``.

Daft's runner is chosen once per process and cannot be changed, and a Ray driver keeps state in
its process: a job in a process of its own leaves the pytest worker as it found it (other tests,
and the docs, may run Daft on its native runner there).

``python -m tests.server.daft_job <catalog uri> <namespace> <ray address>`` reads
``<namespace>.sales`` through the REST catalog, totals it per city on Ray, writes the totals to a
new table ``<namespace>.sales_by_city`` through the same catalog, and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

import daft
from pyiceberg.catalog import load_catalog


@daft.func
def where_it_ran(city: str) -> str:
    """The process a row was computed in: its id and its session's (a Ray worker's, on the cluster)."""
    return f"{os.getpid()}:{os.getsid(0)}"


def main(uri: str, namespace: str, ray_address: str) -> dict[str, object]:
    started, marks = time.monotonic(), dict[str, float]()
    daft.set_runner_ray(address=ray_address)
    marks["connected"] = time.monotonic()
    catalog = load_catalog("wharf", type="rest", uri=uri)
    # Every data file its own scan task (Daft merges small files into one otherwise): a partition each.
    with daft.execution_config_ctx(scan_tasks_min_size_bytes=0, scan_tasks_max_size_bytes=1):
        df = daft.read_iceberg(catalog.load_table(f"{namespace}.sales"))
        partitions = df.num_partitions()
        df = df.with_column("pid", where_it_ran(df["city"]))
        totals = (
            df.groupby("city")
            .agg(daft.col("cents").sum().alias("total_cents"), daft.col("id").count().alias("orders"), daft.col("pid").max())
            .sort("city")
            .collect()
        )
    marks["aggregated"] = time.monotonic()
    ran = {tuple(map(int, where.split(":"))) for where in totals.to_pydict()["pid"]}
    by_city = totals.exclude("pid")
    target = catalog.create_table(f"{namespace}.sales_by_city", schema=by_city.schema().to_pyarrow_schema())
    written = by_city.write_iceberg(target, mode="append").to_pydict()
    marks["written"] = time.monotonic()
    return {
        "partitions": partitions,
        "worker_pids": sorted(pid for pid, _ in ran),
        "worker_sessions": sorted({sid for _, sid in ran}),
        "driver_pid": os.getpid(),
        "written_rows": sum(written["rows"]),
        "seconds": {name: round(at - started, 2) for name, at in marks.items()},
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
