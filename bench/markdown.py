"""``python -m bench.markdown [name …]``: the latest JSON results as Markdown tables (for docs/performance.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.harness import RESULTS_DIR, WHARF, _fmt_value


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit != "s":
        return f"{value:,.0f} {unit}"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def _cell(result: dict[str, Any], unit: str) -> str:
    if result.get("error"):
        error = result["error"]
        return "crashed (SIGSEGV)" if "SIGSEGV" in error else "timeout" if "Timeout" in error else "error"
    shown = _fmt(result.get("median"), unit)
    return shown + ("¹" if len(result.get("samples", [])) == 1 else "")


def render(report: dict[str, Any], extra: list[tuple[str, str, str]] = ()) -> str:  # type: ignore[assignment]
    unit = report.get("unit", "s")
    systems = list(report["systems"])
    others = [s for s in systems if s != WHARF]
    head = ["case", *systems, *(f"Wharf ÷ {s}" for s in others), *(h for h, _, _ in extra)]
    lines = [
        f"**{report['title']}** — `{report['command']}`, {report['started_at']}",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |",
    ]
    for case in report["cases"]:
        row = [case["name"]]
        row += [_cell(case["systems"].get(s, {}), unit) for s in systems]
        for s in others:
            ratio = case["ratios"].get(f"{WHARF}/{s}")
            row.append(f"{ratio:.2f}" if ratio is not None else "")
        for _, system, key in extra:
            value = case["systems"].get(system, {}).get("extra", {}).get(key)
            row.append(_fmt_value(value, key) if value is not None else "")
        lines.append("| " + " | ".join(row) + " |")
    gm = report["geometric_mean"]
    lines.append(
        "| **geometric mean** | "
        + " | ".join([""] * len(systems))
        + " | "
        + " | ".join(f"**{gm[f'{WHARF}/{s}']:.2f}**" if gm.get(f"{WHARF}/{s}") else "" for s in others)
        + (" | " + " | ".join([""] * len(extra)) if extra else "")
        + " |"
    )
    lines.append("")
    if report.get("targets"):
        lines += ["| target | wanted | measured | met |", "| --- | --- | --- | :-: |"]
        for t in report["targets"]:
            met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
            lines.append(f"| {t['name']} | {t['target']} | {t['measured']} | {met} |")
        lines.append("")
    return "\n".join(lines)


EXTRA = {
    "pruning": [
        ("files Wharf", "wharf", "files"),
        ("matching", "wharf", "files_matching"),
        ("files DuckDB", "duckdb", "files"),
        ("bytes Wharf", "wharf", "bytes"),
        ("bytes DuckDB", "duckdb", "bytes"),
    ],
    "merge": [
        ("files rewritten", "duckdb", "files_rewritten"),
        ("rows changed", "wharf", "changed_rows"),
        ("delete files", "wharf", "delete_files"),
        ("compaction s", "compacted", "compaction_s"),
    ],
    "compaction": [
        ("files before (data+deletes)", "uncompacted", "files"),
        ("bytes before", "uncompacted", "bytes"),
        ("plan ms before", "uncompacted", "plan_ms"),
        ("files after", "wharf", "files"),
        ("bytes after", "wharf", "bytes"),
        ("plan ms after", "wharf", "plan_ms"),
    ],
    "ingest": [
        ("Wharf rows/s", "wharf", "rows_per_s"),
        ("pyarrow rows/s", "pyarrow", "rows_per_s"),
        ("Wharf commits/s", "wharf", "commits_per_s"),
        ("PyIceberg commits/s", "pyiceberg", "commits_per_s"),
    ],
    "memory": [("Wharf s", "wharf", "seconds"), ("DuckDB s", "duckdb", "seconds")],
}


def main(argv: list[str]) -> int:
    names = argv or ["scan", "pruning", "merge", "ingest", "memory", "compaction"]
    for name in names:
        path = Path(name) if name.endswith(".json") else RESULTS_DIR / f"{name}-latest.json"
        if not path.exists():
            print(f"<!-- no results for {name} -->\n")
            continue
        report = json.loads(path.read_text())
        print(render(report, EXTRA.get(report["benchmark"], [])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
