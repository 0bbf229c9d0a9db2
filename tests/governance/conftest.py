"""A governed lake: sales.orders under a region row filter and an email mask, analysts granted SELECT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import wharf

SETUP = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id INT, region VARCHAR, email VARCHAR, amount INT);
INSERT INTO sales.orders VALUES (1, 'US', 'ann@x.com', 10), (2, 'EU', 'bea@y.com', 20),
    (3, 'US', 'cy@z.com', 30), (4, 'APAC', 'di@w.com', 40);
CREATE TABLE sales.customers (id INT, name VARCHAR, ssn VARCHAR);
INSERT INTO sales.customers VALUES (1, 'Ann', '111'), (2, 'Bea', '222'), (3, 'Cy', '333'), (4, 'Di', '444');
CREATE USER alice WITH ATTRIBUTES ('region' = 'US');
CREATE USER erin WITH ATTRIBUTES ('region' = 'EU');
CREATE GROUP analysts;
ALTER GROUP analysts ADD USER alice, erin;
CREATE ROLE analyst;
GRANT ROLE analyst TO GROUP analysts;
GRANT SELECT ON NAMESPACE sales TO ROLE analyst;
CREATE FUNCTION by_region(r VARCHAR) RETURNS BOOLEAN
    RETURN is_member('admins') OR r = current_user_attribute('region');
CREATE FUNCTION mask_email(e VARCHAR) RETURNS VARCHAR
    RETURN CASE WHEN is_member('support') THEN e ELSE regexp_replace(e, '^.*@', '***@') END;
ALTER TABLE sales.orders SET ROW FILTER by_region ON (region);
ALTER TABLE sales.orders ALTER COLUMN email SET MASK mask_email;
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[wharf.Lakehouse]:
    with wharf.connect(tmp_path / "lake", user="tester") as lake:
        lake.sql(SETUP)
        yield lake


@pytest.fixture
def alice(owner: wharf.Lakehouse) -> wharf.Lakehouse:
    return owner.session(user="alice")


@pytest.fixture
def erin(owner: wharf.Lakehouse) -> wharf.Lakehouse:
    return owner.session(user="erin")


@pytest.fixture
def bob(owner: wharf.Lakehouse) -> wharf.Lakehouse:
    """A principal with no grants at all."""
    return owner.session(user="bob")
