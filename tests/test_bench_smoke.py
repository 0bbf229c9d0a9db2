"""Smoke test of the benchmark suite: every benchmark's quick mode runs once.

Checks that each writes its JSON result with the expected cases and that Wharf's answers equal
the other systems' answers. No timing assertions: timings belong to ``python -m bench``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.__main__ import main

EXPECTED_CASES = {
    "scan": {f"Q{n:02d} {layout}" for n in range(1, 23) for layout in ("unpartitioned", "partitioned")},
    "pruning": {"one day", "one hour", "one week", "key lookup"},
    "merge": {
        "merge 1% into 10k (single key)",
        "merge 10% into 10k (composite key)",
        "merge 0.2k rows into 10k (composite key)",
        "update 1% of 10k",
        "delete 1% of 10k",
        "merge 1% into 100k (single key)",
        "update 1% of 100k",
        "delete 1% of 100k",
        "merge 1% into 10k (single key, merge-on-read)",
        "scan after merge 10% into 10k (single key, merge-on-read)",
    },
    "compaction": {
        "ingest: 20 MERGE commits",
        "compact (rewrite_data_files)",
        "compact deletes (rewrite_data_files)",
        *(
            f"{q} · {stage}"
            for q in ("Q1 count", "Q2 min(age)", "Q3 avg(age)", "Q4 top 100")
            for stage in ("streamed", "after delete")
        ),
    },
    "ingest": {"append 100,000 rows", "20 appends of 1,000 rows"},
    "memory": {"Q01 (aggregation)", "Q09 (joins)", "SELECT * FROM lineitem, streamed"},
    "latency": {
        "SELECT 1",
        "trivial query on an Iceberg table",
        "3-table join, repeated",
        "3-table join, new shape",
        "3-table join, new literals",
        "point lookup, 10,000 rows / 10 files",
        *(f"append 1 row at {n} snapshots" for n in (10, 100, 300)),
    },
    "concurrency": {"2 writers × 3 appends", "2 writers × 3 updates"},
    "history": {"changelog of 10 snapshots (20,000 rows)", "SCD2 view of 200,000 rows, 2 × 5% churn"},
    "cdc": {"apply 10k events onto 10k rows (copy-on-write)", "apply 10k events onto 10k rows (merge-on-read)"},
    "auth": {"verify signed token (JWT) × 200", "verify personal access token × 200", "password login (argon2 defaults) × 1"},
    "governance": {"Q01", "Q03", "Q10", "Q22"},
    "latency_pairs": {
        "3-table join, new shape",
        "3-table join, new literals",
        "3-table join, repeated",
        "append 1 row, 8 to 13 snapshots",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CASES))
def test_quick_benchmark(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    assert main([name, "--quick", "--warmup", "0", "--data-dir", str(tmp_path / "data"), "--results-dir", str(results)]) == 0
    report = json.loads((results / f"{name}-latest.json").read_text())
    cases = {c["name"]: c for c in report["cases"]}
    assert EXPECTED_CASES[name] <= set(cases), f"missing cases: {EXPECTED_CASES[name] - set(cases)}"
    assert report["machine"]["cores"] and report["machine"]["versions"]["duckdb"]
    compared = 0
    for case in cases.values():
        wharf = case["systems"]["wharf"]
        assert wharf["error"] is None, f"{name} / {case['name']}: Wharf failed: {wharf['error']}"
        assert wharf["median"] is not None
        for system, result in case["systems"].items():
            # A peer may fail (PyIceberg's upsert crashes on composite keys); whoever answered agrees.
            if result["error"] is None:
                assert result["agrees_with_reference"] is not False, f"{name} / {case['name']}: {system} differs"
                compared += result["agrees_with_reference"] is True
    assert compared >= len(cases), "answers were not compared"
    assert "geometric mean" in capsys.readouterr().out


def test_quick_quality_benchmark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Wharf's side always; Great Expectations' side when its venv (bench/.venv-bench-ge) exists."""
    from bench.quality import GE_VENV

    results = tmp_path / "results"
    args = ["quality", "--quick", "--warmup", "0", "--data-dir", str(tmp_path / "data"), "--results-dir", str(results)]
    assert main(args) == 0
    report = json.loads((results / "quality-latest.json").read_text())
    (case,) = report["cases"]
    wharf = case["systems"]["wharf"]
    assert wharf["error"] is None and wharf["median"] is not None
    assert wharf["extra"]["failed"] == []  # all 50 checks pass on the generated data
    assert wharf["extra"]["scans"] == 3  # two batched passes + the CustomSql query
    if (GE_VENV / "bin" / "python").exists():
        for peer in ("great_expectations", "ge_pandas"):  # GE's SQL and pandas backends
            ge = case["systems"][peer]
            assert ge["error"] is None, ge
            assert ge["agrees_with_reference"] is True
    else:
        assert "great_expectations" not in case["systems"]
        assert "Great Expectations not run" in capsys.readouterr().out


def test_quick_server_benchmark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``wharf serve --workers 2`` with authentication under a few seconds of mixed load: no errors, no lost commits."""
    from bench.server import CASE_NAMES, IDLE_CASE

    results = tmp_path / "results"
    args = ["server", "--quick", "--data-dir", str(tmp_path / "data"), "--results-dir", str(results)]
    assert main(args) == 0
    report = json.loads((results / "server-latest.json").read_text())
    cases = {c["name"]: c for c in report["cases"]}
    assert set(cases) == {*CASE_NAMES.values(), IDLE_CASE}
    for case in cases.values():
        wharf = case["systems"]["wharf"]
        assert wharf["error"] is None and wharf["extra"]["errors"] == 0, wharf
        assert wharf["median"] is not None and wharf["extra"]["requests"] > 0
    for name in (CASE_NAMES["loadTable"], IDLE_CASE):  # REST and PyIceberg's SqlCatalog load the same table
        assert cases[name]["systems"]["sqlcatalog"]["agrees_with_reference"] is True
    params = report["params"]
    assert params["errors"] == 0 and params["server_exit_code"] == 0
    assert params["commits_acknowledged"] > 0 and params["lost_commits"] == 0
    assert params["rows_found"] == params["commits_acknowledged"]  # and no row without its acknowledgement
    assert params["memory"]["processes"] >= 3  # the supervisor and two workers were sampled
    out = capsys.readouterr().out
    assert "loadTable p99 under load" in out and "no lost commits" in out
