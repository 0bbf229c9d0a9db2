"""``wharf serve``: the command-line entry to the server (registered on the ``wharf`` app by ``register``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer


def register(
    app: typer.Typer,
    default_lake: Callable[[typer.Context], Path | str],
    reporting: Callable[[typer.Context], AbstractContextManager[None]],
    metadata_url: Callable[[typer.Context], str | None] = lambda ctx: None,
) -> None:
    """Add ``wharf serve`` to ``app``; ``default_lake`` is the global ``--lake``, ``reporting`` turns errors into exit 1."""

    @app.command()
    def serve(
        ctx: typer.Context,
        host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
        port: Annotated[int | None, typer.Option(help="TCP port [default: 8181]")] = None,
        lake: Annotated[Path | None, typer.Option(help="Lake directory [default: the global --lake]")] = None,
        config: Annotated[Path | None, typer.Option("--config", help="TOML configuration file")] = None,
        workers: Annotated[int | None, typer.Option(help="Worker processes [default: 1]")] = None,
        no_auth: Annotated[
            bool, typer.Option("--no-auth", help="Local development: every request acts as the lake owner (loopback only)")
        ] = False,
        query_workers: Annotated[int | None, typer.Option(help="Asynchronous queries run at once [default: 4]")] = None,
        result_cache_bytes: Annotated[
            int | None, typer.Option(help="Result cache size in bytes, 0 to turn it off [default: 128 MiB]")
        ] = None,
    ) -> None:
        """Serve the lake: the Iceberg REST catalog for Spark, Trino, Flink, DuckDB, PyIceberg and Daft."""
        from wharf.server.config import load_config
        from wharf.server.run import serve as run

        with reporting(ctx):
            # The global --lake counts only when it was given (it always has a default).
            source = ctx.parent.get_parameter_source("lake") if ctx.parent is not None else None
            chosen = lake if lake is not None else (default_lake(ctx) if source and source.name != "DEFAULT" else None)
            settings = load_config(
                config,
                host=host,
                port=port,
                lake=str(chosen) if chosen is not None else None,
                metadata_url=metadata_url(ctx),
                workers=workers,
                no_auth=True if no_auth else None,
                query_workers=query_workers,
                result_cache_max_bytes=result_cache_bytes,
            )
            run(settings)
