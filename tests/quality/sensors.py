"""The sensor-readings scenario the quality tests share: a table, a ruleset, good and bad readings.

Fixtures live here (not in a conftest) and are imported by the test modules that use them.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

import wharf

TABLE = "iot.readings"
RULESET = "sensor_rules"
RULES = 'Rules = [ ColumnValues "temperature" between -10 and 50, IsComplete "room", RowCount > 0 ]'
RANGE_RULE = 'ColumnValues "temperature" between -10 and 50'

_T0 = dt.datetime(2025, 3, 1, 8, 0)


def readings(rows: list[tuple[str, int, float | None, float]]) -> pa.Table:
    """Readings as (room, minutes after 2025-03-01 08:00, temperature, humidity)."""
    return pa.table(
        {
            "room": pa.array([r[0] for r in rows], pa.string()),
            "time": pa.array([_T0 + dt.timedelta(minutes=r[1]) for r in rows], pa.timestamp("us")),
            "temperature": pa.array([r[2] for r in rows], pa.float64()),
            "humidity": pa.array([r[3] for r in rows], pa.float64()),
        }
    )


GOOD = readings([("lab", 10, 21.0, 40.0), ("hall", 10, 19.5, 45.0)])
# Two impossible temperatures among four readings.
MIXED = readings([("lab", 20, 22.0, 41.0), ("hall", 20, 999.0, 44.0), ("attic", 20, -40.0, 60.0), ("cellar", 20, 12.5, 70.0)])
BAD = readings([("lab", 30, 85.0, 40.0)])


@pytest.fixture
def sensors(lake: wharf.Lakehouse) -> wharf.Lakehouse:
    """``iot.readings`` with two good readings on main, and the ruleset ``sensor_rules`` on it."""
    lake.sql("CREATE SCHEMA iot")
    lake.sql(f"CREATE TABLE {TABLE} (room VARCHAR, time TIMESTAMP, temperature DOUBLE, humidity DOUBLE)")
    lake.table(TABLE).append(GOOD)
    lake.quality.create_ruleset(RULESET, TABLE, RULES)
    return lake


def main_head(lake: wharf.Lakehouse) -> int | None:
    return lake.table(TABLE).current_snapshot_id()


def temperatures(lake: wharf.Lakehouse, table: str = TABLE) -> list[float]:
    return [r[0] for r in lake.sql(f"SELECT temperature FROM {table} ORDER BY temperature").fetchall()]
