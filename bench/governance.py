"""``governance``: what enforcement and auditing cost — TPC-H as a governed principal vs as the lake owner.

* **wharf** (the system): the 22 TPC-H queries run as ``analyst``, a principal with a row filter on
  ``orders`` and on ``lineitem`` (by user attributes: ``o_orderdate >= current_user_attribute('since')``)
  and masks on ``customer.c_name`` (``hash``), ``c_address`` (``redact``) and ``c_phone``
  (``partial(2, 0)``: the country code stays, so Q22 keeps its answer);
* **owner** (the reference): the same queries as the lake owner, who does no policy work.

The filters keep every row (the attribute is the first order date), so both sides do the same
scan work and the ratio is the cost of enforcement itself; answers are compared on every column
but the masked ones. Both sides are audited (one record per statement). Also measured:

* policy resolution per statement — the policy pass on every reference of each query, with the
  statement cache bypassed (a repeated statement reuses its compiled, policy-applied form);
* the audit cost per statement — ``AuditLog.write`` of one record, and a trivial query as the
  owner with the audit log on vs off (``wharf.connect(path, audit=False)``), alternately.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import wharf
from bench.data import run_dir, tpch_dir, tpch_queries
from bench.harness import Case, Options, Peer, Report, Runner, Target, log, measure, same_rows
from bench.scan import build_tpch_lake, scale_of  # TPC-H at the scan bench's scale factors

PEERS = [
    Peer("wharf", "system", "Wharf as a principal under row filters and masks"),
    Peer("owner", "limit", "the same queries as the lake owner (no policies)"),
]
MASKED = ("c_name", "c_address", "c_phone")
QUICK_QUERIES = (1, 3, 10, 22)  # the filtered tables, a masked output (Q10) and the masked phone's country code (Q22)
FIRST_DAY = "1992-01-01"  # TPC-H's first order date: the filters keep every row

GOVERNANCE = f"""
CREATE USER analyst WITH ATTRIBUTES ('since' = '{FIRST_DAY}');
GRANT SELECT ON NAMESPACE default TO USER analyst;
CREATE FUNCTION orders_since(d DATE) RETURNS BOOLEAN RETURN d >= CAST(current_user_attribute('since') AS DATE);
ALTER TABLE orders SET ROW FILTER orders_since ON (o_orderdate);
ALTER TABLE lineitem SET ROW FILTER orders_since ON (l_shipdate);
ALTER TABLE customer ALTER COLUMN c_name SET MASK hash;
ALTER TABLE customer ALTER COLUMN c_address SET MASK redact;
ALTER TABLE customer ALTER COLUMN c_phone SET MASK partial(2, 0);
"""


def unmasked(table: Any) -> Any:
    return table.drop_columns([c for c in MASKED if c in table.column_names])


def same_unmasked_rows(a: Any, b: Any) -> bool:
    """The owner's and the analyst's answers agree on every column that is not masked."""
    return same_rows(unmasked(a), unmasked(b))


def query_case(n: int, query: str, analyst: wharf.Lakehouse, owner: wharf.Lakehouse) -> Case:
    return Case(
        f"Q{n:02d}",
        [Runner("wharf", lambda: analyst.sql(query).to_arrow()), Runner("owner", lambda: owner.sql(query).to_arrow())],
        params={"query": n},
        compare=same_unmasked_rows,
        reference="owner",
    )


def policy_resolution_us(lake: wharf.Lakehouse, query: str, rounds: int) -> float:
    """Median µs of the policy pass over every reference of ``query`` (resolution included, no statement cache)."""
    from wharf.sql import parse
    from wharf.sql.pipeline import Compilation, guard_pass, qualify_pass, resolve_pass
    from wharf.sql.policy import authorize_reference

    with lake.api_statement("bench", query) as ctx:
        c = Compilation(ctx)
        tree = parse(query)[0].node.copy()
        for step in (guard_pass, resolve_pass, qualify_pass):
            tree = step(tree, c)
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            for ref in c.references:
                ref.policy = None
                authorize_reference(ctx.policies, ctx.principal, ref)
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def audit_write_us(lake: wharf.Lakehouse, rounds: int) -> float:
    """Median µs of writing one typical statement record (SQLite WAL, one transaction each)."""
    from wharf.governance.audit import AuditRecord, audit_log_for

    log_ = audit_log_for(lake.catalog)
    record = AuditRecord(
        principal="analyst",
        kind="statement",
        operation="select",
        statement="SELECT o_orderpriority, count(*) FROM orders WHERE o_orderdate >= DATE '1993-07-01' GROUP BY 1",
        tables_read=("default.orders",),
        columns_read=("default.orders.o_orderpriority", "default.orders.o_orderdate"),
        policies=("default.orders: row filter orders_since",),
    )
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        log_.write(record)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def audited_statement_us(path: Path, rounds: int) -> tuple[float, float]:
    """Median µs of a trivial query as the owner with the audit log on, and off (alternating)."""
    on = wharf.connect(path)
    off = wharf.connect(path, audit=False)
    query = "SELECT count(*) FROM region"
    on_s, off_s = [], []
    try:
        for lake in (on, off):
            for _ in range(20):
                lake.sql(query).fetchall()
        for _ in range(rounds):
            for lake, samples in ((on, on_s), (off, off_s)):
                started = time.perf_counter()
                lake.sql(query).fetchall()
                samples.append(time.perf_counter() - started)
    finally:
        on.close()
        off.close()
    return statistics.median(on_s) * 1e6, statistics.median(off_s) * 1e6


def run(opts: Options) -> Report:
    sf = scale_of(opts)
    warmup = opts.warmup if opts.warmup is not None else 1
    reps = opts.reps or (1 if opts.quick else 5)
    budget = opts.budget_s or (10.0 if opts.quick else 45.0)
    rounds = 50 if opts.quick else 500
    source = tpch_dir(sf, opts.data_dir)
    queries = tpch_queries()
    if opts.quick:
        queries = {n: q for n, q in queries.items() if n in QUICK_QUERIES}
    work = run_dir(opts.data_dir, "governance")
    report = Report(
        "governance",
        f"governance: TPC-H sf={sf:g} as a principal under row filters and masks",
        opts,
        PEERS,
        params={"sf": sf, "warmup": warmup, "reps": reps, "policies": " ".join(GOVERNANCE.split())},
        issue=13,
    )
    log(f"governance: loading TPC-H sf={sf:g} into a Wharf lake")
    owner = build_tpch_lake(work / "lake", source, {})
    try:
        owner.sql(GOVERNANCE)
        analyst = owner.session(user="analyst")
        for n, query in queries.items():
            report.add(measure(query_case(n, query, analyst, owner), opts, warmup=warmup, reps=reps, budget_s=budget))
        resolution = {n: policy_resolution_us(analyst, q, rounds) for n, q in queries.items()}
        write_us = audit_write_us(owner, rounds * 4)
    finally:
        owner.close()
    on_us, off_us = audited_statement_us(work / "lake", rounds * 2)
    report.params["policy_resolution_us"] = {f"Q{n:02d}": round(v, 1) for n, v in resolution.items()}
    report.params["audit_write_us"] = round(write_us, 1)
    report.params["statement_us_audit_on"] = round(on_us, 1)
    report.params["statement_us_audit_off"] = round(off_us, 1)
    add_targets(report, resolution, write_us, on_us, off_us)
    return report


def add_targets(report: Report, resolution: dict[int, float], write_us: float, on_us: float, off_us: float) -> None:
    ran = [c for c in report.cases if c.systems["wharf"].median_s is not None]
    failed = len(report.cases) - len(ran)
    gm = report.geomean("owner")
    worst = max(((c.ratio("owner") or 0.0, c.name) for c in ran), default=(None, ""))
    suffix = f"; {failed} quer{'y' if failed == 1 else 'ies'} failed" if failed else ""
    report.targets.append(
        Target(
            "TPC-H as a governed principal / as the owner",
            "geomean ≤ 1.10",
            (f"geomean {gm:.3f}, worst {worst[0]:.2f} ({worst[1]})" if gm and worst[0] else "n/a") + suffix,
            None if gm is None else (gm <= 1.10 and not failed),
        )
    )
    values = sorted(resolution.values())
    report.targets.append(
        Target(
            "policy resolution per statement (every reference, uncached)",
            "reported",
            f"median {statistics.median(values):.0f} µs, max {values[-1]:.0f} µs over {len(values)} queries" if values else "n/a",
            None,
        )
    )
    report.targets.append(
        Target(
            "audit cost per statement",
            "one INSERT well under 1 ms",
            f"write {write_us:.0f} µs; trivial query {on_us:.0f} µs audited vs {off_us:.0f} µs not (+{on_us - off_us:.0f} µs)",
            write_us < 1000,
        )
    )
    report.notes.append(
        "the row filters keep every row and both sides are audited: the ratio is the cost of enforcement "
        "(policy pass, filter and mask expressions), not of reading less"
    )


__all__ = ["run", "same_unmasked_rows"]
