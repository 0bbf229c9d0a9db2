"""Alembic's entry point for Wharf's migrations: runs on the connection ``upgrade`` passes in."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Wharf's migrations run through wharf.catalog.migrations.upgrade(engine), not the alembic CLI")

# The caller holds the transaction (and the write lock): run every revision inside it.
context.configure(connection=connection, target_metadata=None, render_as_batch=True, transaction_per_migration=False)
context.run_migrations()
