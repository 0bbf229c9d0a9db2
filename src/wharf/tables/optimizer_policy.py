"""The optimizer's maintenance policy: ``wharf.optimizer.*`` properties of a table or a namespace.

A policy says whether the optimizer maintains a table and when it acts: compaction triggers like
AWS Glue's (more than ``compaction.min-input-files`` data files, each smaller than
``compaction.small-file-ratio`` of the target file size, or data files burdened by delete files
past Spark's thresholds), snapshot expiry (age and count), orphan-file cleanup (age, how often)
and the minimum interval between two runs on one table.

Settings are read from, in increasing precedence: the defaults below, the properties of each
enclosing namespace (``ALTER NAMESPACE db SET PROPERTIES (…)``), the table's own properties
(``ALTER TABLE t SET TBLPROPERTIES (…)``). ``check_properties`` validates ``wharf.optimizer.*``
keys when a statement sets them, so a typo fails at ``ALTER`` time rather than in the optimizer.

>>> Policy.from_properties({"wharf.optimizer.enabled": "true"}).enabled
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from wharf.errors import InvalidArgument

PREFIX = "wharf.optimizer."
TARGET_FILE_SIZE_PROPERTY = "write.target-file-size-bytes"
DEFAULT_TARGET_FILE_SIZE = 512 * 1024 * 1024


def _bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise InvalidArgument(f"Property {key} must be 'true' or 'false', got {raw!r}", hint=f"'{key}'='true'")
    return value == "true"


def _count(minimum: int) -> Callable[[str, str], int]:
    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidArgument(f"Property {key} must be a whole number, got {raw!r}", hint=f"'{key}'='{minimum}'") from None
        if value < minimum:
            raise InvalidArgument(f"Property {key} must be at least {minimum}, got {value}")
        return value

    return parse


def _number(low: float, high: float | None = None, *, low_open: bool = False) -> Callable[[str, str], float]:
    def parse(key: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise InvalidArgument(f"Property {key} must be a number, got {raw!r}") from None
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high) or value != value:
            bounds = f"{'more than' if low_open else 'at least'} {low:g}" + (f" and at most {high:g}" if high is not None else "")
            raise InvalidArgument(f"Property {key} must be {bounds}, got {raw!r}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise InvalidArgument(f"Property {key} must be one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _text(key: str, raw: str) -> str | None:
    return raw.strip() or None


@dataclass(frozen=True)
class Setting:
    """One ``wharf.optimizer.*`` property: the ``Policy`` field it sets, its parser and meaning."""

    key: str  # after the prefix
    field: str
    parse: Callable[[str, str], Any]
    doc: str


# Differences as data: the properties, in the order the docs list them.
SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", "enabled", _bool, "maintain this table (the optimizer skips tables without it)"),
    Setting("min-interval-minutes", "min_interval_minutes", _number(0), "minimum time between two runs on the table"),
    Setting("compaction.enabled", "compaction", _bool, "compact data files when a trigger fires"),
    Setting(
        "compaction.min-input-files",
        "min_input_files",
        _count(1),
        "compact when more than this many small files could be combined (in the table, Glue's trigger)",
    ),
    Setting(
        "compaction.small-file-ratio",
        "small_file_ratio",
        _number(0, 1, low_open=True),
        "a data file is small below this fraction of the target file size",
    ),
    Setting(
        "compaction.target-file-size-bytes",
        "target_file_size_bytes",
        _count(1),
        "size of the files compaction writes (default: the table's write.target-file-size-bytes, else 512 MiB)",
    ),
    Setting(
        "compaction.delete-file-threshold",
        "delete_file_threshold",
        _count(1),
        "compact when a data file has at least this many delete files",
    ),
    Setting(
        "compaction.delete-ratio-threshold",
        "delete_ratio_threshold",
        _number(0, 1, low_open=True),
        "compact when delete files remove at least this fraction of a data file's rows",
    ),
    Setting(
        "compaction.strategy", "strategy", _choice("binpack", "sort"), "rewrite strategy (sort uses sort-order or the table's)"
    ),
    Setting("compaction.sort-order", "sort_order", _text, "sort order for strategy sort: 'c1 DESC, c2' or 'zorder(c1, c2)'"),
    Setting("expiry.enabled", "expiry", _bool, "expire old snapshots (and delete the files only they read)"),
    Setting("expiry.retention-days", "retention_days", _number(0), "expire snapshots older than this many days"),
    Setting("expiry.retain-last", "retain_last", _count(1), "always keep at least this many snapshots of each branch"),
    Setting("orphans.enabled", "orphans", _bool, "delete files no metadata references"),
    Setting(
        "orphans.retention-days",
        "orphan_retention_days",
        _number(0, low_open=True),
        "only files older than this many days are orphans (files of commits in flight are younger)",
    ),
    Setting("orphans.interval-hours", "orphan_interval_hours", _number(0), "look for orphan files at most this often"),
)
BY_KEY: dict[str, Setting] = {PREFIX + s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Policy:
    """The effective maintenance policy of one table (defaults overridden by namespace, then table).

    ``origins`` says where each explicitly set property came from (``table`` or ``namespace db``).
    """

    enabled: bool = False
    min_interval_minutes: float = 5.0
    compaction: bool = True
    min_input_files: int = 100
    small_file_ratio: float = 0.75
    target_file_size_bytes: int | None = None
    delete_file_threshold: int = 10
    delete_ratio_threshold: float = 0.3
    strategy: str = "binpack"
    sort_order: str | None = None
    expiry: bool = True
    retention_days: float = 5.0
    retain_last: int = 1
    orphans: bool = True
    orphan_retention_days: float = 3.0
    orphan_interval_hours: float = 24.0
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_properties(cls, table: Mapping[str, str], namespaces: Sequence[tuple[str, Mapping[str, str]]] = ()) -> Policy:
        """The policy of a table with properties ``table`` in the namespaces ``(name, properties)``,
        outermost first. Raises ``InvalidArgument`` naming the property for an unknown key or a bad value."""
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        layers = [*((f"namespace {name}", props) for name, props in namespaces), ("table", table)]
        for origin, props in layers:
            for key, raw in props.items():
                if not key.startswith(PREFIX):
                    continue
                setting = _setting(key, origin)
                values[setting.field] = setting.parse(key, raw)
                origins[key] = origin
        policy = replace(cls(), **values, origins=origins)
        if policy.target_file_size_bytes is None:
            target = table.get(TARGET_FILE_SIZE_PROPERTY)
            size = _count(1)(TARGET_FILE_SIZE_PROPERTY, target) if target is not None else DEFAULT_TARGET_FILE_SIZE
            policy = replace(policy, target_file_size_bytes=size)
        return policy

    @property
    def target_size(self) -> int:
        return self.target_file_size_bytes or DEFAULT_TARGET_FILE_SIZE

    @property
    def small_file_bytes(self) -> int:
        """Files smaller than this count as small (Glue: 75% of the target size)."""
        return int(self.target_size * self.small_file_ratio)

    @property
    def min_interval_s(self) -> float:
        return self.min_interval_minutes * 60

    def as_properties(self) -> dict[str, str]:
        """Every setting as a ``wharf.optimizer.*`` property (unset ones shown empty)."""
        return {PREFIX + s.key: _show(getattr(self, s.field)) for s in SETTINGS}


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _setting(key: str, origin: str) -> Setting:
    setting = BY_KEY.get(key)
    if setting is None:
        raise InvalidArgument(
            f"Unknown optimizer property {key!r} ({origin})",
            hint="the optimizer's properties are: " + ", ".join(PREFIX + s.key for s in SETTINGS),
        )
    return setting


def check_properties(properties: Mapping[str, str], origin: str = "table") -> None:
    """Validate the ``wharf.optimizer.*`` keys among ``properties`` (others are not the optimizer's)."""
    for key, raw in properties.items():
        if key.startswith(PREFIX):
            _setting(key, origin).parse(key, raw)


assert {s.field for s in SETTINGS} == {f.name for f in fields(Policy)} - {"origins"}

__all__ = ["PREFIX", "SETTINGS", "Policy", "Setting", "check_properties"]
