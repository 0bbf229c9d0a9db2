"""Fixtures for authentication tests: cheap password hashing, an injected clock, a migrated metadata DB."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from wharf.auth import AuthService, hashing
from wharf.catalog import migrations

OWNER = "owner"


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    """argon2's CHEAPEST profile for these tests; the library's defaults again afterwards."""
    hashing.use_test_hashing()
    yield
    hashing.use_default_hashing()


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A metadata database at the head revision, made once and copied per test."""
    path = tmp_path_factory.mktemp("auth-template") / "wharf.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def engine(migrated_db: Path, tmp_path: Path) -> Iterator[sa.Engine]:
    path = tmp_path / "wharf.db"
    shutil.copy(migrated_db, path)
    engine = sa.create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def service(engine: sa.Engine, clock: FakeClock) -> AuthService:
    return AuthService(engine, owner=OWNER, clock=clock, token_ttl_s=3600)


@pytest.fixture
def other_process(engine: sa.Engine, clock: FakeClock) -> AuthService:
    """A second service on the same database, as another server worker would have (its own caches)."""
    return AuthService(engine, owner=OWNER, clock=clock, token_ttl_s=3600)
