import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.config import CustomerDefaults
from campaigner.customers.importer import import_csv
from campaigner.db.models import Coupon, Customer, Message, Order
from campaigner.messages.codes import ALPHABET
from campaigner.messages.coupons import (
    CouponBatch,
    CouponCodeTaken,
    export_coupons,
    issue_coupon,
    new_coupon_code,
)

NOW = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)


def add_customer(session: Session, external_id: str = "c1") -> Customer:
    customer = Customer(external_id=external_id, first_name="Sara", phone="+989121234567")
    session.add(customer)
    session.flush()
    return customer


def add_message(session: Session, customer: Customer, key: str = "2026") -> Message:
    message = Message(
        rule="birthday",
        customer_id=customer.id,
        occurrence_key=key,
        due_at=NOW,
        scheduled_for=NOW,
    )
    session.add(message)
    session.flush()
    return message


def test_codes_are_unique_typable_and_prefixed() -> None:
    codes = [new_coupon_code("THX") for _ in range(100_000)]
    # 31**8 codes: 100,000 draws collide once with p ~ 0.6 %, twice with p ~ 2e-5. A collision
    # is harmless (issue_coupon retries on the unique constraint, tested below); a generator
    # with far fewer codes than it should have would collide many times.
    assert len(codes) - len(set(codes)) <= 1
    for code in codes[:1000]:
        prefix, first, second = code.split("-")
        assert prefix == "THX"
        assert len(first) == len(second) == 4
        assert set(first + second) <= set(ALPHABET)
    assert not set(ALPHABET) & set("0O1IL")
    assert new_coupon_code("")[4] == "-" and len(new_coupon_code("")) == 9
    assert new_coupon_code("b day!").startswith("BDAY-")


def test_issue_is_idempotent_per_message(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        customer = add_customer(session)
        message = add_message(session, customer)
        options = {
            "customer_id": customer.id,
            "rule": "birthday",
            "message_id": message.id,
            "percent": 15,
            "amount": None,
            "valid_days": 14,
            "prefix": "BDAY",
            "now": NOW,
        }
        first = issue_coupon(session, **options)  # type: ignore[arg-type]
        code = first.code
    with sessions.begin() as session:
        again = issue_coupon(session, **{**options, "now": NOW + timedelta(hours=1)})  # type: ignore[arg-type]
        assert again.code == code
        assert session.scalars(select(Coupon)).all() == [again]
        assert again.percent == Decimal(15)
        assert again.amount is None
        assert again.expires_at == NOW + timedelta(days=14)
        assert again.rule == "birthday"
        other = issue_coupon(
            session,
            **{**options, "message_id": add_message(session, customer, "2027").id},  # type: ignore[arg-type]
        )
        assert other.code != code


def test_a_taken_code_is_replaced(sessions: sessionmaker[Session]) -> None:
    proposals = iter(["THX-AAAA-AAAA", "THX-AAAA-AAAA", "THX-BBBB-BBBB"])
    with sessions.begin() as session:
        customer = add_customer(session)
        options = {
            "customer_id": customer.id,
            "rule": "thanks",
            "percent": None,
            "amount": 50000,
            "valid_days": 7,
            "prefix": "THX",
            "now": NOW,
            "generate": lambda prefix: next(proposals),
        }
        first = issue_coupon(session, message_id=add_message(session, customer, "a").id, **options)  # type: ignore[arg-type]
        second = issue_coupon(session, message_id=add_message(session, customer, "b").id, **options)  # type: ignore[arg-type]
        assert (first.code, second.code) == ("THX-AAAA-AAAA", "THX-BBBB-BBBB")
        assert second.amount == Decimal(50000)
    with sessions() as session:
        assert len(session.scalars(select(Coupon)).all()) == 2


def test_order_with_coupon_code_redeems_it(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions.begin() as session:
        customer = add_customer(session)
        message = add_message(session, customer)
        code = issue_coupon(
            session,
            customer_id=customer.id,
            rule="birthday",
            message_id=message.id,
            percent=10,
            amount=None,
            valid_days=14,
            prefix="BDAY",
            now=NOW,
        ).code
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "id,customer_id,total,status,paid_at,coupon_code\n"
        f"o1,c1,100,pending,,{code.lower()}\n"
        f"o2,c1,100,paid,2026-03-22 10:00,{code.lower()}\n"
        f"o3,c1,100,paid,2026-03-23 10:00,{code}\n"
        "o4,c1,100,paid,2026-03-23 11:00,NOPE-1234\n",
        encoding="utf-8",
    )
    import_csv(sessions, "orders", orders, CustomerDefaults())
    with sessions() as session:
        coupon = session.scalars(select(Coupon)).one()
        o2 = session.scalars(select(Order).where(Order.external_id == "o2")).one()
        assert coupon.redeemed_order_id == o2.id  # the first paid order, not the pending one
        assert coupon.redeemed_at == datetime(2026, 3, 22, 6, 30, tzinfo=UTC)


def test_export_and_cli(sessions: sessionmaker[Session], tmp_path: Path, db_url: str) -> None:
    with sessions.begin() as session:
        customer = add_customer(session)
        for day, key in ((1, "old"), (10, "new")):
            issue_coupon(
                session,
                customer_id=customer.id,
                rule="win_back",
                message_id=add_message(session, customer, key).id,
                percent=Decimal("12.5"),
                amount=None,
                valid_days=10,
                prefix="BACK",
                now=datetime(2026, 3, day, 12, 0, tzinfo=UTC),
            )
    path = tmp_path / "all.csv"
    with sessions() as session:
        assert export_coupons(session, None, path) == 2
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [row["customer_id"] for row in rows] == ["c1", "c1"]
    assert rows[0]["percent"] == "12.5"
    assert rows[0]["phone"] == "+989121234567"
    assert rows[0]["expires_at"] == "2026-03-11T12:00:00+00:00"
    assert rows[0]["redeemed_order_id"] == ""
    assert rows[0]["currency"] == ""  # a percentage has none

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    out = tmp_path / "since.csv"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "coupons", "export", "--since", "1404/12/15", str(out)]
    )  # 1404/12/15 = 2026-03-06
    assert result.exit_code == 0, result.output
    assert "1 coupons" in result.output
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 1
    bad = CliRunner().invoke(
        cli, ["--config", str(config), "coupons", "export", "--since", "soon", str(out)]
    )
    assert bad.exit_code == 1
    assert "--since" in bad.output


def test_export_cells_from_shop_data_are_never_formulas(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as session:
        customer = add_customer(session, external_id='=HYPERLINK("https://evil.example","x")')
        coupon = issue_coupon(
            session,
            customer_id=customer.id,
            rule="win_back",
            message_id=add_message(session, customer).id,
            percent=None,
            amount=Decimal(50000),
            valid_days=10,
            prefix="BACK",
            now=NOW,
        )
        order = Order(external_id="@SUM(1)", customer_id=customer.id, total=Decimal(5))
        session.add(order)
        session.flush()
        coupon.redeemed_order_id = order.id
    path = tmp_path / "coupons.csv"
    with sessions() as session:
        export_coupons(session, None, path)
    (row,) = csv.DictReader(path.open(encoding="utf-8"))
    assert row["customer_id"] == '\'=HYPERLINK("https://evil.example","x")'
    assert row["redeemed_order_id"] == "'@SUM(1)"
    assert row["phone"] == "+989121234567"  # a number, not a formula: left alone
    assert (row["amount"], row["currency"]) == ("50000", "IRT")


def test_a_batch_looks_up_its_coupons_once_and_inserts_the_new_ones_together(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    """Regression: each coupon cost a lookup, a savepoint and a flush of its own, half the
    time of sending a birthday batch through Kannel (py-spy, bench/kannel.py)."""
    with sessions.begin() as session:
        customer = add_customer(session)
        ids = [add_message(session, customer, f"k{n}").id for n in range(5)]
        kept = issue_coupon(session, message_id=ids[0], customer_id=customer.id, **BDAY)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    with sessions.begin() as session:
        batch_rows = list(session.scalars(select(Message).where(Message.id.in_(ids))))
        event.listen(engine, "before_cursor_execute", seen)
        try:
            batch = CouponBatch.begin(session)
            issued = [
                issue_coupon(session, message_id=i, customer_id=customer.id, **BDAY) for i in ids
            ]
            again = issue_coupon(session, message_id=ids[3], customer_id=customer.id, **BDAY)
            assert batch.flush(session) == 4
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert len(batch_rows) == 5
    assert issued[0].code == kept.code and again is issued[3]
    assert len({coupon.code for coupon in issued}) == 5
    touching = [s for s in statements if "coupons" in s]
    assert sum(s.lstrip().upper().startswith("SELECT") for s in touching) == 1
    assert sum(s.lstrip().upper().startswith("INSERT") for s in touching) == 1
    with sessions() as session:
        stored = {c.message_id: c.code for c in session.scalars(select(Coupon))}
    assert stored == {i: coupon.code for i, coupon in zip(ids, issued, strict=True)}


def test_a_code_taken_meanwhile_fails_the_whole_batch_and_stores_nothing(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        customer = add_customer(session)
        ids = [add_message(session, customer, f"k{n}").id for n in range(2)]
        issue_coupon(
            session,
            message_id=ids[0],
            customer_id=customer.id,
            **{**BDAY, "generate": lambda prefix: "BDAY-TAKE-NAAA"},  # type: ignore[arg-type]
        )
    other = add_message_in(sessions, customer.id, "k9")
    with pytest.raises(CouponCodeTaken), sessions.begin() as session:
        batch = CouponBatch.begin(session, generate=lambda prefix: "BDAY-TAKE-NAAA")
        issue_coupon(session, message_id=other, customer_id=customer.id, **BDAY)
        batch.flush(session)
    with sessions() as session:
        assert session.scalars(select(Coupon.message_id)).all() == [ids[0]]


BDAY = {
    "rule": "birthday",
    "percent": 15,
    "amount": None,
    "valid_days": 14,
    "prefix": "BDAY",
    "now": NOW,
}


def add_message_in(sessions: sessionmaker[Session], customer_id: int, key: str) -> int:
    with sessions.begin() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return add_message(session, customer, key).id
