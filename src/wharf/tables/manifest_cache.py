"""Parsed manifests, kept in memory: a manifest file never changes once written.

Every statement plans its scan from the manifests of the snapshot it reads, and every commit
adds one or two manifests while keeping the rest. Parsing all of them again for each statement
made a table streamed in small commits slower with every commit (about 1 ms of Avro decoding per
manifest: seconds per statement after a few thousand commits). Entries are cached by manifest
path, so a statement decodes only the manifests added since the last one it planned.

Cached entries are shared between statements and threads and must not be mutated (Wharf only
reads them; writers build new entries). The cache is bounded by the number of entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pyiceberg.io import FileIO
from pyiceberg.manifest import ManifestEntry, ManifestEntryStatus, ManifestFile

MAX_ENTRIES = 1_000_000
"""Entries kept at most (a few hundred bytes each with their statistics)."""

_cache: OrderedDict[str, tuple[ManifestEntry, ...]] = OrderedDict()
_size = 0
_lock = threading.Lock()


def manifest_entries(io: FileIO, manifest: ManifestFile, *, discard_deleted: bool = True) -> list[ManifestEntry]:
    """The entries of ``manifest`` (as ``ManifestFile.fetch_manifest_entry``), decoded once per process."""
    global _size
    key = manifest.manifest_path
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
    if cached is None:
        cached = tuple(manifest.fetch_manifest_entry(io, discard_deleted=False))
        with _lock:
            if key not in _cache:
                _cache[key] = cached
                _size += len(cached)
                while _size > MAX_ENTRIES and len(_cache) > 1:
                    _, dropped = _cache.popitem(last=False)
                    _size -= len(dropped)
    if not discard_deleted:
        return list(cached)
    return [e for e in cached if e.status != ManifestEntryStatus.DELETED]


def clear() -> None:
    """Forget every cached manifest (tests; memory pressure)."""
    global _size
    with _lock:
        _cache.clear()
        _size = 0
