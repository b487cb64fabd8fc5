"""preview: a due message rendered (English and Persian), and each reason for none."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

import pytest
from pydantic import TypeAdapter
from shop_builders import put_segment
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from test_simulate import add_customer, add_order, local, row_counts

from campaigner.config import Settings
from campaigner.db.models import Customer, Message, OptOut, SegmentChange
from campaigner.errors import CampaignerError
from campaigner.planner import is_held_out
from campaigner.preview import load_rule, preview
from campaigner.rules.models import Rule


def make_rule(**fields: Any) -> Rule:
    fields.setdefault("name", "thanks")
    fields.setdefault("trigger", "post_purchase")
    fields.setdefault("template", "thanks.j2")
    if fields["trigger"] == "post_purchase":
        fields.setdefault("delay", "2h")
    return TypeAdapter(Rule).validate_python(fields)


THANKS = make_rule()


@pytest.fixture
def shop(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, int]:
    templates = settings.paths.templates
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "thanks.en.j2").write_text("Thanks {{ first_name }} for {{ order.id }}")
    (templates / "thanks.fa.j2").write_text("ممنون {{ first_name }} برای سفارش {{ order.id }}")
    (templates / "bday.j2").write_text("Happy birthday {{ first_name }}: {{ coupon.code }}")
    ids = {}
    with sessions.begin() as session:
        for n, name in enumerate(("en", "fa", "noconsent", "stopped", "nophone", "late")):
            customer = add_customer(session, name, f"+98912000010{n}", consent=name != "noconsent")
            customer.locale = "fa" if name == "fa" else "en"
            if name == "nophone":
                customer.phone = None
            paid = local(20, 20) if name == "late" else local(20, 10)
            add_order(session, customer, f"O-{name}", paid)
            ids[name] = customer.id
        session.add(OptOut(phone="+989120000103"))
        ids["bday"] = add_customer(session, "bday", "+989120000200", birthday=date(1990, 3, 21)).id
    return ids


def reasons(
    settings: Settings, sessions: sessionmaker[Session], rule: Rule, who: str | None, at: Any
) -> str:
    return " | ".join(preview(settings, sessions, rule, at, who).reasons)


def test_renders_a_due_message_in_english_and_persian(
    settings: Settings, sessions: sessionmaker[Session], shop: dict[str, int]
) -> None:
    english = preview(settings, sessions, THANKS, local(20, 12, 30), "en")
    assert english.due and english.reasons == []
    assert english.text == "Thanks En for O-en\nReply STOP to opt out"
    assert (english.segments, english.encoding) == (1, "gsm7")
    persian = preview(settings, sessions, THANKS, local(20, 12, 30), "fa")
    assert persian.text is not None and persian.text.startswith("ممنون Fa برای سفارش O-fa")
    assert persian.encoding == "ucs2"
    first = preview(settings, sessions, THANKS, local(20, 12, 30))
    assert first.customer_id == "en"  # the first customer who is due


def test_explains_each_reason_a_customer_is_not_due(
    settings: Settings, sessions: sessionmaker[Session], shop: dict[str, int]
) -> None:
    noon = local(20, 12, 30)
    assert reasons(settings, sessions, THANKS, "noconsent", noon) == "no marketing consent"
    assert reasons(settings, sessions, THANKS, "stopped", noon) == "opted out (+989120000103)"
    assert reasons(settings, sessions, THANKS, "nophone", noon) == "no phone number"
    vip = make_rule(audience={"tags_any": ["vip"]})
    assert reasons(settings, sessions, vip, "en", noon) == "not in the audience: tags_any = ['vip']"
    early = reasons(settings, sessions, THANKS, "en", local(20, 9))
    assert early.startswith("no occurrence due at this time")
    assert "next due 2026-03-20 12:00" in early
    night = preview(settings, sessions, THANKS, local(20, 22, 30), "late")
    assert night.reasons == ["outside the send window: it would go at 2026-03-21 09:00 +0330"]
    assert night.text is not None  # shown as it would read in the morning
    held = next(
        r
        for n in range(200)
        if is_held_out(r := make_rule(name=f"thanks{n}", holdout_percent=50), shop["en"])
    )
    assert reasons(settings, sessions, held, "en", noon).startswith("held out")
    with sessions.begin() as session:
        session.add(
            Message(
                rule="thanks",
                customer_id=shop["en"],
                occurrence_key=str(
                    session.scalar(select(Customer.last_order_id).where(Customer.id == shop["en"]))
                ),
                status="sent",
                due_at=local(20, 12).astimezone(UTC),
                scheduled_for=local(20, 12).astimezone(UTC),
            )
        )
    assert reasons(settings, sessions, THANKS, "en", noon).startswith(
        "already in the ledger for this occurrence"
    )
    assert "sent since" in reasons(settings, sessions, THANKS, "en", noon)


def test_birthday_next_due_and_a_sample_coupon_that_is_not_kept(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine, shop: dict[str, int]
) -> None:
    bday = make_rule(
        name="bday", trigger="birthday", template="bday.j2", coupon={"percent": 15, "prefix": "B"}
    )
    early = reasons(settings, sessions, bday, "bday", local(20, 12))
    assert "next due 2026-03-21 10:00" in early
    before = row_counts(engine)
    result = preview(settings, sessions, bday, local(21, 10, 5), "bday")
    assert result.due and result.sample_codes
    assert result.text is not None and result.text.startswith("Happy birthday Bday: B-")
    assert row_counts(engine) == before  # no coupon kept
    with sessions() as session:
        assert session.get_one(Customer, shop["bday"]).referral_code is None


def test_a_segment_change_message_previews_with_the_segment_and_says_when_it_is_due(
    settings: Settings, sessions: sessionmaker[Session], shop: dict[str, int]
) -> None:
    (settings.paths.templates / "slipping.j2").write_text(
        "{{ first_name }}: {{ customer.segment }}"
    )
    slipping = make_rule(
        name="slipping", trigger="segment_change", template="slipping.j2", to=["at_risk"]
    )
    assert reasons(settings, sessions, slipping, "en", local(20, 12)) == (
        "no occurrence due at this time (max_lateness 1d); due the day a customer moves from "
        "any segment to at_risk (now in none)"
    )
    with sessions.begin() as session:
        put_segment(session, shop["en"], "at_risk")
        session.add(
            SegmentChange(
                customer_id=shop["en"], old="loyal", new="at_risk", changed_at=local(20, 11)
            )
        )
    due = preview(settings, sessions, slipping, local(20, 12), "en")
    assert due.due and due.text == "En: at_risk\nReply STOP to opt out"


def test_an_occasion_and_a_first_order_anniversary_with_their_dates_and_years(
    settings: Settings, sessions: sessionmaker[Session], shop: dict[str, int]
) -> None:
    templates = settings.paths.templates
    (templates / "nowruz.j2").write_text("{{ occasion.name }} {{ occasion.date | jalali }}")
    (templates / "with_us.j2").write_text("{{ years }} year(s) since {{ occasion.date }}")
    nowruz = make_rule(
        name="nowruz",
        trigger="occasion",
        template="nowruz.j2",
        date="jalali:01-01",
        occasion="Nowruz",
    )
    shown = preview(settings, sessions, nowruz, local(21, 10, 30).astimezone(UTC), "en")
    assert (shown.due, shown.text) == (True, "Nowruz ۱۴۰۵/۰۱/۰۱\nReply STOP to opt out")
    assert "nobody is due" in reasons(settings, sessions, nowruz, None, local(22, 10, 30))
    with_us = make_rule(
        name="with_us", trigger="personal_date", template="with_us.j2", date="first_order"
    )
    # Their first orders were paid on 20 March 2026: a year later, one year with the shop.
    a_year_on = local(20, 10, 30).replace(year=2027)
    shown = preview(settings, sessions, with_us, a_year_on.astimezone(UTC), "en")
    assert shown.text == "1 year(s) since 2027-03-20\nReply STOP to opt out"


def test_a_rule_that_failed_to_load_is_named_with_the_loaders_problem(
    settings: Settings,
) -> None:
    """Regression: `preview broken` for rules/broken.toml with a TOML mistake said "no rule
    named 'broken'", sending the marketer to look for a typo in the name."""
    rules = settings.paths.rules
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "broken.toml").write_text('trigger = "post_purchase"\ndelay = 2h\n')
    with pytest.raises(CampaignerError) as error:
        load_rule(settings, "broken")
    message = str(error.value)
    assert message.startswith("rule 'broken' exists but failed to load: ")
    assert f"{rules / 'broken.toml'}: TOML syntax error" in message
    assert "line 2" in message
    (rules / "bad_delay.toml").write_text('trigger = "post_purchase"\ndelay = "soon"\n')
    with pytest.raises(CampaignerError) as error:
        load_rule(settings, "bad_delay")
    assert str(error.value).startswith("rule 'bad_delay' exists but failed to load: ")
    assert "bad_delay.toml: rule 'bad_delay': delay" in str(error.value)
    with pytest.raises(CampaignerError, match="no rule named 'nothing'"):
        load_rule(settings, "nothing")
