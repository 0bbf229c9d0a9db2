"""CLI: ``wharf cdc apply TARGET --from FILE|QUERY --keys id --sequence-by lsn …``.

``register`` adds the ``cdc`` group to the ``wharf`` app; the app passes in how it opens the
lake, reports errors and prints, so this module needs nothing from ``wharf.cli`` (which sits
above it). The command runs ``Table.apply_changes``, i.e. ``CALL system.apply_changes``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
import typer

from wharf.errors import InvalidArgument, StorageError

if TYPE_CHECKING:
    from wharf.lakehouse import Lakehouse
    from wharf.result import Result

# Event files the command reads itself (in the client, so a governed lake needs no file access).
FILE_FORMATS = (".parquet", ".csv", ".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Cli:
    """What the command needs from the ``wharf`` app."""

    lake: Callable[[typer.Context], Lakehouse]
    reporting: Callable[[typer.Context], AbstractContextManager[None]]
    show: Callable[[Result], None]


def read_events(path: Path) -> pa.Table:
    """Read a file of change events: Parquet, CSV (header row) or JSON lines."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path)
        import pyarrow.json as pajson

        return pajson.read_json(path)
    except OSError as exc:
        raise StorageError(f"Cannot read events file {path}: {exc}") from exc
    except pa.ArrowInvalid as exc:
        raise InvalidArgument(
            f"Events file {path} is not valid {suffix.lstrip('.')}: {exc}",
            hint="Parquet, CSV with a header row, or one JSON object per line",
        ) from exc


def _is_file(source: str) -> bool:
    return source.lower().endswith(FILE_FORMATS) and not source.lstrip().lower().startswith(("select", "with", "from"))


def _names(values: list[str] | None) -> list[str]:
    return [name.strip() for value in values or [] for name in value.split(",") if name.strip()]


def register(app: typer.Typer, cli: Cli) -> None:
    """Add the ``cdc`` group (``wharf cdc apply``) to ``app``."""
    group = typer.Typer(name="cdc", help="Change data capture: apply batches of change events to tables.", no_args_is_help=True)
    app.add_typer(group)

    @group.command("apply")
    def apply(
        ctx: typer.Context,
        target: Annotated[str, typer.Argument(help="namespace.table to apply the events to.")],
        source: Annotated[str, typer.Option("--from", help="Events: a .parquet/.csv/.jsonl file, a query, or a table name.")],
        keys: Annotated[list[str], typer.Option("--keys", help="Key column(s), comma-separated or repeated.")],
        sequence_by: Annotated[str, typer.Option("--sequence-by", help="Column that orders the events of a key.")],
        operation_column: Annotated[
            str | None, typer.Option("--operation-column", help="Column holding the operation (e.g. I/U/D).")
        ] = None,
        delete_when: Annotated[
            str | None,
            typer.Option("--delete-when", help="Condition marking deletes (default: operation column is D or DELETE)."),
        ] = None,
        columns_except: Annotated[
            list[str] | None, typer.Option("--except", help="Event columns not to write (comma-separated or repeated).")
        ] = None,
        scd_type: Annotated[int, typer.Option("--scd-type", help="1: latest version per key; 2: every version.")] = 1,
        ignore_null_updates: Annotated[
            bool, typer.Option("--ignore-null-updates", help="SCD1: a NULL in an update keeps the current value.")
        ] = False,
        branch: Annotated[str | None, typer.Option("--branch", help="Apply to this branch of the table.")] = None,
    ) -> None:
        """Apply a batch of change events in sequence order, as one commit, exactly once."""
        with cli.reporting(ctx):
            events: Any = source
            if _is_file(source):
                path = Path(source)
                if not path.exists():
                    raise InvalidArgument(f"Events file {source} does not exist")
                events = read_events(path)
            result = (
                cli.lake(ctx)
                .table(target)
                .apply_changes(
                    events,
                    keys=_names(keys),
                    sequence_by=sequence_by,
                    operation_column=operation_column,
                    delete_when=delete_when,
                    columns_except=_names(columns_except),
                    scd_type=scd_type,
                    ignore_null_updates=ignore_null_updates,
                    branch=branch,
                )
            )
            cli.show(result)
