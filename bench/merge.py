"""``merge``: MERGE of 1% / 10% changed+new rows into 1M- and 10M-row tables (single and
composite key), a 20k-row composite-key MERGE, and UPDATE / DELETE of 1% — copy-on-write — and
MERGE of 1% / 10% into the same tables in merge-on-read mode, with the read cost it leaves behind.

Systems:

* **wharf**: ``Table.merge(source, on=keys)`` (a MERGE INTO), ``UPDATE … WHERE``, ``DELETE … WHERE``;
* **pyiceberg** (the peer): ``upsert(source, join_cols=keys)``; for UPDATE a scan of the matching
  rows + ``overwrite(new_rows, overwrite_filter=…)``; ``delete(filter)``. It runs in a child process
  with a timeout, because PyIceberg's upsert crashes the interpreter (SIGSEGV) on composite keys
  from about 10–20k rows: the crash is the peer's recorded result;
* **duckdb** (the copy-on-write limit): DuckDB reading exactly the data files that hold a changed
  row plus the source, and writing their new contents as one Parquet file (``COPY … TO``).

Merge-on-read cases (``… merge-on-read``): the same MERGE into a table with ``write.merge.mode`` =
``merge-on-read`` (Wharf writes the new and changed rows plus a positional delete file; the base
file stays), against the same PyIceberg upsert (which only does copy-on-write) and the same
copy-on-write limit. Each is followed by a scan case (``scan after …``): a full-scan aggregate
``SELECT sum(amount), count(*)`` of the merged table as the MERGE left it (**wharf**: data files
plus the positional deletes, applied at read time) against the same table after
``rewrite_data_files`` with ``rewrite-all`` (**compacted**: the deletes folded into the data);
both read through ``FOR VERSION AS OF`` the respective snapshot.

The table is rebuilt before every timed call (untimed): a fresh table whose snapshot holds the
same base data files. Every changed row is spread over the whole key range (``id % k = 7``), the
worst case for copy-on-write. Answers are compared by a checksum of the resulting table.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import wharf
from bench.data import duckdb_connection, run_dir
from bench.harness import Case, Options, Peer, Report, Runner, Target, Timed, log, measure, same_rows
from wharf.tables.scan import local_path

PEERS = [
    Peer("wharf", "system", "Wharf"),
    Peer("pyiceberg", "peer", "PyIceberg"),
    Peer("duckdb", "limit", "DuckDB COPY (CoW limit)"),
    Peer("compacted", "limit", "scan cases: the merged table after rewrite_data_files"),
]
MERGE_ON_READ = {"write.merge.mode": "merge-on-read"}
SCAN_SQL = "SELECT sum(amount) AS amount, count(*) AS n FROM {t}"
COMPACT_SQL = "CALL system.rewrite_data_files(table => '{t}', options => map('rewrite-all', 'true'))"
MOR_VS_PEER = 0.10  # merge-on-read MERGE of 1% into 1M: ≥ 10× faster than PyIceberg's upsert
MOR_SCAN_LIMIT = 1.3  # a scan of the merged table ≤ 1.3× the compacted table's
COLUMNS = ("id", "region", "account", "bucket", "name", "amount", "qty", "updated_at")
KEYS = {"single": ["id"], "composite": ["region", "account"]}
REGIONS = ("eu", "us", "apac", "latam", "mea")
CHANGED_BUCKET = 7  # UPDATE / DELETE touch the rows with bucket = 7: 1% of the table


def base_sql(first: int, count: int) -> str:
    """Rows ``first .. first+count-1``; (region, account) is unique like id is, so both key kinds work."""
    regions = "[" + ", ".join(f"'{r}'" for r in REGIONS) + "]"
    return f"""
        SELECT
            i AS id,
            {regions}[1 + CAST(i % {len(REGIONS)} AS INTEGER)] AS region,
            i // {len(REGIONS)} AS account,
            CAST(hash(i) % 100 AS INTEGER) AS bucket,
            'customer-' || CAST(i AS VARCHAR) AS name,
            CAST((i * 37) % 100000 AS DOUBLE) / 100 AS amount,
            CAST(i % 17 AS INTEGER) AS qty,
            TIMESTAMP '2024-01-01' + to_seconds(i) AS updated_at
        FROM range({first}, {first + count}) AS r(i)
    """


def source_sql(rows: int, changed: int) -> str:
    """``changed`` existing rows with new values, spread over the whole table, plus ``rows - changed`` new rows."""
    step = max(1, rows // max(changed, 1))
    return f"""
        SELECT id, region, account, bucket, name, amount + 1 AS amount, qty + 1 AS qty,
               updated_at + INTERVAL 1 DAY AS updated_at
        FROM ({base_sql(0, rows)}) WHERE id % {step} = 7 LIMIT {changed}
    """


@dataclass
class Sizes:
    small: int
    large: int
    composite_rows: int
    peer_timeout_s: float


def sizes(opts: Options) -> Sizes:
    scale = opts.scale if opts.scale is not None else (0.01 if opts.quick else 1.0)
    return Sizes(
        small=int(1_000_000 * scale),
        large=int(10_000_000 * scale),
        composite_rows=max(100, int(20_000 * scale)),
        peer_timeout_s=15.0 if opts.quick else 120.0,
    )


# --- the PyIceberg peer, in a child process ----------------------------------------------------


def _peer_catalog(path: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("peer", uri=f"sqlite:///{path / 'peer.db'}", warehouse=(path / "warehouse").resolve().as_uri())


def _peer_job(conn: Any, catalog_dir: str, table: str, op: str, source: str | None, keys: list[str]) -> None:
    """Runs in a child: one PyIceberg operation, timed; sends ("ok", seconds) or ("error", text)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        from pyiceberg.expressions import EqualTo

        tbl = _peer_catalog(Path(catalog_dir)).load_table(("default", table))
        data = pq.read_table(source) if source else None
        t0 = time.perf_counter()
        if op == "merge":
            tbl.upsert(data, join_cols=keys)
        elif op == "update":
            where = EqualTo("bucket", CHANGED_BUCKET)
            rows = tbl.scan(row_filter=where).to_arrow()
            for column in ("amount", "qty"):
                plus_one = pc.add(rows[column], pa.scalar(1, rows[column].type))
                rows = rows.set_column(rows.schema.get_field_index(column), column, plus_one)
            tbl.overwrite(rows, overwrite_filter=where)
        elif op == "delete":
            tbl.delete(EqualTo("bucket", CHANGED_BUCKET))
        conn.send(("ok", time.perf_counter() - t0))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as the peer's result
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]))


_CONTEXT: Any = None


def _mp_context() -> Any:
    """A forkserver: children fork from a clean server process that has PyIceberg imported already."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["bench.merge", "pyiceberg.table", "pyiceberg.catalog.sql", "pyiceberg.io.pyarrow"])
    return _CONTEXT


def run_peer_child(catalog_dir: Path, table: str, op: str, source: Path | None, keys: list[str], timeout: float) -> float:
    ctx = _mp_context()
    parent, child = ctx.Pipe(duplex=False)
    args = (child, str(catalog_dir), table, op, str(source) if source else None, keys)
    proc = ctx.Process(target=_peer_job, args=args)
    proc.start()
    child.close()
    deadline = time.monotonic() + timeout + 30  # + start-up of the child (imports), which is not timed
    message = None
    while time.monotonic() < deadline:
        if parent.poll(0.2):
            try:
                message = parent.recv()
            except EOFError:
                message = None
            break
        if not proc.is_alive():
            break
    if message is None and proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError(f"PyIceberg did not finish within {timeout:.0f} s (stopped)")
    proc.join()
    if message is None:
        code = proc.exitcode
        signal = f" (signal {-code}{', SIGSEGV' if code == -11 else ''})" if code is not None and code < 0 else ""
        raise RuntimeError(f"PyIceberg crashed: the process died with exit code {code}{signal}")
    status, value = message
    if status != "ok":
        raise RuntimeError(value)
    return float(value)


# --- building tables ---------------------------------------------------------------------------


_names = itertools.count()


def clone(catalog: Any, schema: Any, spec: Any, files: list[Any], prefix: str, properties: dict[str, str] | None = None) -> str:
    """A new table in ``catalog`` whose one snapshot holds ``files`` (the base data files)."""
    name = f"{prefix}_{next(_names)}"
    table = catalog.create_table(("default", name), schema=schema, partition_spec=spec, properties=properties or {})
    with table.transaction() as tx, tx.update_snapshot().fast_append() as append:
        for f in files:
            append.append_data_file(f)
    return name


def checksum_sql(relation: str) -> str:
    return f"SELECT count(*), sum(hash({', '.join(COLUMNS)})) FROM {relation}"


def parquet_list(paths: list[str]) -> str:
    return "read_parquet([" + ", ".join(f"'{p}'" for p in paths) + "])"


@dataclass
class Spec:
    name: str
    op: str  # merge | update | delete
    size: str  # small | large
    keys: str = "single"
    source_rows: int = 0
    changed_rows: int = 0
    mode: str = "copy-on-write"  # of the Wharf table (write.merge.mode)


def cases(s: Sizes, quick: bool = False) -> list[Spec]:
    out: list[Spec] = []
    for size, rows in (("small", s.small), ("large", s.large)):
        label = f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows / 1e3:g}k"
        for pct in (1, 10):
            for keys in ("single", "composite"):
                n = rows * pct // 100
                out.append(Spec(f"merge {pct}% into {label} ({keys} key)", "merge", size, keys, n, n // 2))
        if size == "small":
            n = s.composite_rows
            out.append(Spec(f"merge {n / 1e3:g}k rows into {label} (composite key)", "merge", size, "composite", n, n // 2))
        out.append(Spec(f"update 1% of {label}", "update", size))
        out.append(Spec(f"delete 1% of {label}", "delete", size))
        for pct in (1, 10) if size == "small" or not quick else ():  # --quick: the small table only
            n = rows * pct // 100
            name = f"merge {pct}% into {label} (single key, merge-on-read)"
            out.append(Spec(name, "merge", size, "single", n, n // 2, mode="merge-on-read"))
    return out


@dataclass
class Bench:
    """Everything the cases of one run share: the lake, the peer's catalog, DuckDB, the base tables."""

    opts: Options
    sizes: Sizes
    work: Path
    lake: wharf.Lakehouse
    peer_dir: Path
    peer_catalog: Any
    con: Any
    bases: dict[str, tuple[Any, list[Any], int]]

    def source_file(self, spec: Spec, rows: int) -> Path:
        path = self.work / f"source-{spec.size}-{spec.source_rows}.parquet"
        if not path.exists():
            changed = source_sql(rows, spec.changed_rows)
            new = base_sql(rows, spec.source_rows - spec.changed_rows)
            self.con.execute(f"COPY (SELECT * FROM ({changed}) UNION ALL SELECT * FROM ({new})) TO '{path}' (FORMAT parquet)")
        return path

    def case(self, spec: Spec) -> tuple[Case, Any]:
        """The runners of one case, and the checksum function that compares their final tables."""
        table, files, rows = self.bases[spec.size]
        keys = KEYS[spec.keys]
        paths = [local_path(f.file_path) for f in files]
        listing = f"read_parquet({paths!r}, filename = true)"
        source_file = self.source_file(spec, rows) if spec.op == "merge" else None
        source = pq.read_table(source_file) if source_file else None
        if source_file:
            on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            touched = f"SELECT DISTINCT t.filename FROM {listing} t SEMI JOIN read_parquet('{source_file}') s ON {on}"
        else:
            touched = f"SELECT DISTINCT filename FROM {listing} WHERE bucket = {CHANGED_BUCKET}"
        affected = [r[0] for r in self.con.execute(touched).fetchall()]
        untouched = [p for p in paths if p not in set(affected)]
        state: dict[str, Any] = {}
        lake, con = self.lake, self.con

        properties = MERGE_ON_READ if spec.mode == "merge-on-read" else None

        def wharf_setup() -> None:
            state["wharf"] = clone(lake.catalog, table.schema(), table.spec(), files, "w", properties)

        def wharf_run() -> Any:
            name = state["wharf"]
            if spec.op == "merge":
                result = lake.table(name).merge(source, on=keys)
            elif spec.op == "update":
                result = lake.sql(f"UPDATE {name} SET amount = amount + 1, qty = qty + 1 WHERE bucket = {CHANGED_BUCKET}")
            else:
                result = lake.sql(f"DELETE FROM {name} WHERE bucket = {CHANGED_BUCKET}")
            return (name, result.rowcount)

        def peer_setup() -> None:
            state["peer"] = clone(self.peer_catalog, table.schema(), table.spec(), files, "p")

        def peer_run() -> Any:
            seconds = run_peer_child(self.peer_dir, state["peer"], spec.op, source_file, keys, self.sizes.peer_timeout_s)
            return Timed(state["peer"], seconds)

        out_dir = self.work / "limit"
        out_dir.mkdir(exist_ok=True)

        def limit_run() -> Any:
            out = out_dir / f"rewrite-{next(_names)}.parquet"
            files_sql = parquet_list(affected)
            if spec.op == "merge":
                on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
                query = (
                    f"SELECT t.* FROM {files_sql} t ANTI JOIN read_parquet('{source_file}') s ON {on} "
                    f"UNION ALL SELECT * FROM read_parquet('{source_file}')"
                )
            elif spec.op == "update":
                query = (
                    f"SELECT * REPLACE (CASE WHEN bucket = {CHANGED_BUCKET} THEN amount + 1 ELSE amount END AS amount, "
                    f"CASE WHEN bucket = {CHANGED_BUCKET} THEN qty + 1 ELSE qty END AS qty) FROM {files_sql}"
                )
            else:
                query = f"SELECT * FROM {files_sql} WHERE bucket <> {CHANGED_BUCKET}"
            con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
            return out

        def checksum(system: str, answer: Any) -> tuple[Any, ...]:
            if system == "wharf":
                return tuple(lake.sql(checksum_sql(answer[0])).fetchone())
            if system == "pyiceberg":
                tbl = self.peer_catalog.load_table(("default", answer))
                files = [local_path(t.file.file_path) for t in tbl.scan().plan_files()]
                return tuple(con.execute(checksum_sql(parquet_list(files))).fetchone()) if files else (0, None)
            return tuple(con.execute(checksum_sql(parquet_list([*untouched, str(answer)]))).fetchone())

        # A child process per PyIceberg call; the large cases take minutes: measured once.
        expensive = self.opts.quick or spec.size == "large" or spec.source_rows > 50_000
        case = Case(
            spec.name,
            [
                Runner("wharf", wharf_run, setup=wharf_setup, extra=lambda answer: {"changed_rows": answer[1]}),
                Runner("pyiceberg", peer_run, setup=peer_setup, max_reps=1 if expensive else None),
                Runner("duckdb", limit_run, extra=lambda _answer: {"files_rewritten": len(affected)}),
            ],
            params={
                "op": spec.op,
                "rows": rows,
                "keys": keys,
                "source_rows": spec.source_rows,
                "changed_rows": spec.changed_rows,
                "files_rewritten": len(affected),
                "mode": spec.mode,
            },
        )
        return case, checksum

    def scan_case(self, spec: Spec, merged: str) -> Case:
        """The read cost ``spec``'s merge-on-read MERGE left in table ``merged``: scan it as merged and compacted."""
        lake = self.lake
        before = lake.table(merged).current_snapshot_id()
        t0 = time.perf_counter()
        compaction = lake.sql(COMPACT_SQL.format(t=merged)).to_arrow().to_pylist()[0]
        compaction_s = time.perf_counter() - t0
        after = lake.table(merged).current_snapshot_id()
        merged_sql = SCAN_SQL.format(t=f"{merged} FOR VERSION AS OF {before}")
        compacted_sql = SCAN_SQL.format(t=f"{merged} FOR VERSION AS OF {after}")
        delete_files = len(lake.planner.plan(lake.table(merged).iceberg, before).delete_files)

        def run_merged() -> Any:
            return lake.sql(merged_sql).to_arrow()

        def run_compacted() -> Any:
            return lake.sql(compacted_sql).to_arrow()

        return Case(
            f"scan after {spec.name}",
            [
                Runner("wharf", run_merged, extra=lambda _answer: {"delete_files": delete_files}),
                Runner("compacted", run_compacted, extra=lambda _answer: {"compaction_s": round(compaction_s, 2)}),
            ],
            params={"op": "scan", "sql": SCAN_SQL, "merged_snapshot": before, "compaction": compaction},
            compare=same_rows,
        )


def run(opts: Options) -> Report:
    s = sizes(opts)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 3)
    budget = opts.budget_s or (10.0 if opts.quick else 60.0)
    work = run_dir(opts.data_dir, "merge")
    report = Report(
        "merge",
        f"merge: copy-on-write MERGE / UPDATE / DELETE and merge-on-read MERGE into {s.small:,} and {s.large:,} rows",
        opts,
        PEERS,
        params={
            "small_rows": s.small,
            "large_rows": s.large,
            "warmup": warmup,
            "reps": reps,
            "peer_timeout_s": s.peer_timeout_s,
        },
    )
    report.extra_columns = [
        ("files rewritten", "duckdb", "files_rewritten"),
        ("rows changed", "wharf", "changed_rows"),
        ("delete files", "wharf", "delete_files"),
        ("compaction s", "compacted", "compaction_s"),
    ]
    lake = wharf.connect(work / "lake", user="bench")
    peer_dir = work / "peer"
    peer_dir.mkdir()
    peer_catalog = _peer_catalog(peer_dir)
    peer_catalog.create_namespace("default")
    con = duckdb_connection()
    bases: dict[str, tuple[Any, list[Any], int]] = {}
    for size, rows in (("small", s.small), ("large", s.large)):
        log(f"merge: writing the {rows:,}-row base table")
        base_file = work / f"base-{size}.parquet"
        con.execute(f"COPY ({base_sql(0, rows)}) TO '{base_file}' (FORMAT parquet)")
        lake.create_table(f"base_{size}", pq.read_schema(base_file))
        lake.sql(f"INSERT INTO base_{size} SELECT * FROM read_parquet('{base_file}')")
        table = lake.table(f"base_{size}").iceberg
        planned = lake.planner.plan(table, table.metadata.current_snapshot_id).files
        bases[size] = (table, [f.data_file for f in planned], rows)
        report.params[f"{size}_data_files"] = len(planned)
    bench = Bench(opts, s, work, lake, peer_dir, peer_catalog, con, bases)
    for spec in cases(s, opts.quick):
        case, checksum = bench.case(spec)
        small = spec.size == "small"
        result = measure(case, opts, warmup=warmup if small else 0, reps=reps if small else min(reps, 2), budget_s=budget)
        _compare(result, checksum)
        report.add(result)
        if spec.mode == "merge-on-read" and "wharf" in result.answers:
            scan = bench.scan_case(spec, result.answers["wharf"][0])
            report.add(measure(scan, opts, warmup=warmup, reps=reps, budget_s=budget))
    con.close()
    lake.close()
    add_targets(report)
    return report


def _compare(result: Any, checksum: Any) -> None:
    """Compare the final table of each system with the limit's (checksum of all rows)."""
    answers = result.answers
    if "duckdb" not in answers:
        return
    expected = checksum("duckdb", answers["duckdb"])
    for system in ("wharf", "pyiceberg"):
        if system in answers and result.systems[system].error is None:
            try:
                result.systems[system].agrees = checksum(system, answers[system]) == expected
            except Exception as exc:  # noqa: BLE001
                result.systems[system].agrees = False
                result.systems[system].extra["compare_error"] = str(exc)[:200]


def add_targets(report: Report) -> None:
    small = report.params["small_rows"]
    label = f"{small / 1e6:g}M" if small >= 1_000_000 else f"{small / 1e3:g}k"
    first = next((c for c in report.cases if c.name == f"merge 1% into {label} (single key)"), None)
    if first is not None:
        vs_peer, vs_limit = first.ratio("pyiceberg"), first.ratio("duckdb")
        peer_err = first.systems["pyiceberg"].error
        report.targets.append(
            Target(
                f"{first.name}: vs PyIceberg upsert",
                "≥ 10× faster (ratio ≤ 0.10)",
                f"{1 / vs_peer:.1f}× faster (ratio {vs_peer:.3f})" if vs_peer else f"peer: {peer_err}",
                None if vs_peer is None else vs_peer <= 0.10,
            )
        )
        report.targets.append(
            Target(
                f"{first.name}: vs copy-on-write limit",
                "≤ 2× DuckDB COPY",
                f"{vs_limit:.2f}×" if vs_limit else f"wharf: {first.systems['wharf'].error}",
                None if vs_limit is None else vs_limit <= 2.0,
            )
        )
    mor = next((c for c in report.cases if c.name == f"merge 1% into {label} (single key, merge-on-read)"), None)
    if mor is not None:
        vs_peer = mor.ratio("pyiceberg")
        report.targets.append(
            Target(
                f"{mor.name}: vs PyIceberg upsert",
                f"≥ {1 / MOR_VS_PEER:.0f}× faster (ratio ≤ {MOR_VS_PEER:.2f})",
                f"{1 / vs_peer:.1f}× faster (ratio {vs_peer:.3f})"
                if vs_peer
                else f"wharf: {mor.systems['wharf'].error}; peer: {mor.systems['pyiceberg'].error}",
                None if vs_peer is None else vs_peer <= MOR_VS_PEER,
            )
        )
    for scan in (c for c in report.cases if c.params.get("op") == "scan"):
        vs_compacted = scan.ratio("compacted")
        report.targets.append(
            Target(
                f"{scan.name}: merged vs compacted",
                f"≤ {MOR_SCAN_LIMIT}× the compacted table's scan",
                f"{vs_compacted:.2f}×" if vs_compacted else f"wharf: {scan.systems['wharf'].error}",
                None if vs_compacted is None else vs_compacted <= MOR_SCAN_LIMIT,
            )
        )
    composite = next((c for c in report.cases if c.name.startswith("merge ") and "rows into" in c.name), None)
    if composite is not None:
        w = composite.systems["wharf"]
        vs_limit = composite.ratio("duckdb")
        peer = composite.systems["pyiceberg"]
        report.targets.append(
            Target(
                f"{composite.name}: completes, ≤ 2× limit",
                "completes (PyIceberg crashes); ≤ 2× DuckDB COPY",
                (f"Wharf {w.median_s:.2f} s, {vs_limit:.2f}× limit" if w.median_s and vs_limit else f"wharf: {w.error}")
                + f"; PyIceberg: {peer.error or 'completed'}",
                None if vs_limit is None else (w.error is None and vs_limit <= 2.0),
            )
        )
