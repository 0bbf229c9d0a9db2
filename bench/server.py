"""``server``: ``wharf serve`` under load — many users mixing catalog reads, dashboard SQL, ad-hoc SQL and commits.

The server runs as it does in production: a separate ``wharf serve --workers 2`` process (real
uvicorn, a free loopback port, authentication on). The load users are a service principal that
gets its bearer token from ``POST /v1/oauth/tokens``, as a client with client credentials does.

The load generator is a bounded asyncio loop over ``httpx.AsyncClient`` in this process (one
connection per user), not Locust: Locust monkey-patches the whole interpreter with gevent when
it is imported, which the test suite (this benchmark's ``--quick`` mode runs under pytest, next
to threads and asyncio) cannot tolerate. Each of ``USERS`` users repeats: pick a request type by
weight, send it, wait a think time drawn from ``THINK_S`` (as Locust's ``between(…)``), for the
soak's duration. Request types:

- **loadTable** — ``GET /v1/wharf/namespaces/dash/tables/sales`` (the Iceberg REST call every
  engine makes before it reads a table);
- **cached SQL** — one of four dashboard statements over ``dash.sales``, the same text every
  time (a result cache answers these without running them; without one they run every time);
- **uncached SQL** — a statement whose literals differ on every request (nothing can be reused);
- **commit** — a one-row ``INSERT INTO dash.orders`` through ``/api/v1/sql``, each row unique
  (user, sequence number): at the end every acknowledged commit must be a row of the table.

A maintenance task expires ``dash.orders``' old snapshots every ``EXPIRE_EVERY_S`` seconds, as a
lake in production does; without it the table's metadata (and any process holding it) would
grow with every commit for the whole soak.

Reported: per request type, throughput, p50 and p99 latency (client side, including the HTTP
round trip), error count; commits acknowledged vs rows found; the server's resident memory
(summed over its processes: the uvicorn supervisor and its workers) sampled through the soak,
with its drift after warm-up. The floor for loadTable is PyIceberg's ``SqlCatalog.load_table``
on the same catalog database, in this process, with no HTTP.

Default: 200 users for 10 minutes (``--scale`` multiplies the duration); ``--quick``: 20 users
for a few seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import wharf
from bench.data import run_dir
from bench.harness import CaseResult, Options, Peer, Report, SystemResult, Target, log
from wharf.server.background import free_port

PEERS = [
    Peer("wharf", "system", "wharf serve --workers 2 over HTTP, with authentication (client-side latency)"),
    Peer("sqlcatalog", "limit", "PyIceberg SqlCatalog.load_table on the same catalog database, in process, no HTTP"),
]
USERS = 200
QUICK_USERS = 20
SOAK_S = 600.0
QUICK_S = 4.0
WORKERS = 2
THINK_S = (1.0, 5.0)  # a user's pause between requests, as Locust's between(1, 5): 200 users offer ~67 requests/s
QUICK_THINK_S = (0.2, 1.0)  # --quick: 20 users still send ~130 requests in its few seconds
WEIGHTS = {"loadTable": 40, "cached SQL": 30, "uncached SQL": 20, "commit": 10}
CASE_NAMES = {
    "loadTable": "loadTable (REST) under load",
    "cached SQL": "cached SQL (dashboard) under load",
    "uncached SQL": "uncached SQL (ad hoc) under load",
    "commit": "commit (1-row INSERT) under load",
}
IDLE_CASE = "loadTable (REST), one client, idle"
EXPIRE_EVERY_S = 30.0
RETAIN_SNAPSHOTS = 100
SALES_ROWS = 200_000
QUICK_SALES_ROWS = 5_000
WAREHOUSE = "wharf"
LOAD_TABLE_PATH = f"/v1/{WAREHOUSE}/namespaces/dash/tables/sales"

DASHBOARD = [
    "SELECT region, count(*) AS orders, sum(amount) AS revenue FROM dash.sales GROUP BY region ORDER BY region",
    "SELECT product, sum(quantity) AS units FROM dash.sales GROUP BY product ORDER BY units DESC LIMIT 10",
    "SELECT date_trunc('month', day) AS month, sum(amount) AS revenue FROM dash.sales GROUP BY 1 ORDER BY 1",
    "SELECT region, product, avg(amount) AS avg_amount FROM dash.sales WHERE quantity > 3 GROUP BY ALL ORDER BY ALL LIMIT 20",
]


def _ad_hoc(n: int) -> str:
    """The ``n``-th ad-hoc statement: a few shapes, literals unique to ``n``."""
    lo = round((n * 7.31) % 900, 2)
    day = (dt.date(2025, 1, 1) + dt.timedelta(days=n % 300)).isoformat()
    shapes = [
        f"SELECT product, count(*) AS n, avg(amount) AS avg_amount FROM dash.sales WHERE amount BETWEEN {lo} AND {lo + 50} "
        "GROUP BY product ORDER BY n DESC LIMIT 5",
        f"SELECT region, sum(quantity) AS units FROM dash.sales WHERE day >= DATE '{day}' AND id % 97 = {n % 97} "
        "GROUP BY region ORDER BY region",
        f"SELECT count(*) AS n, max(amount) AS top FROM dash.sales WHERE product = 'p{n % 40:02d}' AND quantity >= {n % 5 + 1}",
    ]
    return shapes[n % len(shapes)]


# --- the server process ----------------------------------------------------------------------


@dataclass
class TreeSample:
    rss: int  # resident bytes, summed over the processes
    processes: int
    cpu_s: float  # user + system CPU seconds the processes have used so far


def _tree_sample(root: int) -> TreeSample:
    """Resident memory and CPU time summed over ``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 of proc(5): state
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    total, count, cpu_s, stack = 0, 0, 0.0, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    count += 1
                    cpu_s += cpu.get(pid, 0.0)
                    break
        except OSError:
            continue
        stack.extend(children.get(pid, ()))
    return TreeSample(total, count, cpu_s)


class ServerProcess:
    """``wharf serve`` in a child process (its own session), logging to a file; ``stop()`` sends SIGTERM."""

    def __init__(self, lake: Path, port: int, workers: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self.log_path = log_path
        env = dict(os.environ)
        # The child imports the same wharf as this process (a worktree's src/ under PYTHONPATH included).
        source = str(Path(wharf.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
        cmd = [
            sys.executable,
            "-c",
            "from wharf.cli import main; main()",
            "--lake",
            str(lake),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"wharf serve exited with {self.proc.returncode}: {self._tail()}")
                try:
                    # Ready once every worker has started (one answering /readyz says nothing of the others).
                    if client.get("/readyz").status_code == 200 and self._started() >= self.workers:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise TimeoutError(f"wharf serve was not ready after {timeout_s:.0f} s: {self._tail()}")

    def _started(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count("Application startup complete")
        except OSError:
            return 0

    def sample(self) -> TreeSample:
        return _tree_sample(self.proc.pid)

    def stop(self, timeout_s: float = 60) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: in-flight commits finish
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


# --- the load --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Latencies and errors of one request type."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self.first_error is None:
            self.first_error = f"{kind}: {detail[:300]}"


@dataclass
class LoadResult:
    tallies: dict[str, Tally]
    seconds: float
    acknowledged: set[tuple[int, int]]
    memory: list[tuple[float, int, int]]  # (seconds since start, RSS bytes, processes)
    maintenance: Tally
    answers: dict[str, Any]
    server_cpu_s: float  # CPU seconds the server's processes used during the load


def _percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation, as numpy's default."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


async def _load(
    server: ServerProcess,
    credentials: tuple[str, str],
    users: int,
    duration_s: float,
    sample_every_s: float,
    expire: bool,
    think_s: tuple[float, float],
) -> LoadResult:
    tallies = {kind: Tally() for kind in WEIGHTS}
    maintenance = Tally()
    acknowledged: set[tuple[int, int]] = set()
    memory: list[tuple[float, int, int]] = []
    cpu = [-1.0, 0.0]  # the server's CPU seconds at the first and the latest sample
    answers: dict[str, Any] = {}
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    counter = 0
    limits = httpx.Limits(max_connections=users + 4, max_keepalive_connections=users + 4)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        form = {"grant_type": "client_credentials", "client_id": credentials[0], "client_secret": credentials[1]}
        response = await client.post("/v1/oauth/tokens", data={**form, "scope": "PRINCIPAL_ROLE:ALL"})
        response.raise_for_status()
        grant = response.json()
        headers = {"Authorization": f"Bearer {grant['access_token']}"}
        started = time.monotonic()
        deadline = started + duration_s
        ramp_s = min(10.0, duration_s / 4)

        async def refresh_token() -> None:
            # Tokens are short-lived: fetch a new one well before the old one expires, as clients do.
            lifetime = float(grant.get("expires_in") or 3600)
            while True:
                await asyncio.sleep(max(1.0, lifetime / 2))
                fresh = await client.post("/v1/oauth/tokens", data=form)
                fresh.raise_for_status()
                headers["Authorization"] = f"Bearer {fresh.json()['access_token']}"

        async def request(tally: Tally, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
            t0 = time.perf_counter()
            try:
                response = await client.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                tally.latencies_s.append(time.perf_counter() - t0)
                tally.error(type(exc).__name__, str(exc))
                return None
            tally.latencies_s.append(time.perf_counter() - t0)
            if not response.is_success:
                tally.error(f"HTTP {response.status_code}", response.text)
                return None
            return response

        async def user(uid: int) -> None:
            nonlocal counter
            rng = random.Random(uid)
            await asyncio.sleep(rng.uniform(0, ramp_s))  # users arrive over the ramp, not all at once
            seq = 0
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                tally = tallies[kind]
                if kind == "loadTable":
                    response = await request(tally, "GET", LOAD_TABLE_PATH)
                    if response is not None:
                        metadata = response.json()["metadata"]
                        answers["loadTable"] = (metadata["table-uuid"], metadata.get("current-snapshot-id"))
                elif kind == "cached SQL":
                    response = await request(tally, "POST", "/api/v1/sql", json={"sql": rng.choice(DASHBOARD)})
                elif kind == "uncached SQL":
                    counter += 1
                    response = await request(tally, "POST", "/api/v1/sql", json={"sql": _ad_hoc(counter)})
                else:
                    seq += 1
                    sql = f"INSERT INTO dash.orders VALUES ({uid}, {seq}, {rng.randint(1, 99_999) / 100})"
                    if await request(tally, "POST", "/api/v1/sql", json={"sql": sql}) is not None:
                        acknowledged.add((uid, seq))
                await asyncio.sleep(min(rng.uniform(*think_s), max(0.0, deadline - time.monotonic())))

        async def sample_memory() -> None:
            while True:
                now = server.sample()
                memory.append((time.monotonic() - started, now.rss, now.processes))
                cpu[0] = now.cpu_s if cpu[0] < 0 else cpu[0]
                cpu[1] = now.cpu_s
                await asyncio.sleep(sample_every_s)

        async def expire_snapshots() -> None:
            while True:
                await asyncio.sleep(EXPIRE_EVERY_S)
                now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                sql = (
                    f"CALL system.expire_snapshots(table => 'dash.orders', older_than => TIMESTAMP '{now}', "
                    f"retain_last => {RETAIN_SNAPSHOTS})"
                )
                await request(maintenance, "POST", "/api/v1/sql", json={"sql": sql})

        background = [asyncio.create_task(sample_memory()), asyncio.create_task(refresh_token())]
        if expire:
            background.append(asyncio.create_task(expire_snapshots()))
        try:
            await asyncio.gather(*(user(uid) for uid in range(users)))
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        seconds = time.monotonic() - started
        cpu[1] = server.sample().cpu_s
    return LoadResult(tallies, seconds, acknowledged, memory, maintenance, answers, cpu[1] - max(cpu[0], 0.0))


# --- setup, floor and report -----------------------------------------------------------------


def _build_lake(path: Path, rows: int) -> tuple[str, str]:
    """The served lake: ``dash.sales`` (read by the dashboards), empty ``dash.orders``; a service principal."""
    with wharf.connect(path, user="bench") as lake:
        lake.sql("CREATE NAMESPACE dash")
        lake.sql(
            f"""
            CREATE TABLE dash.sales AS
            SELECT i AS id, DATE '2025-01-01' + (i % 365)::INTEGER AS day,
                   list_element(['north', 'south', 'east', 'west', 'central'], (i % 5 + 1)::INTEGER) AS region,
                   'p' || lpad((hash(i, 'p') % 40)::VARCHAR, 2, '0') AS product,
                   (hash(i, 'q') % 8 + 1)::INTEGER AS quantity,
                   ((hash(i, 'a') % 100000) / 100.0)::DECIMAL(10, 2) AS amount
            FROM range({rows}) AS r(i)
            """
        )
        lake.sql("CREATE TABLE dash.orders (user_id INTEGER, seq INTEGER, amount DOUBLE)")
        creds = lake.auth.create_principal("loadgen")
        # The load users are governed like any principal but the owner: a role gives them what they use.
        lake.sql("CREATE ROLE dashboards")
        lake.sql("GRANT SELECT ON NAMESPACE dash TO ROLE dashboards")
        lake.sql("GRANT INSERT, MAINTAIN ON TABLE dash.orders TO ROLE dashboards")
        lake.sql("GRANT ROLE dashboards TO USER loadgen")
    return creds.client_id, creds.client_secret


def _idle_rest_load_table(server: ServerProcess, credentials: tuple[str, str], n: int) -> tuple[list[float], Any]:
    """``n`` loadTable calls in a row from one client on an otherwise idle server."""
    samples: list[float] = []
    answer: Any = None
    with httpx.Client(base_url=server.url, timeout=60) as client:
        form = {"grant_type": "client_credentials", "client_id": credentials[0], "client_secret": credentials[1]}
        token = client.post("/v1/oauth/tokens", data=form).raise_for_status().json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(n):
            t0 = time.perf_counter()
            response = client.get(LOAD_TABLE_PATH, headers=headers).raise_for_status()
            samples.append(time.perf_counter() - t0)
            metadata = response.json()["metadata"]
            answer = (metadata["table-uuid"], metadata.get("current-snapshot-id"))
    return samples, answer


def _floor_load_table(lake: Path, n: int) -> tuple[list[float], Any]:
    """``n`` PyIceberg ``SqlCatalog.load_table`` calls on the lake's catalog database (the floor)."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("wharf", uri=f"sqlite:///{lake / 'wharf.db'}", warehouse=(lake / "warehouse").resolve().as_uri())
    samples: list[float] = []
    answer: Any = None
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            table = catalog.load_table(("dash", "sales"))
            samples.append(time.perf_counter() - t0)
            answer = (str(table.metadata.table_uuid), table.metadata.current_snapshot_id)
    finally:
        catalog.engine.dispose()
    return samples, answer


class LatencyResult(SystemResult):
    """A system's latencies summarised as percentiles: the median is p50; JSON holds percentiles, not every sample."""

    def __init__(self, latencies_s: list[float], **extra: Any) -> None:
        ordered = sorted(latencies_s)
        # 101 quantiles (p0 … p100): their median is the p50 of all requests.
        super().__init__(samples_s=[_percentile(ordered, q / 100) for q in range(101)] if ordered else [])
        self.count = len(ordered)
        p99 = _percentile(ordered, 0.99) if ordered else None
        self.extra = {
            "requests": self.count,
            "p50_ms": round(self.median_s * 1000, 3) if self.median_s is not None else None,
            "p99_ms": round(p99 * 1000, 3) if p99 is not None else None,
            "p99": f"{p99 * 1000:.1f} ms" if p99 is not None else "",
            **extra,
        }

    def as_json(self) -> dict[str, Any]:
        out = super().as_json()
        out["percentiles_s"] = out.pop("samples")  # p0, p1, …, p100
        return out


def _memory_summary(samples: list[tuple[float, int, int]], warmup_s: float) -> dict[str, Any]:
    """Min, max, and drift (mean of the last tenth vs the first tenth of the samples after warm-up)."""
    steady = [rss for t, rss, _ in samples if t >= warmup_s] or [rss for _, rss, _ in samples]
    if not steady:
        return {}
    tenth = max(1, len(steady) // 10)
    first, last = statistics.fmean(steady[:tenth]), statistics.fmean(steady[-tenth:])
    mib = 2**20
    return {
        "samples": len(steady),
        "warmup_s": round(warmup_s, 1),
        "processes": max(p for _, _, p in samples),
        "min_mib": round(min(steady) / mib, 1),
        "max_mib": round(max(steady) / mib, 1),
        "first_mib": round(first / mib, 1),
        "last_mib": round(last / mib, 1),
        "drift": round(last / first - 1, 4),
        "spread": round(max(steady) / min(steady) - 1, 4),
    }


def run(opts: Options) -> Report:
    users = QUICK_USERS if opts.quick else USERS
    duration_s = (QUICK_S if opts.quick else SOAK_S) * (opts.scale if opts.scale is not None else 1.0)
    rows = QUICK_SALES_ROWS if opts.quick else SALES_ROWS
    think_s = QUICK_THINK_S if opts.quick else THINK_S
    idle_n = 100 if opts.quick else 1000
    title = f"server: {users} users × {duration_s:.0f} s on wharf serve --workers {WORKERS}"
    report = Report(
        "server",
        title,
        opts,
        PEERS,
        params={
            "users": users,
            "duration_s": duration_s,
            "workers": WORKERS,
            "think_s": think_s,
            "weights": WEIGHTS,
            "sales_rows": rows,
            "load_generator": "asyncio + httpx.AsyncClient, one connection per user, in the bench process",
        },
    )
    report.issue = 12
    report.extra_columns = [
        ("p99", "wharf", "p99"),
        ("requests", "wharf", "requests"),
        ("req/s", "wharf", "per_s"),
        ("errors", "wharf", "errors"),
        ("floor p99", "sqlcatalog", "p99"),
    ]
    root = run_dir(opts.data_dir, "server")
    lake_path = root / "lake"
    log(f"server: building the lake ({rows:,} sales rows)")
    credentials = _build_lake(lake_path, rows)
    server = ServerProcess(lake_path, free_port(), WORKERS, root / "server.log")
    try:
        server.wait_ready()
        log(f"server: {server.url} ready ({server.sample().processes} processes); idle loadTable × {idle_n}")
        idle_samples, idle_answer = _idle_rest_load_table(server, credentials, idle_n)
        load_before = os.getloadavg()
        log(f"server: {users} users for {duration_s:.0f} s")
        load = asyncio.run(
            _load(
                server,
                credentials,
                users,
                duration_s,
                sample_every_s=0.25 if opts.quick else 1.0,
                expire=not opts.quick,
                think_s=think_s,
            )
        )
        load_after = os.getloadavg()
    finally:
        exit_code = server.stop()
    log(f"server: stopped (exit {exit_code}); floor: SqlCatalog.load_table × {idle_n}")
    floor_samples, floor_answer = _floor_load_table(lake_path, idle_n)
    with wharf.connect(lake_path, user="bench") as lake:
        found = {(int(u), int(s)) for u, s in lake.sql("SELECT user_id, seq FROM dash.orders").fetchall()}
        snapshots = lake.sql("SELECT count(*) FROM dash.orders.snapshots").scalar()

    for kind, tally in load.tallies.items():
        errors = sum(tally.errors.values())
        mine = LatencyResult(tally.latencies_s, per_s=round(len(tally.latencies_s) / load.seconds, 1), errors=errors)
        if errors:
            mine.error = None  # errors are counted, not fatal: the table shows them
            mine.extra["error_kinds"] = dict(tally.errors)
            mine.extra["first_error"] = tally.first_error
        systems: dict[str, SystemResult] = {"wharf": mine}
        answers: dict[str, Any] = {}
        if kind == "loadTable":
            peer = LatencyResult(floor_samples)
            if opts.check and "loadTable" in load.answers:
                peer.agrees = floor_answer == load.answers["loadTable"]
            systems["sqlcatalog"] = peer
        report.add(CaseResult(CASE_NAMES[kind], {"weight": WEIGHTS[kind]}, systems, answers))
    idle = LatencyResult(idle_samples, per_s=round(len(idle_samples) / sum(idle_samples), 1), errors=0)
    idle_peer = LatencyResult(floor_samples)
    idle_peer.agrees = floor_answer == idle_answer if opts.check else None
    report.add(CaseResult(IDLE_CASE, {"requests": idle_n}, {"wharf": idle, "sqlcatalog": idle_peer}))

    memory = _memory_summary(load.memory, warmup_s=min(60.0, duration_s * 0.2))
    lost = load.acknowledged - found
    unacknowledged = found - load.acknowledged
    errors = sum(sum(t.errors.values()) for t in load.tallies.values())
    total = sum(len(t.latencies_s) for t in load.tallies.values())
    report.params |= {
        "load_seconds": round(load.seconds, 1),
        "requests": total,
        "throughput_per_s": round(total / load.seconds, 1),
        "errors": errors,
        "commits_acknowledged": len(load.acknowledged),
        "rows_found": len(found),
        "lost_commits": len(lost),
        "rows_without_acknowledgement": len(unacknowledged),
        "orders_snapshots_at_end": snapshots,
        "maintenance_runs": len(load.maintenance.latencies_s),
        "maintenance_errors": dict(load.maintenance.errors),
        "memory": memory,
        "memory_samples_mib": [(round(t, 1), round(rss / 2**20, 1)) for t, rss, _ in load.memory],
        "server_cpu_s": round(load.server_cpu_s, 1),
        "server_cores_used": round(load.server_cpu_s / load.seconds, 2),
        "server_cpu_ms_per_request": round(load.server_cpu_s / max(total, 1) * 1000, 2),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "server_exit_code": exit_code,
        "server_log": str(server.log_path),
    }

    def p99_of(kind: str) -> float | None:
        value = report.cases[list(WEIGHTS).index(kind)].systems["wharf"].extra.get("p99_ms")
        return float(value) if value is not None else None

    load_p99, cached_p99 = p99_of("loadTable"), p99_of("cached SQL")
    report.targets += [
        Target(
            "loadTable p99 under load",
            "< 20 ms",
            f"{load_p99:.1f} ms" if load_p99 else "n/a",
            None if load_p99 is None else load_p99 < 20,
        ),
        Target(
            "cached query p99 under load",
            "< 100 ms",
            f"{cached_p99:.1f} ms" if cached_p99 else "n/a",
            None if cached_p99 is None else cached_p99 < 100,
        ),
        Target("errors", "0", f"{errors} of {total:,} requests", errors == 0),
        Target(
            "no lost commits",
            "every acknowledged commit is a row",
            f"{len(load.acknowledged):,} acknowledged, {len(found):,} rows found, {len(lost)} lost",
            not lost,
        ),
    ]
    if memory:
        report.targets.append(
            Target(
                "server memory flat over the soak",
                "drift within ±10%",
                f"{memory['first_mib']:,.0f} → {memory['last_mib']:,.0f} MiB ({memory['drift']:+.1%}); "
                f"min {memory['min_mib']:,.0f}, max {memory['max_mib']:,.0f} MiB over {memory['processes']} processes",
                abs(memory["drift"]) <= 0.10,
            )
        )
    report.notes += [
        f"{total:,} requests in {load.seconds:.0f} s = {total / load.seconds:,.1f} requests/s; "
        f"{users} users, think time {think_s[0]}–{think_s[1]} s, mix {WEIGHTS}",
        "latencies are client side (HTTP round trip included); the load generator shares the machine's cores with the server",
        f"the server's processes used {load.server_cpu_s:.1f} CPU s during the load: {load.server_cpu_s / load.seconds:.2f} of "
        f"{os.cpu_count()} cores, {load.server_cpu_s / max(total, 1) * 1000:.1f} ms of CPU per request (all types)",
        f"load average (1, 5, 15 min) before the load {tuple(round(x, 2) for x in load_before)}, "
        f"after {tuple(round(x, 2) for x in load_after)}",
        "sqlcatalog = the floor: PyIceberg SqlCatalog.load_table of the same table in the bench process, "
        "one caller, after the soak, no HTTP or authentication",
        f"commits: {len(load.acknowledged):,} acknowledged, {len(found):,} rows in dash.orders "
        f"({len(unacknowledged)} without an acknowledgement); snapshots left after expiry: {snapshots}",
    ]
    if memory:
        report.notes.append(
            f"server RSS (sum of {memory['processes']} processes) after {memory['warmup_s']:.0f} s warm-up: "
            f"min {memory['min_mib']} MiB, max {memory['max_mib']} MiB, first tenth {memory['first_mib']} MiB, "
            f"last tenth {memory['last_mib']} MiB, drift {memory['drift']:+.1%}"
        )
    for kind, tally in load.tallies.items():
        if tally.first_error:
            report.notes.append(f"{kind}: first error {tally.first_error}")
    if load.maintenance.first_error:
        report.notes.append(f"maintenance (expire_snapshots): first error {load.maintenance.first_error}")
    return report
