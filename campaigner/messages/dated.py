"""What a message about a day adds to its template: `occasion` (name and date) and `years`.

The ledger row carries only its occurrence key, so everything is read back from it: an
occasion's key is its Gregorian date; a personal date's key is the anniversary's year in
the calendar it was planned in (a year before 1700 is Jalali), and `years` counts from the
customer's own date in that calendar.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigner.calendars import birthday_in_year, year_of
from campaigner.customers.fields import FIRST_ORDER
from campaigner.db.models import Customer, CustomerDate
from campaigner.messages.context import OccasionView
from campaigner.timezones import zone_or

JALALI_BEFORE = 1700


class DatedRule(Protocol):
    @property
    def trigger(self) -> str: ...


class DateGone(ValueError):
    """The customer's date this message was planned for is no longer there."""


def dated_context(
    session: Session, rule: DatedRule, customer: Customer, key: str, default_zone: str
) -> dict[str, Any]:
    """`occasion` (and `years`) for an occasion or personal-date message; nothing for others."""
    name = str(getattr(rule, "occasion_name", ""))
    if rule.trigger == "occasion":
        return {"occasion": OccasionView(name=name, date=date.fromisoformat(key))}
    if rule.trigger != "personal_date":
        return {}
    year = int(key)
    calendar = "jalali" if year < JALALI_BEFORE else "gregorian"
    original = _original(session, str(getattr(rule, "date", "")), customer, default_zone)
    return {
        "occasion": OccasionView(name=name, date=birthday_in_year(original, year, calendar)),
        "years": year - year_of(original, calendar),
    }


def _original(session: Session, name: str, customer: Customer, default_zone: str) -> date:
    if name == FIRST_ORDER:
        if customer.first_order_at is None:
            raise DateGone("the customer has no paid order any more")
        return customer.first_order_at.astimezone(zone_or(customer.timezone, default_zone)).date()
    found = session.scalar(
        select(CustomerDate.date).where(
            CustomerDate.customer_id == customer.id, CustomerDate.name == name
        )
    )
    if found is None:
        raise DateGone(f"the customer's date {name!r} is no longer there")
    return found
