"""``history``: the changelog of 100 snapshots of a 1M-row table, and the SCD2 view of a 10M-row dimension.

Systems: **wharf** ``SELECT * FROM t.changes`` / ``SELECT … FROM t.scd2`` (planning, carry-over
removal, update pairing, all of it); **duckdb** (the limit): hand-written DuckDB SQL over the
same Parquet files — each snapshot's added data files are its inserts; every data file is read
once and joined with all the positions the delete files name (tagged with the snapshot that
deleted them); then the same update pairing / version windows — with the file lists per
snapshot given to it for free (read from the manifests before timing). It skips what this
workload does not need (carry-over removal: these updates change every row they touch).

The tables are written by Wharf with merge-on-read updates (positional delete files), the case
Spark's changelog cannot read: 1M rows in 10 files, then 99 UPDATEs of 0.1% of the rows each;
10M rows, then snapshots that each update 5% of the rows.
"""

from __future__ import annotations

from typing import Any

import duckdb

import wharf
from bench.data import run_dir
from bench.harness import Case, Options, Peer, Report, Runner, Target, log, measure
from wharf.tables.changelog import _own_entries
from wharf.tables.scan import local_path

PEERS = [Peer("wharf", "system", "Wharf"), Peer("duckdb", "limit", "hand-written DuckDB SQL on the same Parquet files")]
MOR = "('write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read', 'write.merge.mode' = 'merge-on-read')"


def sizes(opts: Options) -> tuple[int, int, int, int]:
    """(changelog table rows, its snapshots, dimension rows, churn snapshots)."""
    scale = opts.scale if opts.scale is not None else (0.02 if opts.quick else 1.0)
    snapshots = 100 if scale >= 1 else max(5, int(100 * scale * 5))
    return int(1_000_000 * scale), snapshots, int(10_000_000 * scale), 4 if scale >= 0.5 else 2


def _build(lake: wharf.Lakehouse, name: str, rows: int, files: int, updates: int, fraction: float) -> None:
    """``rows`` rows in ``files`` inserts, then ``updates`` merge-on-read UPDATEs of ``fraction`` of the rows."""
    lake.sql(f"CREATE TABLE {name} (id BIGINT NOT NULL, grp INT, amount DOUBLE, label VARCHAR) TBLPROPERTIES {MOR}")
    lake.sql(f"ALTER TABLE {name} SET IDENTIFIER FIELDS id")
    per = rows // files
    for i in range(files):
        lake.sql(
            f"INSERT INTO {name} SELECT range, (range % 97)::INT, range * 0.5, 'item ' || range "
            f"FROM range({i * per}, {(i + 1) * per})"
        )
    step = max(1, int(1 / fraction))
    for u in range(updates):
        lake.sql(f"UPDATE {name} SET amount = amount + {u + 1}, label = 'v{u}' WHERE id % {step} = {u % step}")


def _raw_sql(lake: wharf.Lakehouse, name: str) -> tuple[str, str]:
    """The hand-written changed rows (id, grp, amount, label, w, ord) and commits VALUES, from the manifests.

    Written as one would by hand for this table: each snapshot's added files are its inserts;
    every data file is read once with its row numbers and joined with every (file, position)
    the delete files name, tagged with the snapshot that first deleted it.
    """
    table = lake.table(name).iceberg
    chain = []
    snapshot = table.current_snapshot()
    while snapshot is not None:
        chain.append(snapshot)
        snapshot = table.metadata.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    parts: list[str] = []
    commits: list[str] = []
    data_files: list[str] = []
    delete_files: list[tuple[str, int]] = []
    for ordinal, snap in enumerate(reversed(chain)):
        added, _removed, deletes, _ = _own_entries(table, snap)
        commits.append(f"({ordinal}, {snap.snapshot_id}, {snap.timestamp_ms})")
        paths = [local_path(f.file_path) for f in added]
        if paths:
            parts.append(f"SELECT id, grp, amount, label, 1 AS w, {ordinal} AS ord FROM read_parquet({paths!r})")
        data_files += paths
        delete_files += [(local_path(f.file_path), ordinal) for f in deletes]
    if delete_files:
        listed = ", ".join(f"('{p}', {o})" for p, o in delete_files)
        paths = [p for p, _ in delete_files]
        parts.append(
            f"SELECT d.id, d.grp, d.amount, d.label, -1, n.ord FROM read_parquet({data_files!r}, filename = true, "
            f"file_row_number = true) d JOIN (SELECT p.file_path, p.pos, min(o.ord) AS ord FROM "
            f"read_parquet({paths!r}, filename = true) p JOIN (VALUES {listed}) o(path, ord) ON p.filename = o.path "
            f"GROUP BY ALL) n ON n.file_path = 'file://' || d.filename AND n.pos = d.file_row_number"
        )
    return " UNION ALL ".join(parts), f"(VALUES {', '.join(commits)}) c(ord, snapshot_id, ms)"


def run(opts: Options) -> Report:
    rows, snapshots, dim_rows, churns = sizes(opts)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 5)
    budget = opts.budget_s or (10.0 if opts.quick else 120.0)
    work = run_dir(opts.data_dir, "history")
    report = Report(
        "history",
        f"history: changelog of {snapshots} snapshots of {rows:,} rows; SCD2 of {dim_rows:,} rows × {churns} × 5% churn",
        opts,
        PEERS,
        params={"rows": rows, "snapshots": snapshots, "dimension_rows": dim_rows, "churn_snapshots": churns, "reps": reps},
    )
    lake = wharf.connect(work / "lake", user="bench")
    files = 10 if snapshots >= 50 else snapshots // 2
    log(f"history: building {rows:,} rows with {snapshots - files} merge-on-read updates")
    _build(lake, "events", rows, files, snapshots - files, 0.001)
    log(f"history: building a {dim_rows:,}-row dimension with {churns} updates of 5%")
    _build(lake, "dim", dim_rows, 4, churns, 0.05)
    con = lake.duckdb.cursor()

    raw, commits = _raw_sql(lake, "events")
    changelog_peer = (
        f"SELECT id, grp, amount, label, CASE WHEN count(*) FILTER (WHERE w < 0) OVER k = 1 "
        f"AND count(*) FILTER (WHERE w > 0) OVER k = 1 THEN CASE WHEN w < 0 THEN 'UPDATE_BEFORE' ELSE 'UPDATE_AFTER' END "
        f"ELSE CASE WHEN w > 0 THEN 'INSERT' ELSE 'DELETE' END END AS _change_type, r.ord AS _change_ordinal, "
        f"c.snapshot_id AS _commit_snapshot_id, epoch_ms(c.ms) AS _commit_timestamp "
        f"FROM ({raw}) r JOIN {commits} ON r.ord = c.ord WINDOW k AS (PARTITION BY r.ord, id)"
    )

    def summary(data: Any) -> list[tuple[Any, ...]]:
        with duckdb.connect() as check:
            check.register("answer", data)
            return sorted(check.execute("SELECT _change_type, count(*), sum(amount) FROM answer GROUP BY ALL").fetchall())

    changelog = Case(
        f"changelog of {snapshots} snapshots ({rows:,} rows)",
        [
            Runner("wharf", lambda: lake.sql("SELECT * FROM events.changes").to_arrow()),
            Runner("duckdb", lambda: con.execute(changelog_peer).to_arrow_table()),
        ],
        params={"rows": rows, "snapshots": snapshots},
        compare=lambda ref, other: summary(ref) == summary(other),
    )
    log("history: changelog")
    report.add(measure(changelog, opts, warmup=warmup, reps=reps, budget_s=budget))

    raw, commits = _raw_sql(lake, "dim")
    versions_peer = (
        f"SELECT id, grp, amount, label, epoch_ms(c.ms) AS effective_start, "
        f"lead(epoch_ms(c.ms)) OVER (PARTITION BY id ORDER BY r.ord, w) AS effective_end, w "
        f"FROM ({raw}) r JOIN {commits} ON r.ord = c.ord"
    )
    scd2_peer = (
        "SELECT count(*), count(effective_end), count(*) FILTER (WHERE effective_end IS NULL), sum(amount) "
        f"FROM ({versions_peer}) WHERE w > 0"
    )
    scd2_wharf = "SELECT count(*), count(effective_end), count(*) FILTER (WHERE is_current), sum(amount) FROM dim.scd2"
    scd2 = Case(
        f"SCD2 view of {dim_rows:,} rows, {churns} × 5% churn",
        [
            Runner("wharf", lambda: lake.sql(scd2_wharf).fetchall()),
            Runner("duckdb", lambda: con.execute(scd2_peer).fetchall()),
        ],
        params={"rows": dim_rows, "churn_snapshots": churns},
        compare=lambda ref, other: ref == other,
    )
    log("history: SCD2")
    report.add(measure(scd2, opts, warmup=warmup, reps=reps, budget_s=budget))
    con.close()
    lake.close()
    for case in report.cases:
        ratio = case.ratio("duckdb")
        report.targets.append(
            Target(
                f"history {case.name}",
                "≤ 1.5× hand-written DuckDB SQL",
                f"{ratio:.2f}×" if ratio else f"wharf: {case.systems['wharf'].error}",
                None if ratio is None else ratio <= 1.5,
            )
        )
    return report
