"""The ``wharf`` command line: SQL, an interactive shell, table inspection and the demo.

Every command goes through the same ``Lakehouse`` the Python API uses. Errors are shown as one
red line plus a hint (exit code 1); ``--debug`` adds the traceback.

::

    wharf --lake my-lake sql "SELECT * FROM db.t LIMIT 5"
    wharf sql -f script.sql --format csv -o out.csv
    wharf shell
"""

from __future__ import annotations

import enum
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import click
import pyarrow as pa
import typer
from rich.console import Console, Group
from rich.syntax import Syntax
from rich.table import Table as RichTable
from rich.text import Text

from wharf import __version__
from wharf.auth.commands import Cli as AuthCli
from wharf.auth.commands import register as register_auth
from wharf.errors import InternalError, InvalidArgument, NotFound, WharfError
from wharf.governance.access_commands import register as register_access
from wharf.governance.audit_commands import register as register_audit
from wharf.governance.commands import Cli as GovernanceCli
from wharf.governance.commands import register as register_governance
from wharf.ingest.commands import Cli as CdcCli
from wharf.ingest.commands import register as register_cdc
from wharf.lakehouse import Lakehouse, default_path
from wharf.optimizer.commands import Cli as OptimizerCli
from wharf.optimizer.commands import register as register_optimizer
from wharf.quality.commands import Cli as QualityCli
from wharf.quality.commands import register as register_quality
from wharf.server.commands import register as register_server
from wharf.storage import is_object_store
from wharf.tables.types import iceberg_to_duckdb

if TYPE_CHECKING:
    from wharf.result import Result

DEFAULT_MAX_ROWS = 100
DEFAULT_DEMO_ROWS = 100_000
HISTORY_FILE = ".wharf_history"

app = typer.Typer(
    name="wharf",
    help="Wharf: an embedded lakehouse. Apache Iceberg tables, full SQL, DuckDB speed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


# --- state and error reporting -------------------------------------------------------------


@dataclass
class State:
    """Global options, and the lake opened lazily by the first command that needs it."""

    lake_path: Path | str  # a directory, or s3://bucket/prefix
    debug: bool = False
    metadata_url: str | None = None
    _lake: Lakehouse | None = field(default=None, repr=False)

    def lake(self) -> Lakehouse:
        if self._lake is None:
            self._lake = Lakehouse(self.lake_path, metadata_url=self.metadata_url)
        return self._lake

    def close(self) -> None:
        if self._lake is not None:
            self._lake.close()
            self._lake = None


def _out() -> Console:
    # Piped output is not cut to the 80 columns rich assumes for a non-terminal.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=160 if wide else None)


def _err() -> Console:
    wide = not sys.stderr.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=True, highlight=False, width=160 if wide else None)


def report_error(exc: BaseException, debug: bool) -> None:
    """One red line (plus the hint) for a Wharf error; a short note for anything else."""
    err = _err()
    if debug:
        err.print(Text("".join(traceback.format_exception(exc)), style="dim"))
    if isinstance(exc, InternalError):
        err.print(Text(f"Internal error: {exc.message}", style="bold red"))
        if not debug:
            err.print(Text("This is a bug in Wharf; run again with --debug to see the traceback.", style="yellow"))
    elif isinstance(exc, WharfError):
        err.print(Text(f"{type(exc).__name__}: {exc.message}", style="bold red"))
        if exc.hint:
            err.print(Text(f"Hint: {exc.hint}", style="yellow"))
    elif isinstance(exc, OSError):  # a file the user named cannot be read or written
        err.print(Text(f"{type(exc).__name__}: {exc}", style="bold red"))
    else:
        err.print(Text(f"Unexpected error ({type(exc).__name__}): {exc}", style="bold red"))
        if not debug:
            err.print(Text("This is probably a bug in Wharf; run again with --debug to see the traceback.", style="yellow"))


@contextmanager
def reporting(state: State) -> Iterator[None]:
    """Turn exceptions into a message and exit code 1: no raw traceback unless ``--debug``."""
    try:
        yield
    except (typer.Exit, click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
        raise
    except KeyboardInterrupt:
        _err().print(Text("Interrupted", style="red"))
        raise typer.Exit(130) from None
    except Exception as exc:
        report_error(exc, state.debug)
        raise typer.Exit(1) from None


def _state(ctx: typer.Context) -> State:
    state = ctx.find_object(State)
    assert state is not None
    return state


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wharf {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    lake: Annotated[
        str | None,
        typer.Option(
            "--lake",
            envvar="WHARF_HOME",
            help="Lake directory or s3://bucket/prefix (created on first use). Default: $WHARF_HOME, else ./lake",
            show_default=False,
        ),
    ] = None,
    metadata_url: Annotated[
        str | None,
        typer.Option(
            "--metadata-url",
            envvar="WHARF_METADATA_URL",
            help="Metadata database (postgresql://user:pass@host/db, sqlite:////path/wharf.db). "
            "Default: $WHARF_METADATA_URL, else wharf.db in the lake directory",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    location: Path | str = lake if lake is not None and is_object_store(lake) else Path(lake or default_path()).expanduser()
    state = State(lake_path=location, debug=debug, metadata_url=metadata_url)
    ctx.obj = state
    ctx.call_on_close(state.close)


# --- output -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=_json_default)
    if isinstance(value, pa.MonthDayNano):
        return interval_text(value)
    return str(value)


def interval_text(value: pa.MonthDayNano) -> str:
    """An interval as DuckDB prints it: ``1 year 2 months 3 days 04:05:06.5`` (parts that are zero left out)."""
    months, days, nanos = value.months, value.days, value.nanoseconds
    parts = []
    years, months = divmod(months, 12) if months >= 0 else (-((-months) // 12), -((-months) % 12))
    for n, unit in ((years, "year"), (months, "month"), (days, "day")):
        if n:
            parts.append(f"{n} {unit}{'s' if abs(n) != 1 else ''}")
    if nanos or not parts:
        sign = "-" if nanos < 0 else ""
        seconds, fraction = divmod(abs(nanos), 1_000_000_000)
        hours, rest = divmod(seconds, 3600)
        clock = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        if fraction:
            clock += f".{fraction // 1000:06d}".rstrip("0")
        parts.append(clock)
    return " ".join(parts)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        # JSON numbers are decimal text; keep exactness where a float would round.
        if value == value.to_integral_value():
            return int(value)
        return float(value) if len(value.as_tuple().digits) <= 15 else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, pa.MonthDayNano):
        return interval_text(value)
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _is_status(result: Result) -> bool:
    """DDL and other statements answer with a one-column ``status`` table: show it as plain lines."""
    return result.columns == ["status"]


def render_table(result: Result, max_rows: int = DEFAULT_MAX_ROWS) -> RichTable | Group | Text:
    """A rich table of the first ``max_rows`` rows; the rest of the stream is counted, not kept."""
    if _is_status(result):
        lines = [str(v) for v in result.to_arrow().column(0).to_pylist()]
        return Text("\n".join(lines) or result.message or "OK", style="green")
    if not result.columns:
        return Text(result.message or "OK", style="green")
    rows: list[dict[str, Any]] = []
    total = 0
    for batch in result.iter_batches():
        if len(rows) < max_rows:
            rows.extend(batch.slice(0, max_rows - len(rows)).to_pylist())
        total += batch.num_rows
    caption = f"{total} row{'s' if total != 1 else ''}"
    table = RichTable(*result.columns, caption=caption if total == len(rows) else None, header_style="bold cyan")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    if total == len(rows):
        return table
    note = Text(f"{caption} (showing first {len(rows)}; use --max-rows or --format csv for all)", style="dim")
    return Group(table, note)


def _text_safe(batch: pa.RecordBatch) -> pa.RecordBatch:
    """CSV cannot hold nested values: write lists/structs/maps as JSON text."""
    columns = []
    changed = False
    for column in batch.columns:
        if pa.types.is_nested(column.type):
            changed = True
            column = pa.array(
                [None if v is None else json.dumps(v, default=_json_default) for v in column.to_pylist()], pa.string()
            )
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


@contextmanager
def _atomic(output: Path, mode: str) -> Iterator[IO[Any]]:
    """Write ``output`` through a temporary file beside it, renamed into place only when complete.

    A query that fails part-way (or an interrupted process) leaves no partial file behind, and an
    existing file is replaced only by a complete one.
    """
    temporary = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        with open(temporary, mode) if "b" in mode else open(temporary, mode, encoding="utf-8") as f:
            yield f
        os.replace(temporary, output)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextmanager
def _binary_sink(output: Path | None) -> Iterator[IO[bytes]]:
    if output is not None:
        with _atomic(output, "wb") as f:
            yield f
        return
    sys.stdout.flush()
    yield sys.stdout.buffer
    sys.stdout.buffer.flush()


def write_result(result: Result, fmt: Format, output: Path | None, max_rows: int = DEFAULT_MAX_ROWS) -> int:
    """Write a result in ``fmt`` to ``output`` (stdout if None), batch by batch. Returns rows written."""
    if fmt is Format.table:
        rendered = render_table(result, max_rows)
        if output is None:
            _out().print(rendered)
        else:
            with _atomic(output, "w") as f:
                Console(file=f, width=200, highlight=False).print(rendered)
        return -1
    if fmt is Format.parquet and output is None:
        raise InvalidArgument("--format parquet writes a binary file", hint="add -o FILE.parquet")
    rows = 0
    with _binary_sink(output) as sink:
        if fmt is Format.csv:
            import pyarrow.csv as pacsv

            writer: Any = None
            for batch in result.iter_batches():
                batch = _text_safe(batch)
                if writer is None:
                    writer = pacsv.CSVWriter(sink, batch.schema)
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:  # no batches: still write the header
                sink.write((",".join(json.dumps(c) for c in result.columns) + "\n").encode())
            else:
                writer.close()
        elif fmt is Format.json:
            sink.write(b"[")
            for batch in result.iter_batches():
                for row in batch.to_pylist():
                    sink.write((",\n" if rows else "\n").encode() + json.dumps(row, default=_json_default).encode())
                    rows += 1
            sink.write(b"\n]\n" if rows else b"]\n")
        else:
            import pyarrow.parquet as pq

            pwriter: pq.ParquetWriter | None = None
            try:
                for batch in result.iter_batches():
                    if pwriter is None:
                        pwriter = pq.ParquetWriter(sink, batch.schema)
                    pwriter.write_batch(batch)
                    rows += batch.num_rows
            finally:
                # Also when the stream fails midway: an unclosed writer would write to the closed
                # sink whenever it is garbage-collected.
                if pwriter is not None:
                    pwriter.close()
            if pwriter is None:
                pq.write_table(result.schema.empty_table(), sink)
    return rows


def _format_for(fmt: Format | None, output: Path | None) -> Format:
    if fmt is not None:
        return fmt
    if output is not None:
        by_suffix = {".csv": Format.csv, ".json": Format.json, ".parquet": Format.parquet, ".pq": Format.parquet}
        return by_suffix.get(output.suffix.lower(), Format.table)
    return Format.table


# --- wharf sql ------------------------------------------------------------------------------


def run_script(lake: Lakehouse, script: str, dialect: str | None) -> Iterator[Result]:
    """Run a script statement by statement, yielding each result (line numbers stay script-relative)."""
    from wharf.sql.parser import split

    pieces = split(script)
    if not pieces:
        raise InvalidArgument("No SQL statement to run")
    for text, line in pieces:
        with busy(f"Running {_shorten(' '.join(text.split()), 60)}"):
            # Leading newlines keep parse-error line numbers relative to the whole script.
            result = lake.sql("\n" * (line - 1) + text, dialect=dialect)
        yield result


def busy(message: str) -> AbstractContextManager[Any]:
    """A spinner on stderr while something slow runs, only when a person is watching (a terminal)."""
    if not sys.stderr.isatty():
        return nullcontext()
    return _err().status(Text(message), spinner="dots")


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(help="SQL to run (one or more statements separated by ';'); '-' reads stdin."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the SQL from this file ('-' for stdin).", show_default=False),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="Output format (default: table, or inferred from -o's suffix)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result to this file.", show_default=False)
    ] = None,
    dialect: Annotated[
        str | None,
        typer.Option("--dialect", help="Read the SQL in this dialect: spark, trino, athena, redshift, postgres, …"),
    ] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows shown by --format table.")] = DEFAULT_MAX_ROWS,
) -> None:
    """Run SQL. In a script every statement runs in order; the last one's result is written in --format."""
    state = _state(ctx)
    with reporting(state):
        if (query is None) == (file is None):
            raise InvalidArgument("Give the SQL either as an argument or with -f FILE", hint='wharf sql "SELECT 1"')
        if file is not None:
            script = sys.stdin.read() if str(file) == "-" else _read(file)
        else:
            script = sys.stdin.read() if query == "-" else query
        chosen = _format_for(fmt, output)
        results = run_script(state.lake(), script, dialect)
        previous = next(results)
        for result in results:
            _show_intermediate(previous, chosen)
            previous = result
        if output is not None:
            with busy(f"Writing {output}"):
                written = write_result(previous, chosen, output, max_rows)
        else:
            written = write_result(previous, chosen, output, max_rows)
        if output is not None:
            what = f"{written} row{'s' if written != 1 else ''} " if written >= 0 else ""
            _err().print(Text(f"Wrote {what}to {output}", style="green"))


def _show_intermediate(result: Result, fmt: Format) -> None:
    """Non-final statements of a script: shown as tables, or summarised on stderr for data formats."""
    if fmt is Format.table:
        _out().print(render_table(result))
    elif _is_status(result):
        _err().print(render_table(result))
    else:
        _err().print(Text(f"({result.rowcount} row(s): {', '.join(result.columns)})", style="dim"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"SQL file '{path}' does not exist") from None


# --- wharf tables / describe / history -----------------------------------------------------


@app.command()
def tables(ctx: typer.Context, namespace: Annotated[str | None, typer.Argument(help="Only this namespace.")] = None) -> None:
    """List tables with their size and last change."""
    state = _state(ctx)
    with reporting(state):
        _out().print(tables_table(state.lake(), namespace))


def tables_table(lake: Lakehouse, namespace: str | None = None) -> RichTable | Text:
    if namespace is not None and namespace not in lake.namespaces():
        raise NotFound(f"Namespace '{namespace}' does not exist", hint=f"CREATE SCHEMA {namespace}")
    names = lake.tables(namespace)
    if not names:
        return Text(f"No tables{' in ' + namespace if namespace else ''} (lake: {lake.path})", style="yellow")
    out = RichTable("table", "rows", "files", "snapshots", "last updated (UTC)", header_style="bold cyan")
    for name in names:
        meta = lake.table(name).iceberg.metadata
        current = meta.current_snapshot()
        summary = current.summary.additional_properties if current and current.summary else {}
        updated = datetime.fromtimestamp(meta.last_updated_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        out.add_row(
            name, summary.get("total-records", "0"), summary.get("total-data-files", "0"), str(len(meta.snapshots)), updated
        )
    return out


@app.command()
def describe(ctx: typer.Context, table: Annotated[str, typer.Argument(help="namespace.table")]) -> None:
    """Columns, partitioning, properties and refs of a table."""
    state = _state(ctx)
    with reporting(state):
        console = _out()
        for part in describe_table(state.lake(), table):
            console.print(part)


def describe_table(lake: Lakehouse, name: str) -> list[Any]:
    t = lake.table(name)
    ice = t.iceberg
    schema = ice.schema()
    meta = ice.metadata
    current = meta.current_snapshot()
    parts: list[Any] = [
        Text(t.full_name, style="bold"),
        Text(
            f"location: {ice.location()}   format-version: {meta.format_version}   "
            f"current snapshot: {current.snapshot_id if current else 'none (empty table)'}",
            style="dim",
        ),
    ]
    cols = RichTable(
        "#", "column", "type", "nullable", "comment", title="Columns", title_justify="left", header_style="bold cyan"
    )
    identifier = set(schema.identifier_field_ids)
    for f in schema.fields:
        cols.add_row(
            str(f.field_id),
            f.name + (" (id)" if f.field_id in identifier else ""),
            iceberg_to_duckdb(f.field_type),  # the type names SQL's DESCRIBE shows
            "no" if f.required else "yes",
            f.doc or "",
        )
    parts.append(cols)
    spec = ice.spec()
    if spec.fields:
        pt = RichTable(
            "partition field", "transform", "source column", title="Partitioning", title_justify="left", header_style="bold cyan"
        )
        for pf in spec.fields:
            pt.add_row(pf.name, str(pf.transform), schema.find_column_name(pf.source_id) or str(pf.source_id))
        parts.append(pt)
    if meta.refs:
        rt = RichTable("ref", "type", "snapshot", title="Branches and tags", title_justify="left", header_style="bold cyan")
        for ref_name, ref in sorted(meta.refs.items()):
            rt.add_row(ref_name, str(ref.snapshot_ref_type.value), str(ref.snapshot_id))
        parts.append(rt)
    if ice.properties:
        props = RichTable("property", "value", title="Properties", title_justify="left", header_style="bold cyan")
        for key, value in sorted(ice.properties.items()):
            props.add_row(key, value)
        parts.append(props)
    return parts


@app.command()
def history(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="namespace.table")],
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the newest N snapshots.")] = None,
) -> None:
    """The table's snapshots: when, who, which statement, rows added and deleted."""
    state = _state(ctx)
    with reporting(state):
        _out().print(history_table(state.lake(), table, limit))


def history_table(lake: Lakehouse, name: str, limit: int | None = None) -> RichTable | Text:
    t = lake.table(name)
    snapshots = t.snapshots().to_pylist()
    if not snapshots:
        return Text(f"{t.full_name} has no snapshots yet", style="yellow")
    refs: dict[int, list[str]] = {}
    for ref in t.refs().to_pylist():
        label = ref["name"] if ref["type"] == "BRANCH" or str(ref["type"]).lower() == "branch" else f"tag:{ref['name']}"
        refs.setdefault(ref["snapshot_id"], []).append(label)
    ancestors = {h["snapshot_id"] for h in t.history().to_pylist() if h["is_current_ancestor"]}
    if limit is not None:
        snapshots = snapshots[-limit:]
    out = RichTable(header_style="bold cyan", caption="* not an ancestor of main (rolled back, staged or on a branch)")
    for title in ("committed at (UTC)", "snapshot", "operation", "+rows", "-rows", "user", "refs"):
        out.add_column(title, no_wrap=True)
    out.add_column("statement")
    for snap in snapshots:
        summary = dict(snap["summary"] or [])
        marker = "" if snap["snapshot_id"] in ancestors else "*"
        out.add_row(
            str(snap["committed_at"])[:19],
            f"{snap['snapshot_id']}{marker}",
            str(snap["operation"]),
            summary.get("added-records", ""),
            summary.get("deleted-records", ""),
            summary.get("wharf.user", ""),
            ", ".join(refs.get(snap["snapshot_id"], [])),
            _shorten(" ".join(str(summary.get("wharf.statement", "")).split()), 40),
        )
    return out


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- wharf shell ------------------------------------------------------------------------------

SHELL_HELP = """\
End SQL statements with ';' (they may span several lines).
  \\d           list tables          \\d TABLE    describe a table
  \\dn          list namespaces      \\h TABLE    snapshot history of a table
  \\?           this help            \\q          quit (or Ctrl-D)"""


def statement_complete(buffer: str) -> bool:
    """True when ``buffer`` ends with a ';' outside strings and comments."""
    from sqlglot import TokenType
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Tokenizer

    try:
        tokens = Tokenizer().tokenize(buffer)
    except TokenError:
        return False  # e.g. an unterminated string: keep reading
    return bool(tokens) and tokens[-1].token_type == TokenType.SEMICOLON


class _LineReader:
    """``input()`` with readline history and completion when available (stdlib only)."""

    def __init__(self, history_path: Path, interactive: bool, words: Callable[[], list[str]]) -> None:
        self.history_path = history_path
        self.interactive = interactive
        self.readline: Any = None
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            return
        self.readline = readline
        readline.set_auto_history(False)
        try:
            readline.read_history_file(history_path)
        except (FileNotFoundError, OSError):
            pass
        if interactive:
            self._words = words
            readline.set_completer(self._complete)
            readline.set_completer_delims(" \t\n(),;=")
            readline.parse_and_bind("tab: complete")

    def _complete(self, text: str, state: int) -> str | None:
        matches = [w for w in self._words() if w.lower().startswith(text.lower())]
        return matches[state] if state < len(matches) else None

    def read(self, prompt: str) -> str:
        return input(prompt if self.interactive else "")

    def remember(self, entry: str) -> None:
        if self.readline is not None:
            self.readline.add_history(entry)

    def save(self) -> None:
        if self.readline is not None:
            try:
                self.readline.write_history_file(self.history_path)
            except OSError:
                pass


_KEYWORDS = (
    "SELECT FROM WHERE GROUP BY ORDER LIMIT INSERT INTO OVERWRITE VALUES UPDATE SET DELETE MERGE USING ON WHEN "
    "MATCHED THEN NOT CREATE TABLE SCHEMA DROP ALTER BRANCH TAG CALL SHOW DESCRIBE FOR VERSION TIMESTAMP AS OF "
    "PARTITIONED TBLPROPERTIES JOIN LEFT WITH"
).split()


@app.command()
def shell(ctx: typer.Context) -> None:
    """Interactive SQL shell: multi-line statements end with ';', \\d lists tables, \\q quits."""
    state = _state(ctx)
    with reporting(state):
        lake = state.lake()
    if not run_shell(lake, state.debug) and not sys.stdin.isatty():
        raise typer.Exit(1)  # a piped script with a failed statement fails, like psql -v ON_ERROR_STOP


def run_shell(lake: Lakehouse, debug: bool = False) -> bool:
    """Read-eval-print loop on stdin; returns False if any statement or command failed."""
    out = _out()
    interactive = sys.stdin.isatty()

    def words() -> list[str]:
        return _KEYWORDS + lake.tables() + lake.namespaces()

    reader = _LineReader(lake.path / HISTORY_FILE, interactive, words)
    if interactive:
        out.print(
            Text(f"Wharf {__version__} — lake {lake.path}. End statements with ';'. \\? for help, \\q to quit.", style="dim")
        )
    buffer: list[str] = []
    ok = True
    try:
        while True:
            prompt = "wharf> " if not buffer else "  ...> "
            try:
                line = reader.read(prompt)
            except EOFError:
                if buffer and "".join(buffer).strip():
                    ok = _shell_run(lake, "\n".join(buffer), out, debug, reader) and ok
                break
            except KeyboardInterrupt:
                buffer = []
                out.print()
                continue
            stripped = line.strip()
            if not buffer and stripped.startswith("\\"):
                quit_, succeeded = _meta_command(lake, stripped, out, debug)
                ok = succeeded and ok
                if quit_:
                    break
                continue
            if not buffer and stripped.lower() in ("exit", "quit", "exit;", "quit;"):
                break
            if not buffer and not stripped:
                continue
            buffer.append(line)
            text = "\n".join(buffer)
            if statement_complete(text):
                buffer = []
                ok = _shell_run(lake, text, out, debug, reader) and ok
    finally:
        reader.save()
    return ok


def _shell_run(lake: Lakehouse, text: str, out: Console, debug: bool, reader: _LineReader) -> bool:
    reader.remember(" ".join(text.split()))
    try:
        for result in run_script(lake, text, None):
            out.print(render_table(result))
    except KeyboardInterrupt:
        out.print(Text("Interrupted", style="red"))
        return False
    except Exception as exc:  # the shell reports and carries on
        report_error(exc, debug)
        return False
    return True


def _meta_command(lake: Lakehouse, command: str, out: Console, debug: bool) -> tuple[bool, bool]:
    """Run a backslash command; returns (quit?, succeeded?)."""
    name, _, arg = command.partition(" ")
    arg = arg.strip().rstrip(";")
    try:
        if name in ("\\q", "\\quit"):
            return True, True
        if name in ("\\?", "\\help"):
            out.print(SHELL_HELP)
        elif name == "\\d" and not arg:
            out.print(tables_table(lake))
        elif name == "\\d":
            for part in describe_table(lake, arg):
                out.print(part)
        elif name == "\\dn":
            out.print("\n".join(lake.namespaces()))
        elif name == "\\h" and arg:
            out.print(history_table(lake, arg))
        else:
            out.print(Text(f"Unknown command {command}; \\? lists the commands", style="yellow"))
            return False, False
    except Exception as exc:
        report_error(exc, debug)
        return False, False
    return False, True


# --- wharf demo -------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    rows: Annotated[
        int, typer.Option("--rows", envvar="WHARF_DEMO_ROWS", help="Number of ticket sales to generate.")
    ] = DEFAULT_DEMO_ROWS,
    tour: Annotated[bool, typer.Option("--tour/--no-tour", help="Print the guided tour after building.")] = True,
) -> None:
    """Build a demo lake (ticket sales) and take a guided tour: time travel, a branch, MERGE, rollback."""
    from wharf import demo as demo_module

    state = _state(ctx)
    with reporting(state):
        out = _out()
        lake = state.lake()
        if lake.catalog.table_exists(("tickets", "sales")):
            # Say so: a user exploring an existing demo lake must not lose their changes silently.
            out.print(Text(f"Rebuilding the demo: the tickets tables in {lake.path} are replaced.", style="yellow"))
        with out.status("Building the demo lake…") as status:
            counts = demo_module.build(lake, rows=rows, progress=lambda msg: status.update(msg))
        out.print(
            Text(f"Demo lake ready at {lake.path}: " + ", ".join(f"{n} ({c:,} rows)" for n, c in counts.items()), style="green")
        )
        if not tour:
            return
        for number, step in enumerate(demo_module.tour(lake), 1):
            print_step(out, number, step)
        out.print(Text(f"\nExplore further: wharf --lake {lake.path} shell", style="bold"))


def print_step(out: Console, number: int, step: Any) -> None:
    out.print()
    out.rule(Text(f"{number}. {step.title}", style="bold"), align="left")
    out.print(Text(step.explanation, style="italic"))
    for query in step.queries:
        out.print(Syntax(query.sql, query.language, theme="ansi_dark", background_color="default", word_wrap=True))
        out.print(render_table(query.result, max_rows=20))


# --- wharf optimize / wharf optimizer (wharf.optimizer.commands) ------------------------------

register_optimizer(app, OptimizerCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), _out, _err))
register_quality(app, QualityCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), _out, _err))
register_cdc(
    app, CdcCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), lambda r: _out().print(render_table(r)))
)
register_auth(app, AuthCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), _out, _err))  # users, tokens, …

# --- wharf serve (wharf.server.commands) ----------------------------------------------------

register_server(app, lambda ctx: _state(ctx).lake_path, lambda ctx: reporting(_state(ctx)), lambda ctx: _state(ctx).metadata_url)
register_governance(
    app, GovernanceCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), _out, _err)
)  # roles, grants
register_access(
    app, GovernanceCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), _out, _err)
)  # access find / request / approve / deny
register_audit(app, GovernanceCli(lambda ctx: _state(ctx).lake(), lambda ctx: reporting(_state(ctx)), _out, _err))  # audit


# --- entry point ------------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point (``wharf``)."""
    app()


if __name__ == "__main__":
    main()
