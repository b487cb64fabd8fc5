"""`preview` of an announcement: the customer's own due time with the spread, the
audience keys that leave someone out, and the missing approval."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from announcement_shop import add_customers, rule, utc, write_announcement
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.db.models import Customer
from campaigner.preview import preview
from campaigner.rules.triggers.announcement import spread_offset

TEN_IN_TEHRAN = utc(2026, 12, 20, 6, 30)


def test_preview_renders_at_the_customers_due_time_and_says_it_is_not_approved(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    ids = add_customers(sessions, 2, zones=("Asia/Tehran",))
    write_announcement(settings, 'at = "2026-12-20T10:00"\nspread = "3h"\n')
    sale = rule(at="2026-12-20T10:00", spread="3h")
    due = TEN_IN_TEHRAN + timedelta(seconds=spread_offset("yalda_sale", ids[0], 3 * 3600))
    early = preview(settings, sessions, sale, TEN_IN_TEHRAN - timedelta(hours=1), "c0")
    assert early.text is None
    local_due = due.astimezone(ZoneInfo("Asia/Tehran")).strftime("%Y-%m-%d %H:%M %Z")
    assert early.reasons[0] == f"no occurrence due at this time (max_lateness 12h); due {local_due}"
    shown = preview(settings, sessions, sale, due, "c0")
    assert shown.text is not None and shown.text.startswith("C0 جان، حراج یلدا شروع شد")
    assert shown.reasons == [
        "not approved: nothing is queued until `campaigner announce yalda_sale --confirm` "
        "(or approved = true in its file)"
    ]
    approved = preview(
        settings, sessions, rule(at="2026-12-20T10:00", spread="3h", approved=True), due, "c0"
    )
    assert approved.due


def test_preview_names_the_announcement_audience_key_that_leaves_a_customer_out(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 1, zones=("Asia/Tehran",))
    with sessions.begin() as session:
        session.execute(update(Customer).values(city="Tehran"))
    write_announcement(settings, 'at = "2026-12-20T10:00"\n')
    sale = rule(at="2026-12-20T10:00", approved=True, audience={"cities": ["Shiraz"]})
    result = preview(settings, sessions, sale, TEN_IN_TEHRAN, "c0")
    assert "not in the audience: cities = ['Shiraz']" in result.reasons
