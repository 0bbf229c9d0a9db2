"""The timing harness shared by every benchmark.

A benchmark is a list of ``Case`` objects; each case has one ``Runner`` per system (Wharf and
its peers). ``measure`` runs the systems of a case alternately, round after round (warm-up
rounds first, rotating which system goes first), so drift of the machine (other processes,
page cache, thermal) hits every system alike. A runner that raises is recorded with its error
and not run again for that case; the benchmark goes on.

``Report`` collects the measured cases, computes medians, the Wharf/peer ratio per case and
their geometric means, checks the targets of issue 3, prints a rich table and writes JSON to
``bench/results/<name>-<timestamp>.json`` plus ``<name>-latest.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WHARF = "wharf"


@dataclass
class Options:
    """What the command line chose; every benchmark reads its sizes from here."""

    scale: float | None = None
    quick: bool = False
    warmup: int | None = None
    reps: int | None = None
    budget_s: float | None = None
    data_dir: Path = BENCH_DIR / "data"
    results_dir: Path = RESULTS_DIR
    check: bool = True
    echo: bool = True


@dataclass
class Runner:
    """One system's way of running a case.

    ``run`` is timed and returns the answer (compared across systems when ``Case.compare``);
    ``setup`` runs untimed before every call (e.g. restore a table a write changed);
    ``extra`` turns the last answer into extra columns (files opened, bytes, commits/s …).
    """

    system: str
    run: Callable[[], Any]
    setup: Callable[[], Any] | None = None
    extra: Callable[[Any], dict[str, Any]] | None = None
    max_reps: int | None = None


@dataclass
class Timed:
    """Returned by a runner that times itself (e.g. work done in a child process): ``seconds`` is used."""

    answer: Any
    seconds: float


@dataclass
class Case:
    name: str
    runners: list[Runner]
    params: dict[str, Any] = field(default_factory=dict)
    compare: Callable[[Any, Any], bool] | None = None
    reference: str | None = None  # the system whose answer the others are compared with


@dataclass
class SystemResult:
    samples_s: list[float] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    agrees: bool | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.samples_s) if self.samples_s else None

    def as_json(self) -> dict[str, Any]:
        return {
            "median": self.median_s,
            "samples": [round(s, 6) for s in self.samples_s],
            "error": self.error,
            "agrees_with_reference": self.agrees,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass
class CaseResult:
    name: str
    params: dict[str, Any]
    systems: dict[str, SystemResult]
    answers: dict[str, Any] = field(default_factory=dict, repr=False)  # last answer per system (not written)

    def ratio(self, peer: str, system: str = WHARF) -> float | None:
        mine, theirs = self.systems.get(system), self.systems.get(peer)
        if not mine or not theirs or mine.median_s is None or not theirs.median_s:
            return None
        return mine.median_s / theirs.median_s


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def measure(case: Case, opts: Options, *, warmup: int, reps: int, budget_s: float) -> CaseResult:
    """Run the case's systems alternately: ``warmup`` untimed rounds, then up to ``reps`` timed ones.

    Stops early (after at least one timed round) once the case has used ``budget_s`` seconds.
    """
    results = {r.system: SystemResult() for r in case.runners}
    answers: dict[str, Any] = {}
    started = time.perf_counter()
    rounds = warmup + max(1, reps)
    for round_no in range(rounds):
        timed = round_no >= warmup
        shift = round_no % len(case.runners)
        order = case.runners[shift:] + case.runners[:shift]
        for runner in order:
            res = results[runner.system]
            if res.error is not None:
                continue
            if timed and runner.max_reps is not None and len(res.samples_s) >= runner.max_reps:
                continue
            if not timed and runner.max_reps is not None and runner.max_reps <= 1:
                continue  # an expensive runner measured once: no warm-up round either
            try:
                if runner.setup is not None:
                    runner.setup()
                t0 = time.perf_counter()
                answer = runner.run()
                elapsed = time.perf_counter() - t0
                if isinstance(answer, Timed):
                    answer, elapsed = answer.answer, answer.seconds
            except Exception as exc:  # noqa: BLE001 - a failing system is a result, not a crash
                res.error = _short_error(exc)
                if os.environ.get("WHARF_BENCH_TRACEBACK"):
                    traceback.print_exc()
                continue
            if timed:
                res.samples_s.append(elapsed)
            answers[runner.system] = answer
        if timed and time.perf_counter() - started > budget_s:
            break
    for runner in case.runners:
        res = results[runner.system]
        if runner.extra is not None and runner.system in answers:
            try:
                res.extra = runner.extra(answers[runner.system])
            except Exception as exc:  # noqa: BLE001
                res.extra = {"extra_error": _short_error(exc)}
    if case.compare is not None and opts.check:
        ref = case.reference or WHARF
        if ref in answers:
            for system, answer in answers.items():
                if system != ref:
                    try:
                        results[system].agrees = bool(case.compare(answers[ref], answer))
                    except Exception as exc:  # noqa: BLE001
                        results[system].agrees = False
                        results[system].extra["compare_error"] = _short_error(exc)
    return CaseResult(case.name, case.params, results, answers)


# --- comparing answers ---------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # Floats are rounded in the key only, so rows that differ in the last bits sort alike.
    return tuple((v is None, type(v).__name__, float(f"{v:.6g}") if isinstance(v, float) else v) for v in row)


def normalized_rows(table: Any, ordered: bool = False) -> list[tuple[Any, ...]]:
    """Rows of an Arrow table as tuples (decimals as floats), sorted unless ``ordered``."""
    columns = [c.to_pylist() for c in table.columns]
    rows = [tuple(_norm(v) for v in row) for row in zip(*columns, strict=True)] if columns else []
    return rows if ordered else sorted(rows, key=_sort_key)


def _close(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or isinstance(a, str) or isinstance(b, str):
            return a == b
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    return a == b


def same_rows(a: Any, b: Any, rel: float = 1e-6) -> bool:
    """Arrow tables with equal rows, as multisets; floats (and decimals) equal within ``rel``."""
    if a.num_rows != b.num_rows or a.num_columns != b.num_columns:
        return False
    return all(
        len(x) == len(y) and all(_close(u, v, rel) for u, v in zip(x, y, strict=True))
        for x, y in zip(normalized_rows(a), normalized_rows(b), strict=True)
    )


# --- the machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001
        return "?"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=BENCH_DIR, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except Exception:  # noqa: BLE001
        return None


def machine_info() -> dict[str, Any]:
    memory = _memory_bytes()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1) if memory else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            name: _version(dist)
            for name, dist in [
                ("wharf", "wharf-lakehouse"),
                ("duckdb", "duckdb"),
                ("pyiceberg", "pyiceberg"),
                ("pyarrow", "pyarrow"),
                ("sqlglot", "sqlglot"),
            ]
        },
        "git_commit": _git_commit(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# --- the report -----------------------------------------------------------------------------


@dataclass
class Peer:
    system: str
    role: str  # "limit" (physical limit) or "peer" (what users have today)
    label: str


@dataclass
class Target:
    """One line of issue 3's target table, evaluated on the measured numbers."""

    name: str
    target: str
    measured: str
    met: bool | None  # None: could not be evaluated (a system failed / not measured)


def geometric_mean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


@dataclass
class Report:
    benchmark: str
    title: str
    opts: Options
    peers: list[Peer]
    params: dict[str, Any] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (column header, system, key of that system's ``extra``)
    extra_columns: list[tuple[str, str, str]] = field(default_factory=list)
    unit: str = "s"  # what the measurements are: seconds, or "MiB" for the memory benchmark
    issue: int = 3  # the issue whose targets ``targets`` checks (printed with them)
    started: float = field(default_factory=time.time)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def add(self, result: CaseResult) -> CaseResult:
        self.cases.append(result)
        if self.opts.echo:
            parts = []
            for system, res in result.systems.items():
                text = f"{res.median_s:.3f}s" if res.median_s is not None else (f"ERROR {res.error}" if res.error else "-")
                parts.append(f"{system}={text}")
            print(f"  [{self.benchmark}] {result.name}: " + ", ".join(parts), file=sys.stderr, flush=True)
        return result

    def ratios(self, peer: str, cases: list[CaseResult] | None = None) -> list[float]:
        return [r for c in (cases or self.cases) if (r := c.ratio(peer)) is not None]

    def geomean(self, peer: str, cases: list[CaseResult] | None = None) -> float | None:
        return geometric_mean(self.ratios(peer, cases))

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "title": self.title,
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "started_at": dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - self.started, 1),
            "quick": self.opts.quick,
            "unit": self.unit,
            "params": self.params,
            "machine": self.machine,
            "systems": {p.system: {"role": p.role, "label": p.label} for p in self.peers},
            "cases": [
                {
                    "name": c.name,
                    "params": c.params,
                    "systems": {s: r.as_json() for s, r in c.systems.items()},
                    "ratios": {f"{WHARF}/{p.system}": c.ratio(p.system) for p in self.peers if p.system != WHARF},
                }
                for c in self.cases
            ],
            "geometric_mean": {f"{WHARF}/{p.system}": self.geomean(p.system) for p in self.peers if p.system != WHARF},
            "targets": [t.__dict__ for t in self.targets],
            "notes": self.notes,
        }

    def write(self) -> Path:
        out = self.opts.results_dir
        out.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.fromtimestamp(self.started, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        data = json.dumps(self.as_json(), indent=2, default=str) + "\n"
        path = out / f"{self.benchmark}-{stamp}.json"
        path.write_text(data)
        (out / f"{self.benchmark}-latest.json").write_text(data)
        return path

    def print(self) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(width=max(150, Console().width))
        others = [p for p in self.peers if p.system != WHARF]
        table = Table(
            title=f"{self.title}  (medians; ÷x = Wharf / x" + (", < 1: Wharf is faster)" if self.unit == "s" else ")"),
            caption=" · ".join(f"{p.system} = {p.label} ({p.role})" for p in others),
        )
        table.add_column("case", no_wrap=True)
        systems = [WHARF] + [p.system for p in others]
        for system in systems:
            table.add_column(system, justify="right", no_wrap=True)
        for p in others:
            table.add_column(f"÷{p.system}", justify="right", no_wrap=True)
        for header, _system, _key in self.extra_columns:
            table.add_column(header, justify="right")
        table.add_column("answers", justify="center")
        for case in self.cases:
            row = [case.name]
            for system in systems:
                res = case.systems.get(system)
                if res is None:
                    row.append("")
                elif res.error:
                    row.append(f"[red]{_error_label(res.error)}[/red]")
                elif res.median_s is None:
                    row.append("-")
                else:
                    shown = _fmt_seconds(res.median_s) if self.unit == "s" else f"{res.median_s:,.0f} {self.unit}"
                    row.append(shown + ("" if len(res.samples_s) > 1 else "¹"))
            for p in others:
                ratio = case.ratio(p.system)
                row.append(f"{ratio:.2f}" if ratio is not None else "")
            for _header, system, key in self.extra_columns:
                res = case.systems.get(system)
                row.append(_fmt_value(res.extra[key], key) if res is not None and key in res.extra else "")
            agreements = [r.agrees for r in case.systems.values() if r.agrees is not None]
            row.append("" if not agreements else ("[green]equal[/green]" if all(agreements) else "[red]DIFFER[/red]"))
            table.add_row(*row)
        table.add_section()
        gm_row = ["geometric mean"] + [""] * len(systems)
        for p in others:
            gm = self.geomean(p.system)
            gm_row.append(f"{gm:.2f}" if gm is not None else "")
        gm_row += [""] * (len(self.extra_columns) + 1)
        table.add_row(*gm_row)
        console.print(table)
        console.print("¹ measured once (expensive case or time budget)", style="dim")
        if self.targets:
            t = Table(title=f"{self.title}: targets (issue {self.issue})")
            t.add_column("target")
            t.add_column("wanted")
            t.add_column("measured")
            t.add_column("met", justify="center")
            for target in self.targets:
                met = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "[yellow]n/a[/yellow]"}[target.met]
                t.add_row(target.name, target.target, target.measured, met)
            console.print(t)
        for case in self.cases:
            for system, res in case.systems.items():
                if res.error:
                    console.print(f"{case.name} / {system}: {res.error}", style="red", soft_wrap=True)
        for note in self.notes:
            console.print(f"note: {note}", style="dim")
        m = self.machine
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        console.print(
            f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}; "
            f"{versions}; commit {m['git_commit']}",
            style="dim",
        )


def _error_label(error: str) -> str:
    if "crashed" in error:
        return "crashed"
    if error.startswith("TimeoutError"):
        return "timeout"
    return "error"


def _fmt_seconds(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def _fmt_value(value: Any, key: str = "") -> str:
    if key.endswith("bytes") and isinstance(value, (int, float)):
        return f"{value / 2**20:,.1f} MiB" if value >= 2**20 else f"{value / 1024:,.0f} KiB"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)
