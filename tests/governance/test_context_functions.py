"""current_user(), is_member() and current_user_attribute() answer for the statement's principal in any statement."""

from __future__ import annotations

import wharf

WHO = "SELECT current_user(), current_user, is_member('analysts'), is_member('analyst'), current_user_attribute('region')"


def test_every_principal_gets_its_own_answer_from_one_statement_text(
    owner: wharf.Lakehouse, alice: wharf.Lakehouse, erin: wharf.Lakehouse
) -> None:
    # The same text, one after another on handles sharing the statement cache: never one principal's answer for another.
    for _ in range(2):
        assert owner.sql(WHO).fetchall() == [("tester", "tester", False, False, None)]
        assert alice.sql(WHO).fetchall() == [("alice", "alice", True, True, "US")]
        assert erin.sql(WHO).fetchall() == [("erin", "erin", True, True, "EU")]
    assert alice.sql("SELECT current_user() = ?", ["alice"]).fetchall() == [(True,)]  # prepared


def test_a_dynamic_view_filters_for_whoever_reads_it(
    owner: wharf.Lakehouse, alice: wharf.Lakehouse, erin: wharf.Lakehouse
) -> None:
    owner.sql("CREATE TABLE sales.notes (author VARCHAR, note VARCHAR)")
    owner.sql("INSERT INTO sales.notes VALUES ('alice', 'a1'), ('erin', 'e1'), ('alice', 'a2')")
    owner.sql("CREATE VIEW sales.my_notes AS SELECT note FROM sales.notes WHERE author = current_user() ORDER BY note")
    assert alice.sql("SELECT * FROM sales.my_notes").fetchall() == [("a1",), ("a2",)]
    assert erin.sql("SELECT * FROM sales.my_notes").fetchall() == [("e1",)]
    assert owner.sql("SELECT * FROM sales.my_notes").fetchall() == []


def test_an_attribute_change_reaches_the_next_statement(owner: wharf.Lakehouse, alice: wharf.Lakehouse) -> None:
    assert alice.sql("SELECT current_user_attribute('region')").scalar() == "US"
    owner.sql("ALTER USER alice SET ATTRIBUTES ('region' = 'EU')")
    assert alice.sql("SELECT current_user_attribute('region')").scalar() == "EU"
