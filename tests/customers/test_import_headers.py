"""Headers as real exports write them: matched forgivingly, and never dropped silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import CustomerDefaults
from campaigner.customers.headers import _BY_KIND, field_for
from campaigner.customers.importer import import_csv, match_headers
from campaigner.db.models import Customer
from campaigner.errors import CampaignerError

DEFAULTS = CustomerDefaults()


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_first_name_sms_consent_and_language_are_imported(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # Issue 14: these three columns were dropped without a word.
    path = write(
        tmp_path,
        "id,First Name,Mobile,SMS Consent,Language,Time Zone,DOB\n"
        "c1,Olivia,+14162345678,Yes,en,America/Toronto,1990-02-01\n",
    )
    report = import_csv(sessions, "customers", path, DEFAULTS)
    with sessions() as session:
        olivia = session.scalars(select(Customer)).one()
    assert (olivia.external_id, olivia.first_name, olivia.marketing_consent) == (
        "c1",
        "Olivia",
        True,
    )
    assert (olivia.locale, olivia.timezone, str(olivia.birthday)) == (
        "en",
        "America/Toronto",
        "1990-02-01",
    )
    assert (report.inserted, report.rejected, report.unmapped) == (1, 0, [])


def test_persian_headers(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = write(
        tmp_path,
        "id,نام,نام خانوادگی,موبایل,تاریخ تولد,Opt-In\nc1,علی,رضایی,۰۹۱۲۱۲۳۴۵۶۷,۱۳۷۰/۰۱/۰۱,بله\n",
    )
    assert import_csv(sessions, "customers", path, DEFAULTS).inserted == 1
    with sessions() as session:
        ali = session.scalars(select(Customer)).one()
    assert (ali.first_name, ali.last_name, ali.phone) == ("علی", "رضایی", "+989121234567")
    assert ali.birth_jalali_md == 101 and ali.marketing_consent is True


def test_a_file_with_persian_headers_only(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    # Seen: a Persian export's id column «شناسه» (or «کد مشتری») was not recognised, so the
    # whole file stopped: "no id column (expected 'external_id' or 'id', …)".
    customers = write(
        tmp_path,
        "کد مشتری,نام,موبایل\nc1,علی,09121234567\n",
    )
    assert import_csv(sessions, "customers", customers, DEFAULTS).inserted == 1
    orders = write(
        tmp_path,
        "شماره سفارش,کد مشتری,مبلغ,تاریخ پرداخت\n1001,c1,480000,2026-03-01 10:00\n",
        "orders.csv",
    )
    report = import_csv(sessions, "orders", orders, DEFAULTS)
    assert (report.inserted, report.rejected, report.unmapped) == (1, 0, [])
    assert field_for("شناسه", "customers") == field_for("شناسه", "orders") == "external_id"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("first_name", "first_name"),
        (" FIRST-NAME ", "first_name"),
        ("Phone Number", "phone"),
        ("Cell", "phone"),
        ("phone_number", "phone"),
        ("Opt In", "marketing_consent"),
        ("Time-Zone", "timezone"),
        ("Date of Birth", "birthday"),
        ("نام\u200cخانوادگی", "last_name"),
        ("شماره موبایل", "phone"),
        ("Favourite colour", None),
    ],
)
def test_header_spellings(header: str, field: str | None) -> None:
    assert field_for(header, "customers") == field


def test_an_orders_file_whose_customer_column_is_headed_mashtari(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """A new user's orders export said «مشتری» ("customer") over the customer's id: the
    column was named as unknown and every order was rejected for having no customer."""
    customers = write(tmp_path, "کد مشتری,نام,شماره تماس\nc1,علی,09121234567\n")
    assert import_csv(sessions, "customers", customers, DEFAULTS).inserted == 1
    orders = write(
        tmp_path,
        "شماره سفارش,مشتری,مبلغ کل,تاریخ پرداخت\n1001,c1,480000,2026-03-01 10:00\n",
        "orders.csv",
    )
    report = import_csv(sessions, "orders", orders, DEFAULTS)
    assert (report.inserted, report.rejected, report.unmapped) == (1, 0, [])
    with sessions() as session:
        assert session.scalars(select(Customer.phone)).one() == "+989121234567"


@pytest.mark.parametrize(
    ("header", "kind", "field"),
    [
        ("مشتری", "orders", "customer_id"),
        ("Customer No", "orders", "customer_id"),
        ("User ID", "orders", "customer_id"),
        ("سفارش", "orders", "external_id"),
        ("مبلغ سفارش", "orders", "total"),
        ("Total Price", "orders", "total"),
        ("Customer No", "customers", "external_id"),
        ("شماره تماس", "customers", "phone"),
        ("تلفن تماس", "customers", "phone"),
        ("Contact Number", "customers", "phone"),
        ("Mobile No", "customers", "phone"),
        ("Phone No.", "customers", "phone"),
        ("همراه", "customers", "phone"),
        ("نام کوچک", "customers", "first_name"),
        ("فامیلی", "customers", "last_name"),
        ("نام فامیلی", "customers", "last_name"),
        # In a customers file «مشتری» could as well be the customer's name: not guessed.
        ("مشتری", "customers", None),
    ],
)
def test_more_spellings_of_ids_phones_and_names(header: str, kind: str, field: str | None) -> None:
    assert field_for(header, kind) == field


def test_no_spelling_names_two_fields_of_one_kind() -> None:
    """A spelling listed under two fields would silently mean the last one."""
    for kind, table in _BY_KIND.items():
        listed = [spelling for spellings in table.values() for spelling in spellings]
        assert len(listed) == len(set(listed)), kind


def test_unmapped_columns_are_named_and_strict_refuses_them(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = write(tmp_path, "id,Mobile,Loyalty Tier,Notes\nc1,09121234567,gold,x\n")
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert report.unmapped == ["Loyalty Tier", "Notes"]
    assert "not imported: 'Loyalty Tier', 'Notes'" in report.summary()
    with pytest.raises(CampaignerError, match=r"people\.csv: column\(s\) 'Loyalty Tier', 'Notes'"):
        import_csv(sessions, "customers", path, DEFAULTS, strict=True)
    mapped = import_csv(
        sessions, "customers", path, DEFAULTS, mapping={"Loyalty Tier": "tags"}, strict=False
    )
    assert mapped.unmapped == ["Notes"]


def test_values_that_mean_nothing_are_rejected_not_defaulted(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = write(
        tmp_path,
        "id,phone,consent,language\n"
        "c1,09121234567,maybe,fa\n"
        "c2,09121234568,yes,Klingon\n"
        "c3,09121234569,yes,Persian\n",
    )
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert (report.inserted, report.rejected) == (1, 2)
    rejects = (tmp_path / "people.rejects.csv").read_text(encoding="utf-8")
    assert "not a yes/no value: 'maybe'" in rejects
    assert "unknown locale 'Klingon'" in rejects
    with sessions() as session:
        assert session.scalars(select(Customer.locale)).one() == "fa"


def test_a_field_named_twice_is_read_from_its_own_name() -> None:
    """Regression: an items file with «کد کالا» (an alias of `sku`) before an `sku` column
    read the SKUs from «کد کالا» and dropped `sku` as "not imported"."""
    renames, unmapped = match_headers(["شماره سفارش", "کد کالا", "sku", "نام"], "items", {})
    assert renames == {"شماره سفارش": "order_id", "sku": "sku"}
    assert unmapped == ["کد کالا", "نام"]
    renames, _ = match_headers(["Code", "sku"], "items", {"Code": "sku"})  # --map wins
    assert renames == {"Code": "sku"}
