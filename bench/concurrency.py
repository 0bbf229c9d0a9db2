"""``concurrency``: several processes writing one table at once, against one process doing the same work.

Systems: **wharf** — ``W`` processes (default 8) each committing ``K`` small appends (one row
each) to one table, all released at the same moment; **serial** — one process committing the same
``W × K`` appends one after the other (the bar: concurrent writers should finish no slower). A
second case has each process ``UPDATE`` rows of its own data file ``K`` times: disjoint files,
so no statement may fail with a conflict. Time is measured from the release to the last commit
(process start-up and imports are excluded); retries come from the statement events.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import wharf
from bench.data import run_dir
from bench.harness import Case, Options, Peer, Report, Runner, Target, Timed, log, measure

PEERS = [Peer("wharf", "system", "Wharf, W concurrent processes"), Peer("serial", "limit", "Wharf, one process")]
CTX = mp.get_context("spawn")


def sizes(opts: Options) -> tuple[int, int]:
    """(writer processes, statements per writer)."""
    scale = opts.scale if opts.scale is not None else (0.12 if opts.quick else 1.0)
    return 8 if not opts.quick else 2, max(3, int(25 * scale))  # --quick: two processes still race


def _worker(path: str, worker: int, statements: list[str], ready: Any, go: Any, done: Any) -> None:
    try:
        lake = wharf.connect(path, user=f"writer{worker}")
        retries: list[int] = []
        conflicts = 0
        lake.events.subscribe("on_statement", lambda e: retries.append(e.retries))
        lake.sql("SELECT 1")  # warm: catalog, DuckDB
        ready.put(worker)
        go.wait()
        for statement in statements:
            try:
                lake.sql(statement)
            except wharf.errors.ConflictError:
                conflicts += 1
        done.put((worker, time.perf_counter(), sum(retries), conflicts))
    except BaseException as exc:  # tell the parent at once instead of leaving it waiting on the queues
        message = f"writer {worker} failed: {type(exc).__name__}: {exc}"
        ready.put(message)
        done.put(message)
        raise


def _get(queue: Any, timeout: float) -> Any:
    item = queue.get(timeout=timeout)
    if isinstance(item, str):
        raise RuntimeError(item)
    return item


def run_writers(path: Path, work: list[list[str]]) -> Timed:
    """Run each statement list in its own process, released together; the wall time of the work only."""
    ready, done, go = CTX.Queue(), CTX.Queue(), CTX.Event()
    procs = [CTX.Process(target=_worker, args=(str(path), w, statements, ready, go, done)) for w, statements in enumerate(work)]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            _get(ready, 300)
        start = time.perf_counter()
        go.set()
        results = [_get(done, 1800) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    end = max(r[1] for r in results)
    return Timed({"retries": sum(r[2] for r in results), "conflicts": sum(r[3] for r in results)}, end - start)


def run(opts: Options) -> Report:
    writers, each = sizes(opts)
    warmup = opts.warmup if opts.warmup is not None else 0
    reps = opts.reps or (1 if opts.quick else 3)
    budget = opts.budget_s or (60.0 if opts.quick else 600.0)
    work_dir = run_dir(opts.data_dir, "concurrency")
    report = Report(
        "concurrency",
        f"concurrency: {writers} processes × {each} commits on one table, vs one process doing all of them",
        opts,
        PEERS,
        params={"writers": writers, "statements_per_writer": each, "reps": reps},
    )
    report.extra_columns = [
        ("wharf commits/s", "wharf", "commits_per_s"),
        ("serial commits/s", "serial", "commits_per_s"),
        ("retries", "wharf", "retries"),
        ("conflicts", "wharf", "conflicts"),
    ]
    state: dict[str, Path] = {}
    counter = iter(range(1_000_000))

    def fresh(kind: str) -> None:
        path = work_dir / f"lake-{next(counter)}"
        lake = wharf.connect(path, user="bench")
        lake.sql("CREATE TABLE t (writer INT, i INT, v INT)")
        for w in range(writers):  # each writer process acts as its own user (governed: it needs grants)
            lake.sql(f"GRANT SELECT, INSERT, UPDATE ON TABLE t TO USER writer{w}")
        if kind == "update":
            for w in range(writers):  # one data file per writer
                lake.sql(f"INSERT INTO t SELECT {w}, range, 0 FROM range(100)")
        lake.close()
        state["path"] = path

    def appends(w: int) -> list[str]:
        return [f"INSERT INTO t VALUES ({w}, {i}, 0)" for i in range(each)]

    def updates(w: int) -> list[str]:
        return [f"UPDATE t SET v = v + 1 WHERE writer = {w}" for _ in range(each)]

    def answer(timed: Timed) -> Timed:
        lake = wharf.connect(state["path"], user="bench")
        rows = lake.sql("SELECT writer, count(*), sum(v) FROM t GROUP BY ALL ORDER BY ALL").fetchall()
        lake.close()
        return Timed({**timed.answer, "rows": rows}, timed.seconds)

    for kind, statements in (("append", appends), ("update", updates)):
        case = Case(
            f"{writers} writers × {each} {kind}s",
            [
                Runner(
                    "wharf",
                    lambda s=statements: answer(run_writers(state["path"], [s(w) for w in range(writers)])),
                    setup=lambda k=kind: fresh(k),
                    extra=lambda a: {k: a[k] for k in ("retries", "conflicts")},
                ),
                Runner(
                    "serial",
                    lambda s=statements: answer(run_writers(state["path"], [[x for w in range(writers) for x in s(w)]])),
                    setup=lambda k=kind: fresh(k),
                ),
            ],
            params={"writers": writers, "statements_per_writer": each, "statement": kind},
            compare=lambda ref, other: ref["rows"] == other["rows"],
        )
        log(f"concurrency: {case.name}")
        result = measure(case, opts, warmup=warmup, reps=reps, budget_s=budget)
        for system in ("wharf", "serial"):
            median = result.systems[system].median_s
            if median:
                result.systems[system].extra["commits_per_s"] = round(writers * each / median, 1)
        report.add(result)
    add_targets(report)
    return report


def add_targets(report: Report) -> None:
    for case in report.cases:
        ratio = case.ratio("serial")
        conflicts = case.systems["wharf"].extra.get("conflicts")
        report.targets.append(
            Target(
                f"concurrency {case.name}",
                "no slower than one process (ratio ≤ 1.0), no conflicts",
                f"{ratio:.2f}× the one-process time, {conflicts} conflict(s)" if ratio else "n/a",
                None if ratio is None else ratio <= 1.0 and conflicts == 0,
            )
        )
