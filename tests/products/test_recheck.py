"""The send-time re-check of product rules, with the injected clock: a cross-sell or refill
reminder planned while it held is skipped, with a named reason, when the customer bought
the suggestion (or the product again) before it went out; others in the batch still go."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import CaptureGateway
from product_shop import BEANS, POT, TEA, ProductShop, day
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message
from campaigner.products.recheck import BOUGHT_AGAIN, BOUGHT_SUGGESTION, ORDER_NOT_PAID
from campaigner.runtime import Runtime

FOOTER = "\nلغو۱۱"  # the opt-out footer of a Persian marketing message


class Daemon:
    """The real runtime over rule files, on a clock the test moves."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        settings.paths.rules.mkdir()
        settings.paths.templates.mkdir()
        self.settings, self.sessions = settings, sessions
        self.shop = ProductShop(sessions, settings)
        self.gateway = CaptureGateway()
        self.clock = FixedClock(day(0))

    def rule(self, name: str, text: str) -> None:
        (self.settings.paths.rules / f"{name}.toml").write_text(text, encoding="utf-8")
        (self.settings.paths.templates / f"{name}.j2").write_text(
            "{{ first_name }}: " + name, encoding="utf-8"
        )

    def runtime(self, at: datetime) -> Runtime:
        self.clock.set(at)
        return Runtime.build(
            self.settings, clock=self.clock, sessions=self.sessions, gateway=self.gateway
        )

    def outcomes(self) -> dict[str, tuple[str, str | None]]:
        """Customer external id -> (status, reason) of their message."""
        with self.sessions() as session:
            rows = session.execute(
                select(Customer.external_id, Message.status, Message.reason).join(Customer)
            )
            return {who: (status, reason) for who, status, reason in rows}


@pytest.fixture
def daemon(settings: Settings, sessions: sessionmaker[Session]) -> Daemon:
    return Daemon(settings, sessions)


def test_a_cross_sell_is_skipped_once_the_suggestion_was_bought_before_it_went_out(
    daemon: Daemon,
) -> None:
    daemon.rule(
        "beans",
        'trigger = "cross_sell"\ntemplate = "beans.j2"\nafter = "7d"\n'
        'bought = { categories = ["teaware"] }\nsuggest = { products = ["BEAN-70"] }\n'
        'suggestion = "beans"\n',
    )
    for name in ("bought_meanwhile", "still_wants", "buys_later"):
        daemon.shop.customer(name)
        daemon.shop.order(name, day(0), POT)
    runtime = daemon.runtime(day(7, 1))
    assert runtime.plan().rules["beans"].planned == 3
    # Planned while it held; then a purchase before the dispatcher gets to it, and one
    # dated after the moment of sending (a rehearsal's future), which does not count yet.
    daemon.shop.order("bought_meanwhile", day(7, 2), BEANS)
    daemon.shop.order("buys_later", day(9), BEANS)
    daemon.clock.set(day(7, 3))
    report = runtime.drain()
    assert report.skipped == {BOUGHT_SUGGESTION: 1}
    assert daemon.outcomes() == {
        "bought_meanwhile": ("skipped", BOUGHT_SUGGESTION),
        "still_wants": ("sent", None),
        "buys_later": ("sent", None),
    }
    texts = sorted(message.text for message in daemon.gateway.sent)
    assert texts == ["Buys_later: beans" + FOOTER, "Still_wants: beans" + FOOTER]


def test_a_refill_reminder_waiting_for_its_window_is_skipped_when_bought_again(
    daemon: Daemon,
) -> None:
    daemon.rule(
        "refill",
        'trigger = "replenish"\ntemplate = "refill.j2"\ndays = 30\nwindow = "18:00-20:00"\n'
        'bought = { products = ["TEA-57"] }\n',
    )
    for name in ("restocked", "other_product", "runs_out"):
        daemon.shop.customer(name)
        daemon.shop.order(name, day(0), TEA)  # 08:00 UTC: due 08:00 on day 30
    runtime = daemon.runtime(day(30, 1))
    runtime.plan()
    waiting = runtime.drain()  # 09:00: outside the rule's window, all three wait for 18:00
    assert (waiting.deferred, daemon.gateway.sent) == (3, [])
    daemon.shop.order("restocked", day(30, 4), TEA)
    daemon.shop.order("other_product", day(30, 4), POT)  # not the product: still reminded
    daemon.clock.set(day(30, 10))
    runtime.plan()  # the new tea order is an occurrence of its own, due in 30 days
    runtime.drain()
    assert daemon.outcomes() == {
        "restocked": ("skipped", BOUGHT_AGAIN),
        "other_product": ("sent", None),
        "runs_out": ("sent", None),
    }
    assert len(daemon.gateway.sent) == 2


def test_a_product_message_is_skipped_once_its_order_was_refunded_before_it_went_out(
    daemon: Daemon,
) -> None:
    """Regression: a cross-sell planned on a coffee maker's order went out ("did it arrive?
    beans with it?") after the shop refunded or cancelled that order; a refill reminder
    likewise, for a purchase given back."""
    daemon.rule(
        "beans",
        'trigger = "cross_sell"\ntemplate = "beans.j2"\nafter = "7d"\n'
        'bought = { categories = ["teaware"] }\nsuggest = { products = ["BEAN-70"] }\n'
        'suggestion = "beans"\n',
    )
    daemon.rule(
        "refill",
        'trigger = "replenish"\ntemplate = "refill.j2"\ndays = 7\n'
        'bought = { products = ["TEA-57"] }\n',
    )
    orders = {}
    for name in ("refunded", "cancelled", "kept"):
        daemon.shop.customer(name)
        orders[name] = daemon.shop.order(name, day(0), POT, TEA)
    runtime = daemon.runtime(day(7, 1))
    planned = runtime.plan().rules
    assert (planned["beans"].planned, planned["refill"].planned) == (3, 3)
    for name in ("refunded", "cancelled"):
        daemon.shop.order(name, day(0), POT, TEA, status=name, external_id=orders[name])
    daemon.clock.set(day(7, 2))
    report = runtime.drain()
    assert report.skipped == {ORDER_NOT_PAID: 4}
    with daemon.sessions() as session:
        rows = session.execute(
            select(Customer.external_id, Message.rule, Message.status, Message.reason).join(
                Customer
            )
        )
        outcomes = sorted(tuple(row) for row in rows)
    # The kept order's two messages go (the second one held by the daily cap, not skipped).
    assert outcomes == [
        ("cancelled", "beans", "skipped", ORDER_NOT_PAID),
        ("cancelled", "refill", "skipped", ORDER_NOT_PAID),
        ("kept", "beans", "sent", None),
        ("kept", "refill", "queued", "cap"),
        ("refunded", "beans", "skipped", ORDER_NOT_PAID),
        ("refunded", "refill", "skipped", ORDER_NOT_PAID),
    ]


ORDER_RULES = {
    "post_purchase": 'trigger = "post_purchase"\ntemplate = "thanks.j2"\ndelay = "2h"\n',
    "nps_survey": 'trigger = "nps_survey"\ntemplate = "thanks.j2"\ndelay = "2h"\n',
    "referral_request": (
        'trigger = "referral_request"\ntemplate = "thanks.j2"\nafter_orders = 1\ndelay = "2h"\n'
    ),
}


@pytest.mark.parametrize("kind", sorted(ORDER_RULES))
def test_an_order_message_waiting_to_go_is_skipped_once_its_order_is_no_longer_paid(
    daemon: Daemon, kind: str
) -> None:
    """Regression: a thank-you (or survey, or referral ask) planned on a paid order and
    waiting went out after the shop refunded, cancelled or deleted that order. An order
    paid again before the moment of sending has its message back."""
    daemon.rule("thanks", ORDER_RULES[kind])
    orders = {}
    for name in ("refunded", "cancelled", "restored", "kept", "refunded_in_full", "in_part"):
        daemon.shop.customer(name)
        orders[name] = daemon.shop.order(name, day(0), TEA)
    runtime = daemon.runtime(day(0, 3))
    assert runtime.plan().rules["thanks"].planned == 6
    for name, status in (("refunded", "refunded"), ("cancelled", "cancelled")):
        daemon.shop.order(name, day(0), TEA, status=status, external_id=orders[name])
    # A refund webhook gives the money back before the shop's status follows (still "paid").
    for name, refunded in (("refunded_in_full", "100"), ("in_part", "40")):
        daemon.shop.order(name, day(0), TEA, refunded=refunded, external_id=orders[name])
    daemon.shop.order("restored", day(0), TEA, status="refunded", external_id=orders["restored"])
    daemon.shop.order("restored", day(0), TEA, external_id=orders["restored"])
    daemon.clock.set(day(0, 4))
    report = runtime.drain()
    assert report.skipped == {ORDER_NOT_PAID: 3}
    assert daemon.outcomes() == {
        "refunded": ("skipped", ORDER_NOT_PAID),
        "cancelled": ("skipped", ORDER_NOT_PAID),
        "refunded_in_full": ("skipped", ORDER_NOT_PAID),
        "restored": ("sent", None),
        "kept": ("sent", None),
        "in_part": ("sent", None),
    }
    assert len(daemon.gateway.sent) == 3


def test_an_order_refunded_in_full_before_planning_is_not_planned(daemon: Daemon) -> None:
    """Regression: an order a refund webhook had refunded in full, its status still "paid",
    was planned a thank-you; one refunded in part still is."""
    daemon.rule("thanks", ORDER_RULES["post_purchase"])
    for name, refunded in (("refunded_in_full", "100"), ("in_part", "40")):
        daemon.shop.customer(name)
        daemon.shop.order(name, day(0), TEA, refunded=refunded)
    runtime = daemon.runtime(day(0, 3))
    assert runtime.plan().rules["thanks"].planned == 1
    daemon.clock.set(day(0, 4))
    runtime.drain()
    assert daemon.outcomes() == {"in_part": ("sent", None)}
