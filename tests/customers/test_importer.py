import csv
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import CustomerDefaults
from campaigner.customers.importer import (
    BATCH_SIZE,
    MAX_KINDS_COUNTED,
    MAX_KINDS_SHOWN,
    OTHER_KINDS,
    import_csv,
)
from campaigner.db.models import Customer, Order
from campaigner.errors import CampaignerError

DEFAULTS = CustomerDefaults()

CUSTOMERS = """\
id,first_name,last_name,phone,birthday,calendar,timezone,locale,tags,consent
c1,  علی ,رضایی,09121234567,1370/01/01,jalali,,fa,vip;newsletter,بله
c2,Olivia,Smith,+14162345678,1990-02-29,gregorian,America/Toronto,en,,yes
c3,سارا,,۰۹۳۵۱۲۳۴۵۶۷,۱۳۹۹/۱۲/۳۰,,,,,1
c4,Bad,Phone,0912,1990-01-01,,,,,yes
c5,Bad,Date,09121111111,1990-13-01,,,,,yes
c6,Bad,Zone,09121111112,,,Mars/Base,,,yes
c7,Dup,Old,00989121111113,,,,,,no
c7,Dup,New,989121111113,,,,,,no
,No,Id,09121111114,,,,,,yes
c8,Digits,Arabic,٠٩١٢١١١١١١٥,,,,,,yes
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_customers_good_and_bad_rows(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = write(tmp_path, "customers.csv", CUSTOMERS)
    report = import_csv(sessions, "customers", path, DEFAULTS)
    # Lines 2..11 in the file; "c2" with Feb 29 1990 is not a real date.
    assert report.rows == 10
    assert report.rejected == 5
    assert report.inserted == 4  # c1, c3, c7 (twice in the file, one customer), c8
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))  # type: ignore[union-attr]
    assert rejects[0][:2] == ["line", "reason"]
    by_line = {int(row[0]): row[1] for row in rejects[1:]}
    assert set(by_line) == {3, 5, 6, 7, 10}
    assert "1990-02-29" in by_line[3]
    assert "invalid phone" in by_line[5]
    assert "1990-13-01" in by_line[6]
    assert "Mars/Base" in by_line[7]
    assert "missing customer id" in by_line[10]
    # The reject file keeps the original columns so it can be fixed and re-imported.
    assert rejects[1][2:5] == ["c2", "Olivia", "Smith"]

    with sessions() as session:
        customers = {c.external_id: c for c in session.scalars(select(Customer))}
    assert set(customers) == {"c1", "c3", "c7", "c8"}
    c1 = customers["c1"]
    assert c1.first_name == "علی"
    assert c1.phone == "+989121234567"
    assert c1.calendar == "jalali"
    assert c1.birth_jalali_md == 101
    assert c1.birth_md == 321
    assert c1.tag_list == ["newsletter", "vip"]
    assert c1.marketing_consent is True
    assert c1.timezone == "Asia/Tehran"
    c3 = customers["c3"]
    assert c3.phone == "+989351234567"
    assert c3.calendar == "jalali"  # a Jalali birthday implies the Jalali calendar
    assert c3.birth_jalali_md == 1230
    assert customers["c7"].last_name == "New"  # the later row wins
    assert customers["c7"].phone == "+989121111113"
    assert customers["c7"].marketing_consent is False
    assert customers["c8"].phone == "+989121111115"


def test_reimport_changes_nothing(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = write(tmp_path, "customers.csv", CUSTOMERS)
    import_csv(sessions, "customers", path, DEFAULTS)
    with sessions() as session:
        before = {c.external_id: c.updated_at for c in session.scalars(select(Customer))}
    again = import_csv(sessions, "customers", path, DEFAULTS)
    assert (again.inserted, again.updated, again.rejected) == (0, 0, 5)
    assert again.unchanged == 5
    with sessions() as session:
        after = {c.external_id: c.updated_at for c in session.scalars(select(Customer))}
    assert after == before


def test_changed_row_updates(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    import_csv(sessions, "customers", write(tmp_path, "a.csv", CUSTOMERS), DEFAULTS)
    edited = CUSTOMERS.replace("c1,  علی ,رضایی,09121234567", "c1,علی,رضایی,09129999999")
    report = import_csv(sessions, "customers", write(tmp_path, "b.csv", edited), DEFAULTS)
    assert (report.inserted, report.updated) == (0, 1)
    with sessions() as session:
        assert (
            session.scalar(select(Customer.phone).where(Customer.external_id == "c1"))
            == "+989129999999"
        )


def test_column_mapping(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = write(tmp_path, "shop.csv", "Code,Name,Mobile\nx1,Reza,09121234567\n")
    report = import_csv(
        sessions,
        "customers",
        path,
        DEFAULTS,
        mapping={"Code": "external_id", "Name": "first_name", "Mobile": "phone"},
    )
    assert report.inserted == 1
    with sessions() as session:
        customer = session.scalars(select(Customer)).one()
    assert (customer.external_id, customer.first_name, customer.phone) == (
        "x1",
        "Reza",
        "+989121234567",
    )


def test_no_id_column_is_an_error(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    with pytest.raises(CampaignerError, match="no id column"):
        import_csv(sessions, "customers", write(tmp_path, "x.csv", "name\nA\n"), DEFAULTS)


ORDERS = """\
id,customer_id,total,currency,status,paid_at,coupon_code
o1,c1,"1,250,000",IRT,wc-completed,2026-01-10 12:00,
o2,c1,۵۰۰۰۰۰,,paid,2026-02-01T09:30:00+03:30,thx-abc
o3,c1,100,,cancelled,2026-02-02 10:00,
o4,ghost,100,,paid,2026-02-03 10:00,
o5,c1,abc,,paid,2026-02-03 10:00,
o6,c1,100,,paid,,
o7,c1,100,,lost,2026-02-03 10:00,
o8,c3,300000,,paid,2026-01-05 08:00,
"""


def test_orders_and_customer_statistics(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    import_csv(sessions, "customers", write(tmp_path, "c.csv", CUSTOMERS), DEFAULTS)
    report = import_csv(sessions, "orders", write(tmp_path, "o.csv", ORDERS), DEFAULTS)
    assert (report.rows, report.inserted, report.rejected) == (8, 4, 4)
    reasons = report.reasons
    assert reasons["unknown customer …"] == 1
    with sessions() as session:
        orders = {o.external_id: o for o in session.scalars(select(Order))}
        c1 = session.scalars(select(Customer).where(Customer.external_id == "c1")).one()
    assert orders["o1"].status == "paid"
    assert orders["o1"].total == Decimal("1250000")
    assert orders["o1"].currency == "IRT"
    assert orders["o2"].total == Decimal("500000")
    assert orders["o2"].coupon_code == "THX-ABC"
    assert (
        orders["o2"].paid_at is not None and orders["o2"].paid_at.hour == 6
    )  # 09:30+03:30 = 06:00 UTC
    assert orders["o3"].status == "cancelled" and orders["o3"].sequence is None
    assert (orders["o1"].sequence, orders["o2"].sequence) == (1, 2)
    assert c1.orders_count == 2
    assert c1.total_spent == Decimal("1750000")
    assert c1.last_order_id == orders["o2"].id
    assert c1.first_order_at == orders["o1"].paid_at
    again = import_csv(sessions, "orders", write(tmp_path, "o.csv", ORDERS), DEFAULTS)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)


def test_streams_large_file_in_batches(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    rows = BATCH_SIZE * 5 // 2
    lines = ["id,first_name,phone"] + [f"k{i},N{i},0912{i:07d}" for i in range(rows)]
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    seen: list[int] = []
    report = import_csv(sessions, "customers", path, DEFAULTS, progress=seen.append)
    assert report.inserted == rows
    assert len(seen) >= 3  # progress reported per batch, not only at the end
    assert seen[-1] == path.stat().st_size


def test_a_decimal_comma_rejects_its_row_naming_line_and_field(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: a `;` file from a European Excel with `1,5` stored an order of 15."""
    import_csv(sessions, "customers", write(tmp_path, "c.csv", CUSTOMERS), DEFAULTS)
    orders = (
        "id;customer_id;total;status;paid_at\n"
        "o1;c1;1,5;paid;2026-01-10 12:00\n"
        "o2;c1;1,500,000;paid;2026-01-11 12:00\n"
    )
    report = import_csv(sessions, "orders", write(tmp_path, "o.csv", orders), DEFAULTS)
    assert (report.inserted, report.rejected) == (1, 1)
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))  # type: ignore[union-attr]
    line, reason = rejects[1][:2]
    assert line == "2"
    assert reason.startswith("total: ambiguous amount '1,5'")
    with sessions() as session:
        totals = {o.external_id: o.total for o in session.scalars(select(Order))}
    assert totals == {"o2": Decimal(1_500_000)}


def test_dots_between_thousands_are_read_by_currency_and_a_fraction_names_line_and_field(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: `150.000` toman was stored as 150, a thousandth of the order."""
    import_csv(sessions, "customers", write(tmp_path, "c.csv", CUSTOMERS), DEFAULTS)
    orders = (
        "id,customer_id,total,currency,status,paid_at\n"
        "o1,c1,150.000,IRT,paid,2026-01-10 12:00\n"
        "o2,c1,150.5,IRT,paid,2026-01-11 12:00\n"
        "o3,c1,150.000,USD,paid,2026-01-11 12:00\n"
        "o4,c1,149.99,USD,paid,2026-01-11 12:00\n"
    )
    report = import_csv(sessions, "orders", write(tmp_path, "o.csv", orders), DEFAULTS)
    assert (report.inserted, report.rejected) == (2, 2)
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))  # type: ignore[union-attr]
    assert [row[:2] for row in rejects[1:]] == [
        [
            "3",
            "total: bad amount '150.5': IRT has no decimals, and this is a fraction; write a "
            "whole amount (dots or commas only between thousands)",
        ],
        [
            "4",
            "total: ambiguous amount '150.000': USD has 2 decimals, not 3; is a dot between "
            "thousands? write 150000, 150,000 or 150.00",
        ],
    ]
    with sessions() as session:
        totals = {o.external_id: o.total for o in session.scalars(select(Order))}
    assert totals == {"o1": Decimal(150_000), "o4": Decimal("149.99")}


def test_rejections_are_counted_by_kind_not_by_value(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: each reason embeds its bad value, so a file of 400k bad phones printed
    400k summary lines. A kind is the reason without its values; the reject file keeps
    every row's own reason."""
    lines = ["id,first_name,phone,birthday"]
    lines += [f"p{i},N,09{i:05d},1990-01-01" for i in range(3000)]  # too short, all distinct
    lines += [f"b{i},N,0912{i:07d},1990-13-{i % 28 + 1:02d}" for i in range(500)]
    lines += ["o'1,N,0912,1990-01-01", 'q"1,N,"0912\'x""",1990-01-01']  # quotes in a value
    path = write(tmp_path, "customers.csv", "\n".join(lines) + "\n")
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert report.rejected == 3502
    assert report.rejections() == [
        "   3001 × invalid phone number … (lines 2, 3, 4, …)",
        "    500 × bad date …: month must be in 1..12 (lines 3002, 3003, 3004, …)",
        "      1 × invalid phone number …: (1) The string supplied did not seem to be a phone "
        "number. (line 3503)",
    ]
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))  # type: ignore[union-attr]
    assert len(rejects) == 1 + 3502
    assert "'0900000'" in rejects[1][1] and "1990-13-01" in rejects[3001][1]


def test_the_summary_lists_a_bounded_number_of_kinds(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: a reason that names a value unquoted (the currency in `XYZ has 2 decimals`,
    the year in `the year 1405 is no order's`) made one kind per value, so a file of made-up
    currency codes printed one summary line per row. The commonest kinds are listed, the
    rest counted as one; the reject file keeps every row's own reason."""
    codes = [a + b + c for a in "BCDFGH" for b in "JKLMN" for c in "PQRSTVWX"][:200]
    lines = ["order_id,customer_id,total,currency,status,paid_at"]
    lines += [f"a{i},c1,150.000,{code},paid,2026-11-01 10:00" for i, code in enumerate(codes)]
    lines += [f"y{i},c1,100,IRT,paid,{1300 + i}-01-01 10:00" for i in range(200)]
    lines += [f"s{i},c1,100,IRT,nonsense{i},2026-11-01 10:00" for i in range(50)]
    path = write(tmp_path, "orders.csv", "\n".join(lines) + "\n")
    report = import_csv(sessions, "orders", path, DEFAULTS)
    assert report.rejected == 450
    summary = report.rejections()
    assert len(summary) <= MAX_KINDS_SHOWN + 1
    assert summary[0] == "     50 × unknown order status … (lines 402, 403, 404, …)"
    assert summary[-1].startswith(f"    {450 - 50 - (MAX_KINDS_SHOWN - 1):>3} × other reasons")
    assert sum(int(line.split("×")[0]) for line in summary) == 450
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))  # type: ignore[union-attr]
    assert len(rejects) == 1 + 450


def test_kinds_counted_stop_growing_with_the_file(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # Kinds past MAX_KINDS_COUNTED are counted with the rest: what the report keeps while
    # importing does not grow with a file whose every row has a reason of its own.
    letters = "BCDFGHJKLMNPQRSTVWXZ"
    codes = [a + b + c for a in letters for b in letters for c in letters][:1100]
    lines = ["order_id,customer_id,total,currency,status,paid_at"]
    lines += [f"a{i},c1,150.000,{code},paid,2026-11-01 10:00" for i, code in enumerate(codes)]
    path = write(tmp_path, "orders.csv", "\n".join(lines) + "\n")
    report = import_csv(sessions, "orders", path, DEFAULTS)
    assert report.rejected == 1100
    assert len(report.reasons) <= MAX_KINDS_COUNTED + 1
    summary = report.rejections()
    assert len(summary) == MAX_KINDS_SHOWN + 1 and summary[-1].endswith(f"× {OTHER_KINDS}")
    assert sum(int(line.split("×")[0]) for line in summary) == 1100
