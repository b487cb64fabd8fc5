from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import CustomerDefaults, Settings
from campaigner.customers.importer import import_csv
from campaigner.db.models import Customer
from campaigner.messages.codes import ALPHABET
from campaigner.messages.referrals import referral_code_for, referral_url

CUSTOMERS = "id,first_name,phone\nc1,Sara,09121111111\nc2,Reza,09122222222\nc3,Ali,09123333333\n"


def customers(session: Session) -> dict[str, Customer]:
    return {c.external_id: c for c in session.scalars(select(Customer))}


def test_code_is_stable_unique_and_stored(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    import_csv(sessions, "customers", path, CustomerDefaults())
    with sessions.begin() as session:
        people = customers(session)
        first = referral_code_for(session, people["c1"])
        assert referral_code_for(session, people["c1"]) == first
        other = referral_code_for(session, people["c2"])
    assert first != other
    assert len(first) == 8 and set(first) <= set(ALPHABET)
    with sessions() as session:
        people = customers(session)
        assert people["c1"].referral_code == first  # stored, so a later message sees it too
        assert referral_code_for(session, people["c1"]) == first


def test_referral_url_from_config() -> None:
    settings = Settings.model_validate({"messages": {"referral_url": "https://x.ir/r/{code}?s=1"}})
    assert referral_url("K7M3Q9PX", settings) == "https://x.ir/r/K7M3Q9PX?s=1"


def test_first_order_with_a_referral_code_records_the_referrer(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    import_csv(sessions, "customers", path, CustomerDefaults())
    with sessions.begin() as session:
        code = referral_code_for(session, customers(session)["c1"])
    orders = tmp_path / "o.csv"
    orders.write_text(
        "id,customer_id,total,paid_at,referral_code\n"
        # c2's first order carries Sara's code (lower case, as typed): c2 was referred by c1.
        f"o1,c2,100,2026-03-01 10:00,{code.lower()}\n"
        # c3 had bought before: a code on a later order is not a referral.
        "o2,c3,100,2026-02-01 10:00,\n"
        f"o3,c3,100,2026-03-01 10:00,{code}\n"
        # Nobody refers themselves, and unknown codes are ignored.
        f"o4,c1,100,2026-03-01 10:00,{code}\n",
        encoding="utf-8",
    )
    import_csv(sessions, "orders", orders, CustomerDefaults())
    with sessions() as session:
        people = customers(session)
        assert people["c2"].referred_by_id == people["c1"].id
        assert people["c3"].referred_by_id is None
        assert people["c1"].referred_by_id is None
