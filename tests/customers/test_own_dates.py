"""A customer's own dates (`date:child_birthday`, `date:anniversary`) from CSV: Gregorian or
Jalali, Persian digits, one row per customer and name, bad dates rejected with their line
and column, empty cells keeping what was known."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import CustomerDefaults
from campaigner.customers.importer import import_csv
from campaigner.db.models import Customer, CustomerDate

DEFAULTS = CustomerDefaults()

# A children's shop: the buyer is the parent, the birthday that matters is the child's.
CUSTOMERS = """\
id,first_name,phone,date:child_birthday,Date: Anniversary
p1,مریم,09121234567,1398/05/20,۱۳۹۰/۰۴/۱۵
p2,Olivia,+14162345678,2019-08-11,
p3,بد,09121111111,1398/13/01,1390/01/01
p4,Bad,09121111112,2019-02-30,2010-06-01
p5,ورودی,09121111113,,1403/12/30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def own_dates(sessions: sessionmaker[Session]) -> dict[tuple[str, str], tuple[date, str]]:
    with sessions() as session:
        rows = session.execute(
            select(
                Customer.external_id, CustomerDate.name, CustomerDate.date, CustomerDate.calendar
            ).join(Customer, Customer.id == CustomerDate.customer_id)
        )
        return {(who, name): (day, calendar) for who, name, day, calendar in rows}


def test_own_dates_are_read_in_both_calendars_and_bad_ones_rejected_by_line_and_column(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    report = import_csv(sessions, "customers", write(tmp_path, CUSTOMERS), DEFAULTS)
    assert report.columns["date:child_birthday"] == "date:child_birthday"
    assert report.columns["Date: Anniversary"] == "date:anniversary"
    assert (report.inserted, report.rejected) == (3, 2)
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))  # type: ignore[union-attr]
    by_line = {int(row[0]): row[1] for row in rejects[1:]}
    assert set(by_line) == {4, 5}
    assert by_line[4].startswith("date:child_birthday: bad date '1398/13/01'")
    assert by_line[5].startswith("date:child_birthday: bad date '2019-02-30'")
    assert own_dates(sessions) == {
        ("p1", "child_birthday"): (date(2019, 8, 11), "jalali"),  # 20 Mordad 1398
        ("p1", "anniversary"): (date(2011, 7, 6), "jalali"),  # 15 Tir 1390
        ("p2", "child_birthday"): (date(2019, 8, 11), "gregorian"),
        ("p5", "anniversary"): (date(2025, 3, 20), "jalali"),  # Esfand 30, 1403 (leap)
    }


def test_a_new_date_replaces_the_old_and_an_empty_cell_keeps_it(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    import_csv(sessions, "customers", write(tmp_path, CUSTOMERS), DEFAULTS)
    again = "id,first_name,phone,date:child_birthday,date:anniversary\n"
    again += "p1,مریم,09121234567,2019-08-12,\n"
    import_csv(sessions, "customers", write(tmp_path, again), DEFAULTS)
    dates = own_dates(sessions)
    assert dates[("p1", "child_birthday")] == (date(2019, 8, 12), "gregorian")
    assert dates[("p1", "anniversary")] == (date(2011, 7, 6), "jalali")
    assert len(dates) == 4


def test_a_reserved_or_malformed_date_column_is_not_read(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    text = "id,phone,date:first_order,date:\nq1,09121234567,2020-01-01,2020-01-01\n"
    report = import_csv(sessions, "customers", write(tmp_path, text), DEFAULTS)
    assert report.unmapped == ["date:first_order", "date:"]
    assert own_dates(sessions) == {}
