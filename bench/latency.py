"""``latency``: the fixed cost around short statements and small commits (issue 14).

Cases, each as p50 (the table's median) and p99 (column) over many calls:

(a) ``SELECT 1`` through ``lake.sql`` vs the same through DuckDB directly, and a trivial query on
    an Iceberg table vs DuckDB on that table's Parquet files;
(b) a three-table join of small tables: the same text repeated (the plan cache), a new text
    each call (a new shape: parse, resolve, qualify, plan, generate), and the same text with new
    values in its filters (new literals: one compiled form, the filtered reference re-planned);
    the peer runs the same SQL on the tables' files. ``overhead`` = Wharf p50 − DuckDB p50: the
    statement's fixed cost;
(c) small appends (one row, one file) at 10, 1,000 and 10,000 snapshots: ``Table.append`` vs
    PyIceberg's ``append`` (SQL catalog on SQLite), plus the format's floor: parsing and writing
    that table's metadata JSON. The long histories are made once, fast: snapshots of a short
    table are cloned (each lists the same manifest list) into a metadata file that is registered
    as a new table; appends then go through the normal commit path;
(d) point lookups: ``SELECT * FROM t WHERE id = ?`` with a random key on a table sorted by the
    key (one file per key range) vs DuckDB reading the one file that holds the key.

Both systems run DuckDB with one thread (see ``run``); CPU time per call is reported beside
wall time. ``--scale`` multiplies the point-lookup table (10M rows) and the long histories; ``--quick``
shrinks everything for the smoke test.
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

import wharf
from bench.data import duckdb_connection, run_dir
from bench.harness import Case, CaseResult, Options, Peer, Report, Runner, Target, log, measure, same_rows

PEERS = [
    Peer("wharf", "system", "Wharf lake.sql / Table.append"),
    Peer("duckdb", "limit", "DuckDB on the same Parquet files"),
    Peer("pyiceberg", "peer", "PyIceberg append (SQL catalog)"),
    Peer("floor", "limit", "parse + write the table's metadata JSON"),
]
_counter = itertools.count()


def sizes(opts: Options) -> dict[str, Any]:
    scale = opts.scale if opts.scale is not None else (0.001 if opts.quick else 1.0)
    quick = opts.quick
    return {
        "calls": 30 if quick else 400,  # timed calls per query case
        "appends": 5 if quick else 40,  # timed appends per history length
        "histories": [10, 100, 300] if quick else [10, max(20, int(1000 * min(scale, 1))), max(20, int(10_000 * scale))],
        "pk_rows": max(10_000, int(10_000_000 * scale)),
        "pk_files": 10,
        "small_rows": 100,
    }


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


# CPU seconds (this process, all threads) of each call, by system: on a machine shared with other
# work, wall time includes waiting for a core; CPU time is what the statement itself costs.
_cpu: dict[str, list[float]] = {}


def _cpu_timed(system: str, fn: Any) -> Any:
    def run() -> Any:
        t0 = time.process_time()
        try:
            return fn()
        finally:
            _cpu.setdefault(system, []).append(time.process_time() - t0)

    return run


def _measure(case: Case, opts: Options, **kwargs: Any) -> CaseResult:
    _cpu.clear()
    for runner in case.runners:
        runner.run = _cpu_timed(runner.system, runner.run)
    result = measure(case, opts, **kwargs)
    for system, res in result.systems.items():
        if res.samples_s:
            res.extra["p50_ms"] = round(statistics.median(res.samples_s) * 1000, 3)
            res.extra["p99_ms"] = round(_p99(res.samples_s) * 1000, 3)
        cpu = _cpu.get(system, [])[-len(res.samples_s) :] if res.samples_s else []
        if cpu:
            res.extra["cpu_p50_ms"] = round(statistics.median(cpu) * 1000, 3)
    w, d = result.systems.get("wharf"), result.systems.get("duckdb")
    if w is not None and d is not None and w.median_s is not None and d.median_s is not None:
        w.extra["overhead_ms"] = round((w.median_s - d.median_s) * 1000, 3)
        if "cpu_p50_ms" in w.extra and "cpu_p50_ms" in d.extra:
            w.extra["cpu_overhead_ms"] = round(w.extra["cpu_p50_ms"] - d.extra["cpu_p50_ms"], 3)
    return result


def _files(lake: wharf.Lakehouse, name: str) -> list[str]:
    from wharf.tables.scan import local_path

    table = lake.table(name).iceberg
    return [f.path for f in lake.planner.plan(table, table.metadata.current_snapshot_id).files] or [
        local_path(table.metadata.location)
    ]


def _read_parquet(paths: list[str]) -> str:
    return "read_parquet([" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "])"


def _rows(x: Any) -> pa.Table:
    return x if isinstance(x, pa.Table) else pa.table({"v": [tuple(r) for r in x]})


def run(opts: Options) -> Report:
    size = sizes(opts)
    calls = opts.reps or size["calls"]
    warmup = opts.warmup if opts.warmup is not None else 20
    budget = opts.budget_s or (20.0 if opts.quick else 60.0)
    work = run_dir(opts.data_dir, "latency")
    report = Report(
        "latency",
        "latency: fixed cost of short statements and small commits",
        opts,
        PEERS,
        params={**size, "calls": calls, "warmup": warmup},
    )
    report.extra_columns = [
        ("wharf p99", "wharf", "p99_ms"),
        ("duckdb p99", "duckdb", "p99_ms"),
        ("overhead ms", "wharf", "overhead_ms"),
        ("wharf cpu", "wharf", "cpu_p50_ms"),
        ("duckdb cpu", "duckdb", "cpu_p50_ms"),
        ("cpu overhead", "wharf", "cpu_overhead_ms"),
        ("files", "wharf", "files"),
    ]
    # One DuckDB thread for both systems: these statements are tiny (a server runs many at once),
    # and on a busy 2-core machine thread hand-offs inside DuckDB would swamp what is measured.
    previous = os.environ.get("WHARF_THREADS")
    os.environ["WHARF_THREADS"] = "1"
    try:
        lake = wharf.connect(work / "lake", user="bench")
    finally:
        if previous is None:
            os.environ.pop("WHARF_THREADS", None)
        else:
            os.environ["WHARF_THREADS"] = previous
    con = duckdb_connection()
    con.execute("SET threads = 1")
    try:
        _queries(report, lake, con, size, opts, calls, warmup, budget)
        _point_lookups(report, lake, con, size, opts, calls, warmup, budget)
        _appends(report, lake, work, size, opts, warmup, budget)
    finally:
        con.close()
        lake.close()
    add_targets(report)
    return report


# --- (a), (b): queries ------------------------------------------------------------------------


def _queries(
    report: Report, lake: wharf.Lakehouse, con: Any, size: dict[str, Any], opts: Options, calls: int, warmup: int, budget: float
) -> None:
    n = size["small_rows"]
    for name, column in (("a", "x"), ("b", "y"), ("c", "z")):
        lake.sql(f"CREATE TABLE {name} (id BIGINT, {column} VARCHAR)")
        lake.sql(f"INSERT INTO {name} SELECT range, 'v' || range FROM range({n})")
    files = {t: _read_parquet(_files(lake, t)) for t in "abc"}

    def case(label: str, wharf_sql: Any, duck_sql: Any) -> None:
        def run_wharf() -> Any:
            return lake.sql(wharf_sql()).to_arrow()

        def run_duck() -> Any:
            return con.execute(duck_sql()).to_arrow_table()

        c = Case(
            label,
            [Runner("wharf", run_wharf), Runner("duckdb", run_duck)],
            compare=lambda a, b: same_rows(_rows(a), _rows(b)),
        )
        log(f"latency: {label}")
        report.add(_measure(c, opts, warmup=warmup, reps=calls, budget_s=budget))

    case("SELECT 1", lambda: "SELECT 1", lambda: "SELECT 1")
    case(
        "trivial query on an Iceberg table",
        lambda: "SELECT count(*) FROM a WHERE id < 10",
        lambda: f"SELECT count(*) FROM {files['a']} WHERE id < 10",
    )
    join = (
        "SELECT a.x, b.y, c.z FROM {a} AS a JOIN {b} AS b ON a.id = b.id JOIN {c} AS c ON c.id = b.id "
        "WHERE a.id BETWEEN {lo} AND {lo} + 5 AND {call} > 0 ORDER BY a.x"
    )
    case(
        "3-table join, repeated",
        lambda: join.format(a="a", b="b", c="c", lo=7, call=1),
        lambda: join.format(a=files["a"], b=files["b"], c=files["c"], lo=7, call=1),
    )
    # A new shape: the call number is an output column, so every text is one never compiled
    # before (a select-list literal is never taken as a parameter: wharf.sql.literals).
    new_shape = (
        "SELECT a.x, b.y, c.z, {call} AS k FROM {a} AS a JOIN {b} AS b ON a.id = b.id JOIN {c} AS c ON c.id = b.id "
        "WHERE a.id BETWEEN {lo} AND {lo} + 5 ORDER BY a.x"
    )
    # Each system counts its own calls: the i-th call of both reads the same text, so the last
    # answers of the two compare.
    calls_of = {"wharf": itertools.count(1000), "duckdb": itertools.count(1000)}

    def new_wharf() -> str:
        call = next(calls_of["wharf"])  # in the text: never a cached statement
        return new_shape.format(a="a", b="b", c="c", lo=call % n, call=call)

    def new_duck() -> str:
        call = next(calls_of["duckdb"])
        return new_shape.format(a=files["a"], b=files["b"], c=files["c"], lo=call % n, call=call)

    case("3-table join, new shape", new_wharf, new_duck)
    # The same statement with other values in its filters (a dashboard's next click): the
    # literals become parameters of one compiled form, the reference they filter is re-planned.
    literals_of = {"wharf": itertools.count(1000), "duckdb": itertools.count(1000)}

    def literals_wharf() -> str:
        call = next(literals_of["wharf"])
        return join.format(a="a", b="b", c="c", lo=call % n, call=call)

    def literals_duck() -> str:
        call = next(literals_of["duckdb"])
        return join.format(a=files["a"], b=files["b"], c=files["c"], lo=call % n, call=call)

    case("3-table join, new literals", literals_wharf, literals_duck)


# --- (d): point lookups -----------------------------------------------------------------------


def _point_lookups(
    report: Report, lake: wharf.Lakehouse, con: Any, size: dict[str, Any], opts: Options, calls: int, warmup: int, budget: float
) -> None:
    rows, parts = size["pk_rows"], size["pk_files"]
    log(f"latency: building the {rows:,}-row key table ({parts} files, sorted by key)")
    lake.sql("CREATE TABLE pk (id BIGINT, name VARCHAR, amount DOUBLE)")
    each = rows // parts
    t0 = time.perf_counter()
    for i in range(parts):
        lake.sql(
            f"INSERT INTO pk SELECT range AS id, 'name-' || range AS name, range * 0.5 AS amount "
            f"FROM range({i * each}, {(i + 1) * each}) ORDER BY id"
        )
    log(f"latency: key table built in {time.perf_counter() - t0:.1f} s")
    table = lake.table("pk").iceberg
    plan = lake.planner.plan(table, table.metadata.current_snapshot_id)
    ranges = []
    for f in plan.files:
        lower = f.data_file.lower_bounds or {}
        upper = f.data_file.upper_bounds or {}
        from pyiceberg.conversions import from_bytes
        from pyiceberg.types import LongType

        ranges.append((from_bytes(LongType(), lower[1]), from_bytes(LongType(), upper[1]), f.path))
    rng = random.Random(14)
    keys = [rng.randrange(rows) for _ in range(calls + warmup + 10)]
    state = {"w": 0, "d": 0}
    files_read: dict[str, int] = {}

    def on_statement(event: Any) -> None:
        for read in event.inputs:
            if read.table.endswith(".pk") and read.files is not None:
                files_read["files"] = read.files

    unsubscribe = lake.events.subscribe("on_statement", on_statement)

    def wharf_lookup() -> Any:
        key = keys[state["w"] % len(keys)]
        state["w"] += 1
        return lake.sql("SELECT * FROM pk WHERE id = ?", [key]).to_arrow()

    def duck_lookup() -> Any:
        key = keys[state["d"] % len(keys)]
        state["d"] += 1
        path = next(p for lo, hi, p in ranges if lo <= key <= hi)
        return con.execute(f"SELECT * FROM {_read_parquet([path])} WHERE id = ?", [key]).to_arrow_table()

    c = Case(
        f"point lookup, {rows:,} rows / {len(ranges)} files",
        [
            Runner("wharf", wharf_lookup, extra=lambda _a: dict(files_read)),
            Runner("duckdb", duck_lookup, extra=lambda _a: {"files": 1}),
        ],
        params={"rows": rows, "files": len(ranges)},
        compare=lambda a, b: a.num_rows == b.num_rows == 1,
    )
    log("latency: point lookups")
    report.add(_measure(c, opts, warmup=warmup, reps=calls, budget_s=budget))
    unsubscribe()


# --- (c): small appends at several history lengths ----------------------------------------------


def _clone_history(catalog: Any, template: tuple[str, str], target: tuple[str, str], snapshots: int) -> None:
    """Register ``target``: ``template``'s metadata with its last snapshot cloned into a chain of ``snapshots``."""
    from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRef, SnapshotRefType
    from pyiceberg.table.snapshots import SnapshotLogEntry

    from wharf import pyiceberg_compat as compat

    base = catalog.load_table(template)
    md = base.metadata
    last = md.current_snapshot()
    assert last is not None
    chain = []
    parent = None
    start = last.timestamp_ms - snapshots * 1000
    first_id = 10**15 + next(_counter) * 10**7
    for i in range(snapshots):
        sid = first_id + i
        chain.append(
            last.model_copy(
                update={
                    "snapshot_id": sid,
                    "parent_snapshot_id": parent,
                    "sequence_number": i + 1,
                    "timestamp_ms": start + i * 1000,
                }
            )
        )
        parent = sid
    head = chain[-1].snapshot_id
    metadata = md.model_copy(
        update={
            "snapshots": chain,
            "snapshot_log": [SnapshotLogEntry(snapshot_id=s.snapshot_id, timestamp_ms=s.timestamp_ms) for s in chain],
            "refs": {MAIN_BRANCH: SnapshotRef(snapshot_id=head, snapshot_ref_type=SnapshotRefType.BRANCH)},
            "current_snapshot_id": head,
            "last_sequence_number": snapshots,
            "metadata_log": [],
        }
    )
    path = f"{md.location}/metadata/history-{snapshots}-{next(_counter)}.metadata.json"
    compat.write_metadata_file(metadata, base.io, path)
    catalog.register_table(target, path)


def _metadata_floor(table: Any) -> float:
    """Seconds to parse the table's current metadata JSON and write it again (the format's own cost)."""
    from pyiceberg.serializers import FromInputFile, ToOutputFile

    location = table.metadata_location
    io = table.io
    t0 = time.perf_counter()
    metadata = FromInputFile.table_metadata(io.new_input(location))
    ToOutputFile.table_metadata(metadata, io.new_output(f"{location}.floor-{next(_counter)}.json"))
    return time.perf_counter() - t0


def _appends(
    report: Report, lake: wharf.Lakehouse, work: Path, size: dict[str, Any], opts: Options, warmup: int, budget: float
) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    peer_dir = work / "peer"
    (peer_dir / "warehouse").mkdir(parents=True)
    catalog = SqlCatalog("peer", uri=f"sqlite:///{peer_dir / 'peer.db'}", warehouse=(peer_dir / "warehouse").as_uri())
    catalog.create_namespace("default")
    row = pa.table({"id": pa.array([1], pa.int64()), "v": pa.array(["one row"], pa.string())})
    lake.sql("CREATE TABLE hist_template (id BIGINT, v VARCHAR)")
    lake.table("hist_template").append(row)
    peer_template = catalog.create_table(("default", "hist_template"), schema=row.schema)
    peer_template.append(row)
    appends = opts.reps or size["appends"]
    for snapshots in size["histories"]:
        name = f"hist_{snapshots}"
        t0 = time.perf_counter()
        _clone_history(lake.catalog, ("default", "hist_template"), ("default", name), snapshots)
        _clone_history(catalog, ("default", "hist_template"), ("default", name), snapshots)
        log(f"latency: histories of {snapshots:,} snapshots made in {time.perf_counter() - t0:.1f} s")
        table = lake.table(name)
        peer = catalog.load_table(("default", name))

        def wharf_append(table: Any = table) -> Any:
            table.append(row)
            return table

        def peer_append(peer: Any = peer) -> Any:
            peer.append(row)
            return peer

        def floor(table: Any = table) -> Any:
            from bench.harness import Timed

            return Timed(table, _metadata_floor(table.iceberg))

        c = Case(
            f"append 1 row at {snapshots:,} snapshots",
            [
                Runner("wharf", wharf_append),
                # PyIceberg's append costs seconds at 10,000 snapshots: a few calls suffice.
                Runner("pyiceberg", peer_append, max_reps=None if snapshots < 1000 else 3),
                Runner("floor", floor, max_reps=None if snapshots < 1000 else 10),
            ],
            params={"snapshots": snapshots},
        )
        log(f"latency: appends at {snapshots:,} snapshots")
        rounds_before = min(warmup, 3) if snapshots < 1000 else 1
        result = _measure(c, opts, warmup=rounds_before, reps=appends, budget_s=budget)
        result.systems["wharf"].agrees = table.count() == int(peer.scan().to_arrow().num_rows)
        report.add(result)


# --- targets ------------------------------------------------------------------------------------


def _case(report: Report, prefix: str) -> CaseResult | None:
    return next((c for c in report.cases if c.name.startswith(prefix)), None)


def add_targets(report: Report) -> None:
    def overhead(prefix: str) -> float | None:
        c = _case(report, prefix)
        return c.systems["wharf"].extra.get("overhead_ms") if c is not None else None

    for prefix, limit in (("3-table join, repeated", 1.0), ("3-table join, new shape", 3.0)):
        ms = overhead(prefix)
        c = _case(report, prefix)
        cpu = c.systems["wharf"].extra.get("cpu_overhead_ms") if c is not None else None
        report.targets.append(
            Target(
                prefix,
                f"fixed cost ≤ {limit:g} ms (wall p50 difference; CPU)",
                f"wall {ms:.2f} ms; CPU {cpu:.2f} ms" if ms is not None and cpu is not None else "n/a",
                None if ms is None else ms <= limit,
            )
        )
    appends = [c for c in report.cases if c.name.startswith("append 1 row")]
    if appends:
        short = appends[0]
        short_ms = short.systems["wharf"].median_s
        report.targets.append(
            Target(
                short.name,
                "≤ 10 ms median",
                f"{short_ms * 1000:.1f} ms" if short_ms else "n/a",
                None if short_ms is None else short_ms * 1000 <= 10,
            )
        )
        for c in appends[1:]:
            mine, floor = c.systems["wharf"].median_s, c.systems["floor"].median_s
            if mine is None or floor is None or short_ms is None:
                continue
            bound = 1.5 * floor + short_ms
            report.targets.append(
                Target(
                    c.name,
                    "≤ 1.5 × floor + short-history commit",
                    f"{mine * 1000:.1f} ms vs {bound * 1000:.1f} ms",
                    mine <= bound,
                )
            )
    lookup = _case(report, "point lookup")
    if lookup is not None:
        ratio = lookup.ratio("duckdb")
        files = lookup.systems["wharf"].extra.get("files")
        report.targets.append(
            Target(
                "point lookup",
                "one file, ≤ 2× DuckDB on that file",
                f"{ratio:.2f}× DuckDB, {files} file(s)" if ratio is not None else "n/a",
                None if ratio is None else ratio <= 2 and files == 1,
            )
        )
