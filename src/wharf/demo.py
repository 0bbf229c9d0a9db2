"""The demo lake: a ticket-sales dataset and a guided tour of Wharf's Iceberg features.

The data is generated inside DuckDB from ``range()`` and ``hash()`` — deterministic (the same
rows on every run) and fast (100k sales in well under a second). Tables, in namespace ``tickets``:

- ``venues``   (12 rows)     where events happen
- ``events``   (240 rows)    concerts, matches, shows; each at a venue, with a base price
- ``sales``    (``rows``)    ticket orders with a timestamp, partitioned by ``months(sold_at)``
- ``products`` (12 rows)     merchandise, parking and upgrades sold alongside tickets

>>> import wharf
>>> from wharf import demo
>>> lake = wharf.connect("/tmp/wharf-demo")                              # doctest: +SKIP
>>> demo.build(lake, rows=10_000)                                         # doctest: +SKIP
>>> for step in demo.tour(lake): print(step.title)                        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wharf.errors import NotFound
from wharf.lakehouse import Lakehouse
from wharf.result import Result

NAMESPACE = "tickets"
DEFAULT_ROWS = 100_000

_VENUES = """
CREATE TABLE tickets.venues AS
SELECT * FROM (VALUES
  (1, 'Harbour Arena', 'Rotterdam', 'NL', 16000),
  (2, 'Old Dock Hall', 'Hamburg', 'DE', 4200),
  (3, 'Canal Street Theatre', 'Amsterdam', 'NL', 1400),
  (4, 'Pier 9 Stadium', 'Antwerp', 'BE', 38000),
  (5, 'The Lighthouse', 'Copenhagen', 'DK', 2500),
  (6, 'Riverside Amphitheatre', 'Lyon', 'FR', 9000),
  (7, 'Salt Warehouse', 'Gdansk', 'PL', 3100),
  (8, 'Crane Hall', 'Bristol', 'GB', 2200),
  (9, 'Quayside Dome', 'Newcastle', 'GB', 11000),
  (10, 'Tidewater Club', 'Lisbon', 'PT', 900),
  (11, 'Anchor Park', 'Bilbao', 'ES', 27000),
  (12, 'Boathouse Stage', 'Gothenburg', 'SE', 1800)
) AS v(venue_id, name, city, country, capacity)
"""

# 240 events across 2025: a performer (adjective + noun), a category and a base price per category.
_EVENTS = """
CREATE TABLE tickets.events AS
SELECT
  i + 1 AS event_id,
  (hash(i, 'venue') % 12 + 1)::INTEGER AS venue_id,
  list_element(['The Velvet', 'Northern', 'Electric', 'Midnight', 'Golden', 'Silent', 'Wild', 'Blue'],
               (hash(i, 'adj') % 8 + 1)::INTEGER) || ' ' ||
  list_element(['Harbours', 'Foxes', 'Lanterns', 'Tides', 'Rivals', 'Echoes', 'Sailors', 'Comets'],
               (hash(i, 'noun') % 8 + 1)::INTEGER) AS name,
  list_element(['concert', 'concert', 'concert', 'sports', 'theatre', 'comedy'],
               (hash(i, 'cat') % 6 + 1)::INTEGER) AS category,
  TIMESTAMP '2025-01-10 19:30:00' + to_days((i * 353 // 240)::INTEGER) AS starts_at,
  (list_element([45.0, 45.0, 45.0, 60.0, 38.0, 25.0], (hash(i, 'cat') % 6 + 1)::INTEGER)
     + hash(i, 'price') % 30)::DECIMAL(8, 2) AS base_price
FROM range(240) AS r(i)
"""

# Popular events sell more (the square skews towards low event ids); tickets are bought up to
# 90 days before the show; VIP costs 3x, premium 1.8x the base price.
_SALES_SELECT = """
SELECT
  {offset} + i + 1 AS sale_id,
  e.event_id,
  e.starts_at - to_seconds((hash(i, 'ahead') % (90 * 86400))::BIGINT) AS sold_at,
  list_element(['web', 'web', 'web', 'app', 'app', 'box office'], (hash(i, 'chan') % 6 + 1)::INTEGER) AS channel,
  t.tier,
  (hash(i, 'qty') % 4 + 1)::INTEGER AS quantity,
  (e.base_price * t.factor * (hash(i, 'qty') % 4 + 1))::DECIMAL(10, 2) AS price
FROM range({rows}) AS r(i)
JOIN tickets.events e
  ON e.event_id = 1 + (240 * pow((hash(i, 'event') % 1000000) / 1000000.0, 2))::INTEGER % 240
JOIN (VALUES (0, 'standard', 1.0), (1, 'standard', 1.0), (2, 'standard', 1.0), (3, 'standard', 1.0),
             (4, 'premium', 1.8), (5, 'premium', 1.8), (6, 'vip', 3.0)) AS t(k, tier, factor)
  ON t.k = hash(i, 'tier') % 7
"""

_PRODUCTS = """
CREATE TABLE tickets.products AS
SELECT product_id, name, category, price::DECIMAL(8, 2) AS price, active FROM (VALUES
  (1, 'Tour T-shirt', 'merch', 30.00, true),
  (2, 'Tour poster', 'merch', 15.00, true),
  (3, 'Tour hoodie', 'merch', 60.00, true),
  (4, 'Signed vinyl', 'merch', 45.00, true),
  (5, 'Parking pass', 'parking', 18.00, true),
  (6, 'Premium parking', 'parking', 35.00, true),
  (7, 'Fast-track entry', 'upgrade', 12.00, true),
  (8, 'Lounge access', 'upgrade', 55.00, true),
  (9, 'Meet & greet', 'upgrade', 150.00, true),
  (10, 'Drinks voucher (5)', 'food', 25.00, true),
  (11, 'Food voucher', 'food', 20.00, true),
  (12, 'Cloakroom', 'service', 4.00, false)
) AS p(product_id, name, category, price, active)
"""


def build(lake: Lakehouse, rows: int = DEFAULT_ROWS, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """(Re)create the ``tickets`` tables with ``rows`` sales; returns rows per table."""
    if rows < 1:
        from wharf.errors import InvalidArgument

        raise InvalidArgument("The demo needs at least one sale", hint="use --rows 1000 or more")
    say = progress or (lambda _msg: None)
    say("Creating namespace tickets…")
    lake.sql(f"CREATE SCHEMA IF NOT EXISTS {NAMESPACE}")
    # Start clean: a rebuilt demo must not inherit the last run's snapshots and branches.
    for table in ("sales", "events", "venues", "products"):
        lake.sql(f"DROP TABLE IF EXISTS {NAMESPACE}.{table} PURGE")
    say("Creating tickets.venues…")
    lake.sql(_VENUES)
    say("Creating tickets.events…")
    lake.sql(_EVENTS)
    say(f"Generating {rows:,} ticket sales (partitioned by month)…")
    lake.sql("CREATE TABLE tickets.sales PARTITIONED BY (months(sold_at)) AS " + _SALES_SELECT.format(rows=rows, offset=0))
    say("Creating tickets.products…")
    lake.sql(_PRODUCTS)
    return {f"{NAMESPACE}.{t}": lake.table(f"{NAMESPACE}.{t}").count() for t in ("venues", "events", "sales", "products")}


@dataclass(frozen=True)
class Query:
    """One statement of the tour and its (materialised) result; ``language`` is how to highlight ``sql`` (it may be Python)."""

    sql: str
    result: Result
    language: str = "sql"


@dataclass(frozen=True)
class Step:
    title: str
    explanation: str
    queries: list[Query]


def _run(lake: Lakehouse, sql: str) -> Query:
    sql = "\n".join(line.rstrip() for line in sql.strip().splitlines())
    result = lake.sql(sql)
    return Query(sql, Result(result.to_arrow(), message=result.message))


def _head(lake: Lakehouse, table: str) -> int:
    snapshot_id = lake.table(table).current_snapshot_id()
    assert snapshot_id is not None, f"{table} has no snapshot"
    return snapshot_id


def tour(lake: Lakehouse) -> Iterator[Step]:
    """Run the guided tour on a lake built by ``build()``, one step at a time (each step writes)."""
    yield Step(
        "Query the lake",
        "Any DuckDB query works on Wharf tables: joins, aggregates, windows. "
        "Scan planning reads only the Parquet files the query needs.",
        [
            _run(
                lake,
                """
SELECT e.name AS event, v.city, count(*) AS orders, sum(s.quantity) AS tickets, sum(s.price) AS revenue
FROM tickets.sales s
JOIN tickets.events e ON e.event_id = s.event_id
JOIN tickets.venues v ON v.venue_id = e.venue_id
GROUP BY ALL
ORDER BY revenue DESC
LIMIT 5
""",
            )
        ],
    )

    first = _head(lake, "tickets.sales")
    snapshot = lake.table("tickets.sales").iceberg.snapshot_by_id(first)
    if snapshot is None:  # the demo just committed it; absent only if someone expired it meanwhile
        raise NotFound(f"Snapshot {first} of tickets.sales no longer exists; run `wharf demo` again")
    first_ms = snapshot.timestamp_ms
    first_at = dt.datetime.fromtimestamp(first_ms / 1000, dt.UTC).isoformat(sep=" ", timespec="milliseconds")
    late = lake.table("tickets.sales").count()
    yield Step(
        "Time travel",
        "Every write commits an Iceberg snapshot. Older snapshots stay readable "
        "by id (FOR VERSION AS OF) or by time (FOR TIMESTAMP AS OF).",
        [
            _run(
                lake,
                f"""
-- Late box-office sales arrive
INSERT INTO tickets.sales
SELECT {late} + 1 + i, 240 - i % 10, TIMESTAMP '2025-12-20 18:00' + to_minutes(i::INTEGER),
       'box office', 'standard', 1, 45.00
FROM range({max(late // 200, 10)}) AS r(i)
""",
            ),
            _run(
                lake,
                """
SELECT snapshot_id, operation, summary['added-records'] AS added_rows, summary['total-records'] AS total_rows
FROM tickets.sales.snapshots
ORDER BY committed_at
""",
            ),
            _run(
                lake,
                f"""
SELECT
  (SELECT count(*) FROM tickets.sales) AS sales_now,
  (SELECT count(*) FROM tickets.sales FOR VERSION AS OF {first}) AS at_first_snapshot,
  (SELECT count(*) FROM tickets.sales FOR TIMESTAMP AS OF '{first_at}') AS at_first_commit_time
""",
            ),
        ],
    )

    yield Step(
        "A branch",
        "Stage new products on a branch: main does not change until the branch is published with a fast-forward.",
        [
            _run(lake, "ALTER TABLE tickets.products CREATE BRANCH new_season"),
            _run(
                lake,
                """
INSERT INTO tickets.products.branch_new_season VALUES
  (13, 'Glow sticks (5-pack)', 'merch', 6.50, true),
  (14, 'Festival poncho', 'merch', 9.00, true)
""",
            ),
            _run(
                lake,
                """
SELECT 'main' AS ref, count(*) AS products FROM tickets.products
UNION ALL
SELECT 'new_season', count(*) FROM tickets.products.branch_new_season
""",
            ),
            _run(lake, "CALL system.fast_forward('tickets.products', 'main', 'new_season')"),
            _run(lake, "SELECT count(*) AS products_on_main FROM tickets.products"),
        ],
    )

    yield Step(
        "MERGE",
        "Upsert a price list in one atomic snapshot: matched rows are updated, new rows inserted.",
        [
            _run(
                lake,
                """
MERGE INTO tickets.products t
USING (VALUES (3, 'Tour hoodie', 'merch', 54.00),
              (5, 'Parking pass', 'parking', 20.00),
              (15, 'Earplugs', 'merch', 3.50)) AS s(product_id, name, category, price)
ON t.product_id = s.product_id
WHEN MATCHED THEN UPDATE SET price = s.price
WHEN NOT MATCHED THEN INSERT (product_id, name, category, price, active)
  VALUES (s.product_id, s.name, s.category, s.price, true)
""",
            ),
            _run(lake, "SELECT product_id, name, price FROM tickets.products WHERE product_id IN (3, 5, 15) ORDER BY product_id"),
        ],
    )

    yield _history_step(lake)

    good = _head(lake, "tickets.sales")
    yield Step(
        "Rollback",
        "A buggy job loads a day of sales twice. Roll the table back to the last good snapshot; "
        "the bad snapshot stays in history (wharf history tickets.sales) until it expires.",
        [
            _run(
                lake,
                """
-- Oops: 5 March loaded a second time
INSERT INTO tickets.sales
SELECT * FROM tickets.sales WHERE sold_at >= '2025-03-05' AND sold_at < '2025-03-06'
""",
            ),
            _run(lake, "SELECT count(*) AS sales, count(DISTINCT sale_id) AS distinct_sales FROM tickets.sales"),
            _run(lake, f"CALL system.rollback_to_snapshot('tickets.sales', {good})"),
            _run(lake, "SELECT count(*) AS sales, count(DISTINCT sale_id) AS distinct_sales FROM tickets.sales"),
        ],
    )

    yield wap_step(lake)
    yield governance_step(lake)
    yield server_step(lake)


_READINGS = """
SELECT * FROM (VALUES
  ('lab',    TIMESTAMP '2025-03-01 09:00', 21.4, 40.0),
  ('hall',   TIMESTAMP '2025-03-01 09:00', 999.0, 44.0),
  ('attic',  TIMESTAMP '2025-03-01 09:00', -40.0, 61.0),
  ('cellar', TIMESTAMP '2025-03-01 09:00', 12.5, 70.0)
) AS r(room, time, temperature, humidity)
"""


def wap_step(lake: Lakehouse) -> Step:
    """Write-audit-publish on sensor readings: impossible temperatures never reach main."""
    lake.sql("CREATE SCHEMA IF NOT EXISTS iot")
    for table in ("readings", "readings__quarantine"):
        lake.sql(f"DROP TABLE IF EXISTS iot.{table} PURGE")
    lake.sql("CREATE TABLE iot.readings (room VARCHAR, time TIMESTAMP, temperature DOUBLE, humidity DOUBLE)")
    lake.sql("INSERT INTO iot.readings VALUES ('lab', TIMESTAMP '2025-03-01 08:00', 20.9, 41.0)")
    ruleset = _run(
        lake,
        """
CREATE OR REPLACE DATA QUALITY RULESET sensor_rules ON iot.readings
  AS 'Rules = [ ColumnValues "temperature" between -10 and 50, IsComplete "room" ]'
""",
    )
    source = " ".join(_READINGS.split()).replace("'", "''")
    published = _run(
        lake,
        f"""
CALL system.write_audit_publish(table => 'iot.readings', ruleset_name => 'sensor_rules', on_failure => 'quarantine',
  source => '{source}')
""",
    )
    batch = published.result.to_arrow().column("batch_id")[0].as_py()
    return Step(
        "Write-audit-publish",
        "New sensor readings land on a staging branch first; a data quality ruleset (AWS Glue's DQDL) audits them. "
        "Valid readings are published to main by a fast-forward, impossible ones go to a quarantine table with the "
        "rule they broke. Every run is recorded in system.quality_results.",
        [
            ruleset,
            published,
            _run(lake, "SELECT room, temperature FROM iot.readings ORDER BY room, temperature"),
            _run(lake, "SELECT room, temperature, DataQualityRulesFail FROM iot.readings__quarantine ORDER BY room, temperature"),
            _run(
                lake,
                f"""
SELECT step, snapshot_id, outcome, message FROM system.quality_results
WHERE batch_id = '{batch}' AND rule IS NULL ORDER BY evaluated_at
""",
            ),
        ],
    )


_CUSTOMERS = """
CREATE TABLE crm.customers AS
SELECT * FROM (VALUES
  (1, 'Anna de Vries', 'anna@example.nl', 'EU'),
  (2, 'Ben Carter', 'ben@example.com', 'US'),
  (3, 'Chloé Martin', 'chloe@example.fr', 'EU'),
  (4, 'Dev Patel', 'dev@example.co.uk', 'EU'),
  (5, 'Emma Johnson', 'emma@example.com', 'US'),
  (6, 'Hiro Tanaka', 'hiro@example.jp', 'APAC')
) AS c(customer_id, name, email, region)
"""

GOVERNANCE_TITLE = "Governance: who sees what, and access on request"


def governance_step(lake: Lakehouse) -> Step:
    """An analyst sees their region with masked emails, requests a sensitive table, gets it for an hour, loses it.

    Time is not waited for: the lake's governance clock (``store.clock``, injectable for tests and
    this demo) is moved forward 61 minutes for the last query, then put back.
    """
    import pyarrow as pa

    from wharf.errors import AccessDenied
    from wharf.governance.store import now_ms

    lake.sql("CREATE SCHEMA IF NOT EXISTS crm")
    for table in ("customers", "payouts"):
        lake.sql(f"DROP TABLE IF EXISTS crm.{table} PURGE")  # a dropped table's grants and policies go with it
    lake.sql(_CUSTOMERS)
    lake.sql(
        "CREATE TABLE crm.payouts AS SELECT venue_id, name AS venue, (capacity * 12.5)::DECIMAL(12, 2) AS payout "
        "FROM tickets.venues WHERE venue_id <= 12"
    )
    lake.sql("ALTER TABLE crm.payouts SET TBLPROPERTIES ('comment' = 'What each venue is paid per sold-out night')")
    lake.sql("""
CREATE USER IF NOT EXISTS analyst WITH ATTRIBUTES ('region' = 'EU');
CREATE GROUP IF NOT EXISTS analysts;
ALTER GROUP analysts ADD USER analyst;
ALTER USER analyst SET ATTRIBUTES ('region' = 'EU')
""")
    policies = _run(
        lake,
        """
GRANT SELECT ON TABLE crm.customers TO GROUP analysts;
CREATE OR REPLACE FUNCTION own_region(r VARCHAR) RETURNS BOOLEAN RETURN r = current_user_attribute('region');
ALTER TABLE crm.customers SET ROW FILTER own_region ON (region);
ALTER TABLE crm.customers ALTER COLUMN email SET MASK email
""",
    )
    analyst = lake.session(user="analyst")
    seen = _run(analyst, "SELECT * FROM crm.customers ORDER BY customer_id")
    found = _run(analyst, "FIND TABLES LIKE 'crm.*'")
    requested = _run(analyst, "REQUEST ACCESS ON TABLE crm.payouts FOR '8 hours' REASON 'Quarterly venue report'")
    request_id = requested.result.to_arrow().column("request_id")[0].as_py()
    pending = _run(
        lake,
        f"SELECT requester, privilege, table_name, duration, reason, status FROM system.access_requests WHERE id = {request_id}",
    )
    approved = _run(lake, f"APPROVE ACCESS REQUEST {request_id} FOR '1 hour'")
    reads = _run(analyst, "SELECT venue, payout FROM crm.payouts ORDER BY payout DESC LIMIT 3")
    grants = _run(
        analyst,
        "SELECT grantee, privilege, object_name, expires_at - granted_at AS valid_for, active FROM system.grants "
        "ORDER BY object_name",
    )
    store = lake.governance.store
    store.clock = lambda: now_ms() + 61 * 60_000  # one hour and one minute from now, without waiting for it
    later = (
        "-- 61 minutes later (the demo moves the governance clock forward instead of waiting)\nSELECT count(*) FROM crm.payouts"
    )
    try:
        analyst.sql(later)
        refused = Query(later, Result(pa.table({"error": ["(no error: the grant did not expire)"]})))
    except AccessDenied as exc:
        refused = Query(later, Result(pa.table({"error": [exc.message]})))
    finally:
        store.clock = now_ms
    return Step(
        GOVERNANCE_TITLE,
        "The owner sets a row filter and an email mask on crm.customers; an analyst (wharf.connect(path, user='analyst'), "
        "region EU) sees only EU customers, emails masked. The analyst finds crm.payouts without being able to read it, "
        "requests access; the owner approves it for one hour (shorter than asked). The grant works at once and expires "
        "by itself at query time, with no cleanup job (docs/governance.md).",
        [policies, seen, found, requested, pending, approved, reads, grants, refused],
    )


def _history_step(lake: Lakehouse) -> Step:
    """Change history of the products the MERGE changed: the changelog and SCD Type-2 versions."""
    return Step(
        "Change history",
        "Every snapshot records what it changed. A changelog view lists inserted, deleted and updated rows "
        "with their commit; an SCD Type-2 view gives each version of a row its validity period (docs/history.md).",
        [
            _run(
                lake,
                "CALL system.create_changelog_view(table => 'tickets.products', changelog_view => 'product_changes', "
                "identifier_columns => array('product_id'))",
            ),
            _run(
                lake,
                """
SELECT product_id, name, price, _change_type, _commit_timestamp
FROM product_changes WHERE product_id IN (3, 15)
ORDER BY product_id, _change_ordinal, _change_type DESC
""",
            ),
            _run(
                lake,
                "CALL system.create_scd2_view(table => 'tickets.products', view => 'products_scd2', "
                "identifier_columns => array('product_id'))",
            ),
            _run(
                lake,
                """
SELECT product_id, price, effective_start, effective_end, is_current
FROM products_scd2 WHERE product_id = 3 ORDER BY effective_start
""",
            ),
        ],
    )


SERVER_TITLE = "Serve the lake"


def server_step(lake: Lakehouse) -> Step:
    """``wharf serve`` in the background: PyIceberg and DuckDB use the lake through its Iceberg REST catalog.

    Without the ``server`` extra (FastAPI, uvicorn) the step only says how to install it; without
    DuckDB's iceberg extension packages it shows the PyIceberg client and says what DuckDB needs.
    """
    from wharf.errors import MissingExtra

    explanation = (
        "wharf serve puts the lake behind the Iceberg REST catalog API, so every engine that speaks it "
        "(Spark, Trino, Flink, DuckDB, PyIceberg, Daft) reads and writes the same tables; a client's commit is a "
        "Wharf commit (docs/server.md). Here the server runs in the background on a free loopback port, without "
        "authentication (local development), and stops at the end of the step."
    )
    try:
        from wharf.server.background import serve_in_background

        server = serve_in_background(lake)
    except MissingExtra as exc:
        return Step(SERVER_TITLE, f"{explanation}\nSkipped: {exc.message}. Install it with: {exc.hint}", [])
    try:
        queries, skipped = _rest_clients(lake, server.url)
    finally:
        server.stop()
    shown = explanation.replace("a free loopback port", server.url)
    return Step(SERVER_TITLE, shown + (f"\n{skipped}" if skipped else ""), queries)


def _rest_clients(lake: Lakehouse, url: str) -> tuple[list[Query], str | None]:
    """A PyIceberg client lists, loads, scans and appends to tickets.venues; DuckDB reads it; Wharf sees the append.

    Returns the queries, and why the DuckDB client was skipped (its extension packages are missing) if it was.
    """
    import pyarrow as pa
    from pyiceberg.catalog import load_catalog

    from wharf.errors import MissingExtra

    queries: list[Query] = []
    catalog = load_catalog("wharf", type="rest", uri=url)
    listed = catalog.list_tables(NAMESPACE)
    queries.append(
        Query(
            f'from pyiceberg.catalog import load_catalog\n\ncatalog = load_catalog("wharf", type="rest", uri="{url}")\n'
            f'catalog.list_tables("{NAMESPACE}")',
            Result(pa.table({"namespace": [".".join(t[:-1]) for t in listed], "table": [t[-1] for t in listed]})),
            "python",
        )
    )
    venues = catalog.load_table(f"{NAMESPACE}.venues")
    dutch = venues.scan(row_filter="country == 'NL'", selected_fields=("venue_id", "name", "city", "capacity")).to_arrow()
    queries.append(
        Query(
            f'venues = catalog.load_table("{NAMESPACE}.venues")\n'
            'venues.scan(row_filter="country == \'NL\'", selected_fields=("venue_id", "name", "city", "capacity")).to_arrow()',
            Result(dutch.sort_by("venue_id")),
            "python",
        )
    )
    row = {"venue_id": 13, "name": "Fjord Hall", "city": "Oslo", "country": "NO", "capacity": 5200}
    venues.append(pa.Table.from_pylist([row], schema=venues.schema().as_arrow()))
    queries.append(
        Query(
            f"import pyarrow as pa\n\nvenues.append(pa.Table.from_pylist([{row}], schema=venues.schema().as_arrow()))",
            Result(pa.table({"snapshot_id": [venues.metadata.current_snapshot_id]}), message="committed through the server"),
            "python",
        )
    )
    skipped = None
    try:
        queries.append(_duckdb_client(url))
    except MissingExtra as exc:
        skipped = f"DuckDB client skipped: {exc.message}. Install it with: {exc.hint}"
    queries.append(
        _run(
            lake,
            f"""
-- Wharf reads the row the PyIceberg client appended; the commit is stamped like any other
SELECT v.venue_id, v.name, v.city, s.operation, s.summary['wharf.user'] AS committed_by
FROM {NAMESPACE}.venues v, {NAMESPACE}.venues.snapshots s
WHERE v.venue_id = 13 AND s.snapshot_id = {venues.metadata.current_snapshot_id}
""",
        )
    )
    return queries, skipped


def _duckdb_client(url: str) -> Query:
    """DuckDB's iceberg extension (loaded from its pip package, never downloaded) attached to the server."""
    import duckdb

    from wharf.engine import extension_path

    paths = {name: extension_path(name) for name in ("avro", "iceberg", "httpfs")}  # MissingExtra names the package
    sql = f"""
ATTACH 'wharf' AS lake (TYPE iceberg, ENDPOINT '{url}', AUTHORIZATION_TYPE 'none');
-- the venue the PyIceberg client just appended is there
SELECT venue_id, name, city, country, capacity FROM lake.{NAMESPACE}.venues WHERE venue_id > 10 ORDER BY venue_id"""
    con = duckdb.connect()
    try:
        for path in paths.values():  # iceberg needs avro; it talks HTTP through httpfs
            con.execute(f"LOAD '{path}'")
        con.execute(f"ATTACH 'wharf' AS lake (TYPE iceberg, ENDPOINT '{url}', AUTHORIZATION_TYPE 'none')")
        table = con.sql(sql.split(";", 1)[1]).to_arrow_table()
    finally:
        con.close()
    return Query("-- DuckDB, with its iceberg extension" + sql, Result(table))


def run(path: str | None = None, rows: int = DEFAULT_ROWS) -> Lakehouse:
    """Build the demo lake at ``path`` and print the tour to the terminal (what ``wharf demo`` does)."""
    from rich.console import Console
    from rich.syntax import Syntax

    lake = Lakehouse(path)
    console = Console()
    build(lake, rows=rows)
    for number, step in enumerate(tour(lake), 1):
        console.rule(f"{number}. {step.title}", align="left")
        console.print(step.explanation)
        for query in step.queries:
            console.print(Syntax(query.sql, query.language, background_color="default", word_wrap=True))
            console.print(query.result)
    return lake


__all__ = ["DEFAULT_ROWS", "Query", "Step", "build", "governance_step", "run", "server_step", "tour"]
