"""Ingestion: sources → commits (CDC apply; exactly-once state kept in snapshot summaries)."""
