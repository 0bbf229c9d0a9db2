"""Wharf: an open, governed lakehouse in one Python package. Every table is an Apache Iceberg table."""

from wharf import errors, events
from wharf.errors import WharfError
from wharf.lakehouse import Lakehouse, connect
from wharf.result import Result
from wharf.table import Table

__version__ = "0.1.0"

__all__ = ["Lakehouse", "Result", "Table", "WharfError", "__version__", "connect", "errors", "events"]
