"""``Result``: what ``lake.sql`` returns — Arrow underneath, streamed until you ask for all of it."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from wharf.statement import TableRead

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from rich.console import RenderableType

_REPR_ROWS = 20


def row_caption(total: int, shown: int) -> str:
    """``30 rows (showing first 20; …)``: the same words as the CLI's tables."""
    caption = f"{total} row{'s' if total != 1 else ''}"
    if total > shown:
        caption += f" (showing first {shown}; .fetchall(), .to_arrow() or .to_pandas() give all)"
    return caption


class Result:
    """Rows of one statement. Iterate batches with ``iter_batches()`` to stream large results.

    >>> import wharf
    >>> lake = wharf.connect("/tmp/wharf-doctest")  # doctest: +SKIP
    >>> lake.sql("SELECT 42 AS answer").fetchall()  # doctest: +SKIP
    [(42,)]
    """

    def __init__(
        self,
        data: pa.Table | pa.RecordBatchReader | None = None,
        *,
        rowcount: int = -1,
        message: str | None = None,
        snapshot_id: int | None = None,
    ) -> None:
        if data is None:
            data = pa.table({})
        self._reader: pa.RecordBatchReader | None = data if isinstance(data, pa.RecordBatchReader) else None
        self._table: pa.Table | None = data if isinstance(data, pa.Table) else None
        self._schema = data.schema
        self._rowcount = rowcount
        self.message = message
        self.snapshot_id = snapshot_id
        # The tables (and snapshots) the statement read, as it recorded them (``lake.sql`` sets it).
        self.reads: tuple[TableRead, ...] = ()
        self._keepalive: object = None  # whatever the stream reads from (a DuckDB cursor), kept alive with it
        # Turns an exception raised while the stream is read (DuckDB computes lazily) into a Wharf error.
        self.translate: Callable[[Exception], Exception] | None = None
        # Told how many rows a stream held once it was read to its end (the audit log's row count).
        self.on_exhausted: Callable[[int], None] | None = None

    def interrupt(self) -> None:
        """Stop DuckDB computing this result's stream (from another thread); reading it then raises."""
        interrupt = getattr(self._keepalive, "interrupt", None)
        if interrupt is not None:
            interrupt()

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self._schema.names)

    @property
    def rowcount(self) -> int:
        """Rows written by a DML statement, or rows returned by a query (reads the stream)."""
        if self._rowcount >= 0:
            return self._rowcount
        return int(self.to_arrow().num_rows)

    def known_rowcount(self) -> int | None:
        """Rows written, or rows returned if already materialised; None for a stream not read yet."""
        if self._rowcount >= 0:
            return self._rowcount
        return int(self._table.num_rows) if self._table is not None else None

    def iter_batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the result as Arrow record batches (memory stays flat for large results)."""
        if self._table is not None:
            yield from self._table.to_batches()
            return
        reader, self._reader = self._reader, None
        if reader is None:
            from wharf.errors import InvalidArgument

            raise InvalidArgument("This result's stream was already consumed", hint="keep .to_arrow() to read it twice")
        rows = 0
        with self._translated():
            for batch in reader:
                rows += batch.num_rows
                yield batch
        self._exhausted(rows)

    def to_arrow(self) -> pa.Table:
        """All rows as a ``pyarrow.Table`` (cached: calling it twice reads once)."""
        if self._table is None:
            reader, self._reader = self._reader, None
            with self._translated():
                self._table = reader.read_all() if reader is not None else pa.table({})
            if reader is not None:
                self._exhausted(self._table.num_rows)
        return self._table

    def _exhausted(self, rows: int) -> None:
        notify, self.on_exhausted = self.on_exhausted, None
        if notify is not None:
            notify(rows)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if self.translate is None:
                raise
            translated = self.translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.from_arrow(self.to_arrow())  # type: ignore[return-value]  # a Table gives a DataFrame, never a Series

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All rows as tuples, like a DB-API cursor."""
        table = self.to_arrow()
        columns = [c.to_pylist() for c in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def scalar(self) -> Any:
        """The first column of the first row (None if empty)."""
        row = self.fetchone()
        return row[0] if row else None

    def __len__(self) -> int:
        return int(self.to_arrow().num_rows)

    def _rich_table(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table as RichTable
        from rich.text import Text

        table = self.to_arrow()
        caption = row_caption(table.num_rows, _REPR_ROWS)
        complete = table.num_rows <= _REPR_ROWS
        rich = RichTable(*table.column_names, caption=caption if complete else None)
        for row in table.slice(0, _REPR_ROWS).to_pylist():
            rich.add_row(*("NULL" if v is None else str(v) for v in row.values()))
        # A partial table says so on its own line (a caption would wrap to the table's width).
        return rich if complete else Group(rich, Text(caption))

    def __rich__(self) -> RenderableType:
        if self.message and not self.columns:
            return self.message
        return self._rich_table()

    def __repr__(self) -> str:
        if self.message and not self.columns:
            return f"<Result {self.message}>"
        import io

        from rich.console import Console

        buffer = io.StringIO()
        console = Console(width=120, file=buffer, color_system=None)
        console.print(self._rich_table())
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        table = self.to_arrow()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
        body = "".join(
            "<tr>" + "".join(f"<td>{'NULL' if v is None else html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
            for row in table.slice(0, _REPR_ROWS).to_pylist()
        )
        caption = html.escape(row_caption(table.num_rows, _REPR_ROWS))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{caption}</p>"
