"""Durations of access: ``'8 hours'``, ``'8h'``, ``'7 days'``, ``'1 hour 30 minutes'``, ``'90s'`` → milliseconds."""

from __future__ import annotations

import re
from datetime import timedelta

from wharf.errors import InvalidArgument

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_UNIT_MS = {
    "ms": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "hrs": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
    "w": 7 * 86_400_000,
    "week": 7 * 86_400_000,
    "weeks": 7 * 86_400_000,
}
_HINT = "write it like '8 hours', '8h', '7 days', '1 hour 30 minutes' or '90s'"


def parse_duration_ms(text: str | int | timedelta) -> int:
    """Milliseconds in a duration (an int is taken as milliseconds); refuses zero, negative and unreadable ones."""
    if isinstance(text, timedelta):
        ms = int(text.total_seconds() * 1000)
    elif isinstance(text, int):
        ms = text
    else:
        spec = text.strip().lower()
        parts = _PART.findall(spec)
        if not parts or _PART.sub("", spec).replace(",", "").replace("and", "").strip():
            raise InvalidArgument(f"Cannot read the duration {text!r}", hint=_HINT)
        ms = 0
        for amount, unit in parts:
            if unit not in _UNIT_MS:
                raise InvalidArgument(f"Unknown unit {unit!r} in the duration {text!r}", hint=_HINT)
            ms += int(float(amount) * _UNIT_MS[unit])
    if ms <= 0:
        raise InvalidArgument(f"A duration of access must be positive, not {text!r}", hint=_HINT)
    return ms


def format_duration(ms: int) -> str:
    """``28800000`` → ``'8 hours'``; the largest units that add up exactly (``'1 hour 30 minutes'``)."""
    if ms <= 0:
        return "0 seconds"
    parts = []
    units = [("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000), ("second", 1000)]
    if ms % (7 * 86_400_000) == 0:  # weeks only when they are exact: '30 days', not '4 weeks 2 days'
        units.insert(0, ("week", 7 * 86_400_000))
    for unit, size in units:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    if ms:
        parts.append(f"{ms} ms")
    return " ".join(parts)
