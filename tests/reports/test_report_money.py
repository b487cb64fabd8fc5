"""Money in reports: every amount with its currency, and never a sum across currencies."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message, Order
from campaigner.reports import Report, build_report, render_html, report_to_csv, report_to_json
from campaigner.reports.model import Revenue
from campaigner.reports.terminal import print_report

NOW = datetime(2026, 4, 5, 12, 0, tzinfo=UTC)
SENT = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
# (customer, currency, total): two orders attributed to thank_you messages, two more buyers.
ORDERS = [(1, "IRT", "300000"), (2, "AED", "50"), (3, "CAD", "80"), (4, "EUR", "20")]


def fill(session: Session) -> None:
    for number, currency, total in ORDERS:
        session.add(Customer(id=number, external_id=f"c{number}", phone=f"+9891200000{number}"))
        session.flush()
        session.add(
            Order(
                external_id=f"o{number}",
                customer_id=number,
                total=Decimal(total),
                currency=currency,
                status="paid",
                paid_at=SENT + timedelta(days=1),
            )
        )
    for number in (1, 2):  # the IRT and the AED buyer were messaged the day before
        session.add(
            Message(
                rule="thank_you",
                customer_id=number,
                occurrence_key="1",
                status="delivered",
                phone=f"+9891200000{number}",
                due_at=SENT,
                scheduled_for=SENT,
                sent_at=SENT,
                segments=1,
                encoding="ucs2",
            )
        )


def money_report(sessions: sessionmaker[Session], settings: Settings) -> Report:
    with sessions.begin() as session:
        fill(session)
    with sessions() as session:
        return build_report(
            session,
            since=date(2026, 3, 1),
            until=date(2026, 3, 31),
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(NOW),
        )


def test_revenue_is_never_summed_across_currencies(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    report = money_report(sessions, settings)
    data = json.loads(report_to_json(report))
    (thank_you,) = data["rules"]
    assert [(r["currency"], r["revenue"]) for r in thank_you["revenue"]] == [
        ("AED", "50.00"),
        ("IRT", "300000.00"),
    ]
    assert thank_you["cost"] == {"amount": "0.0150", "currency": "USD"}
    clv = {r["currency"]: r["average_clv"] for r in data["kpis"]["revenue"]}
    assert clv == {"AED": "50.00", "CAD": "80.00", "EUR": "20.00", "IRT": "300000.00"}

    rows = list(csv.reader(io.StringIO(report_to_csv(report))))
    assert ["rule", "thank_you", "revenue", "300000.00", "IRT"] in rows
    assert ["rule", "thank_you", "revenue", "50.00", "AED"] in rows
    assert ["rule", "thank_you", "cost", "0.0150", "USD"] in rows
    assert ["kpis", "", "average_clv", "80.00", "CAD"] in rows

    out = io.StringIO()
    print_report(report, Console(file=out, width=160))
    table = out.getvalue()
    assert "300,000.00 IRT" in table and "50.00 AED" in table and "0.0150 USD" in table
    page = render_html(report, shop_name="Shop")
    assert "300,000.00 IRT" in page and "50.00 AED" in page and "80.00 CAD" in page
    for output in (json.dumps(data), table, page):
        assert "300050" not in output and "300,050" not in output
        assert "75,037.50" not in output and "75037.50" not in output  # the mixed average CLV


def with_rates(settings: Settings, rates: dict[str, str]) -> Settings:
    reports = settings.reports.model_copy(
        update={"exchange_rates": {code: Decimal(rate) for code, rate in rates.items()}}
    )
    return settings.model_copy(update={"reports": reports})


def test_exchange_rates_add_a_converted_total_labelled_as_such(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    rates = {"IRT": "0.00002", "AED": "0.27", "CAD": "0.73", "EUR": "1.08"}
    report = money_report(sessions, with_rates(settings, rates))
    (thank_you,) = report.rules
    assert thank_you.converted_revenue is not None
    assert thank_you.converted_revenue.total is not None
    # 300,000 x 0.00002 + 50 x 0.27 = 6 + 13.50
    assert thank_you.converted_revenue.total.amount == Decimal("19.50")
    converted = report.kpis.converted_revenue
    assert converted is not None and converted.total is not None
    assert converted.total.amount == Decimal("99.50")  # + 80 x 0.73 + 20 x 1.08
    assert converted.total.average_clv == Decimal("24.88")  # over 4 buyers
    data = json.loads(report_to_json(report))
    assert data["kpis"]["revenue_converted"]["revenue"] == "99.50"
    assert data["kpis"]["revenue_converted"]["currency"] == "USD"
    rows = list(csv.reader(io.StringIO(report_to_csv(report))))
    assert ["kpis", "", "revenue_converted.revenue", "99.50", "USD"] in rows
    out = io.StringIO()
    print_report(report, Console(file=out, width=160))
    assert "all, converted to USD" in out.getvalue() and "≈ 99.50 USD" in out.getvalue()
    page = render_html(report, shop_name="Shop")
    assert "all, converted to USD" in page and "≈ 19.50 USD" in page


def test_a_missing_rate_gives_no_converted_total(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    report = money_report(sessions, with_rates(settings, {"AED": "0.27"}))
    converted = report.kpis.converted_revenue
    assert converted is not None and converted.total is None
    assert converted.missing_rates == ("CAD", "EUR", "IRT")
    out = io.StringIO()
    print_report(report, Console(file=out, width=160))
    assert "no exchange rate for CAD, EUR, IRT" in out.getvalue()


def test_revenue_is_net_of_refunds(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions.begin() as session:
        fill(session)
        order = session.scalars(select(Order).where(Order.external_id == "o2")).one()
        order.refunded = Decimal("20")  # 50 AED paid, 20 given back
    with sessions() as session:
        report = build_report(
            session,
            since=date(2026, 3, 1),
            until=date(2026, 3, 31),
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(NOW),
        )
    (thank_you,) = report.rules
    assert thank_you.revenue[0] == Revenue("AED", orders=1, amount=Decimal("30.00"))
    assert report.kpis.revenue[0] == Revenue("AED", orders=1, amount=Decimal("30.00"), buyers=1)
