"""Signed shop webhooks: WooCommerce and Shopify deliveries, signed here as the shops sign them.

The bodies and headers are the shops' own documented examples (`woocommerce_payloads`,
`shopify_payloads`, each citing its source). A test that needs another situation changes a
copy and says what it changed; the phone numbers become Iranian mobiles because the
examples' numbers (555-…) are fictional and this shop texts Iran.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import pytest
import shopify_payloads as shopify_docs
import woocommerce_payloads as woo_docs
from pydantic import SecretStr, TypeAdapter
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from campaigner.clock import FixedClock
from campaigner.config import Settings, SourceSettings
from campaigner.customers.loader import LoadResult
from campaigner.db.models import (
    Customer,
    CustomerDate,
    CustomerScore,
    Message,
    Order,
    OrderItem,
    SegmentChange,
    ShopEvent,
)
from campaigner.planner import plan
from campaigner.rules.models import Rule
from campaigner.segments.daily import daily
from campaigner.segments.scoring import RESCORE_LOCK
from campaigner.server import shop_webhooks
from campaigner.server.app import create_app
from campaigner.server.shop_webhooks import CONFIRMATIONS_AT_ONCE, _Shop
from campaigner.server.signatures import sign
from campaigner.shops import shopify as shopify_mapping

WC_SECRET = "wc-webhook-secret"
# The Order deleted webhook's own Secret (`server.woocommerce_webhook_secrets`).
DELETION_SECRET = "wc-deletion-secret"
SHOPIFY_SECRET = "shpss_client_secret"
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
# X-Shopify-Triggered-At of the documented headers: when Shopify said the order was paid.
TRIGGERED_AT = datetime(2025, 7, 10, 16, 15, 47, tzinfo=UTC)
THANKS: Rule = TypeAdapter(Rule).validate_python(
    {"name": "thanks", "trigger": "post_purchase", "template": "x", "delay": "2h"}
)


def with_secrets(settings: Settings, **secrets: Any) -> Settings:
    server = settings.server.model_copy(
        update={
            "woocommerce_webhook_secret": SecretStr(WC_SECRET),
            "shopify_webhook_secret": SecretStr(SHOPIFY_SECRET),
            **secrets,
        }
    )
    return settings.model_copy(update={"server": server})


def app_client(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    app = create_app(settings=settings, sessions=sessions, clock=FixedClock(NOW), gateways={})
    return TestClient(app)


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    """The shop's webhooks signed with its one secret, but Order deleted with its own."""
    own = {"order.deleted": SecretStr(DELETION_SECRET)}
    return app_client(with_secrets(settings, woocommerce_webhook_secrets=own), sessions)


@pytest.fixture
def one_secret_client(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    """Every WooCommerce webhook signed with one secret, as README told shops to do."""
    return app_client(with_secrets(settings), sessions)


def woo(client: TestClient, topic: str, payload: Any, secret: str | None = None) -> Any:
    """A delivery of `topic`, signed as `client`'s webhook of that topic signs it (order.deleted
    with its own secret), or with `secret`."""
    if secret is None:
        secret = DELETION_SECRET if topic == "order.deleted" else WC_SECRET
    body = json.dumps(payload).encode()
    resource, event = topic.split(".")
    sent = {
        **woo_docs.HEADERS,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(body, secret) if secret else "",
    }
    return client.post("/webhooks/shop/woocommerce", content=body, headers=sent)


def shopify(
    client: TestClient,
    topic: str,
    payload: Any,
    webhook_id: str,
    secret: str = SHOPIFY_SECRET,
    **headers: str,
) -> Any:
    body = json.dumps(payload).encode()
    sent = {
        **shopify_docs.HEADERS,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        **headers,
    }
    return client.post("/webhooks/shop/shopify", content=body, headers=sent)


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def wc_order(phone: str = "09121112233") -> dict[str, Any]:
    """The documented order 727, its guest buyer with a phone the shop can text."""
    order = copy.deepcopy(woo_docs.ORDER)
    order["billing"]["phone"] = phone
    return order


def paid_order(**customer: Any) -> dict[str, Any]:
    """Shopify's sample order as a paid one: its sample is voided and cancelled, so those
    three fields change; the customer gets a phone (and whatever else is given)."""
    order = copy.deepcopy(shopify_docs.ORDER)
    order.update(financial_status="paid", cancelled_at=None, cancel_reason=None)
    order["customer"].update({"phone": "+989121234567", **customer})
    return order


def subscribed() -> dict[str, Any]:
    """`sms_marketing_consent` of the documented Customer resource (state subscribed)."""
    return copy.deepcopy(shopify_docs.CUSTOMER_RESOURCE["sms_marketing_consent"])


# --- Signatures and the shops' own requests --------------------------------------------


def test_woocommerce_ping_on_creation_is_answered_and_stores_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    body, headers = woo_docs.ping(12)
    answer = client.post("/webhooks/shop/woocommerce", content=body, headers=headers)
    assert answer.status_code == 200  # WooCommerce accepts the webhook only on exactly 200
    assert count(sessions, ShopEvent) == 0


@pytest.mark.parametrize("secret", ["", "a-wrong-secret"])
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(
    client: TestClient, sessions: sessionmaker[Session], secret: str
) -> None:
    assert woo(client, "order.created", wc_order(), secret).status_code == 401
    shopify_secret = secret or "x"
    answer = shopify(client, "orders/paid", paid_order(), "w1", shopify_secret)
    assert answer.status_code == 401
    assert count(sessions, Order) == 0 and count(sessions, Customer) == 0


def test_a_refused_signature_is_logged_with_the_webhooks_topic_and_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """WooCommerce disables a webhook after 5 failures in a row: the warning must say which
    of the shop's webhooks it is (the ID and Topic headers of woo_docs.HEADERS, as WooCommerce
    sends them), and never the signature that was refused."""
    caplog.set_level("WARNING", logger="campaigner.server.shop_webhooks")
    answer = woo(client, "order.created", wc_order(), "a-wrong-secret")
    assert answer.status_code == 401
    shopify(client, "orders/paid", paid_order(), "w1", "a-wrong-secret")
    woo_warning, shopify_warning = (r.getMessage() for r in caplog.records)
    assert woo_warning == (
        "woocommerce webhook '12' (topic 'order.created'): missing or wrong signature"
    )
    assert shopify_warning == "shopify webhook (topic 'orders/paid'): missing or wrong signature"
    refused = answer.request.headers["X-WC-Webhook-Signature"]
    assert all(
        refused not in r.getMessage() and WC_SECRET not in r.getMessage() for r in caplog.records
    )


def test_the_headers_logged_for_a_refused_signature_are_cut_short_and_printable(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The headers are not signed: anyone can fill the log through them."""
    caplog.set_level("WARNING", logger="campaigner.server.shop_webhooks")
    body = json.dumps(wc_order()).encode()
    # Header bytes arrive as Latin-1: 0x9B is a C1 terminal escape (CSI), 0x7F is DEL.
    sent = {
        "X-WC-Webhook-Topic": b"order.created" + b"x" * 5000,
        "X-WC-Webhook-ID": b"12\x7f\x9b[2J",
        "X-WC-Webhook-Signature": sign(body, "a-wrong-secret").encode(),
    }
    answer = client.post("/webhooks/shop/woocommerce", content=body, headers=sent)
    assert answer.status_code == 401
    (warning,) = (r.getMessage() for r in caplog.records)
    assert len(warning) < 200
    assert warning.startswith("woocommerce webhook '12?")
    assert "[2J' (topic 'order.createdxxx" in warning
    assert all(c.isprintable() for c in warning)


def test_unsigned_woocommerce_body_that_is_no_ping_is_401(client: TestClient) -> None:
    body = json.dumps(wc_order()).encode()
    answer = client.post(
        "/webhooks/shop/woocommerce", content=body, headers={"X-WC-Webhook-Topic": "order.created"}
    )
    assert answer.status_code == 401


def test_without_a_configured_secret_nothing_is_accepted(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    app = create_app(settings=settings, sessions=sessions, clock=FixedClock(NOW), gateways={})
    assert woo(TestClient(app), "order.created", wc_order()).status_code == 401


# --- WooCommerce ------------------------------------------------------------------------


def test_a_woocommerce_guest_order_is_stored_once(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert woo(client, "order.created", wc_order()).status_code == 200
    assert woo(client, "order.created", wc_order()).text == "already applied"  # redelivery
    with sessions() as session:
        order = session.scalars(select(Order)).one()
        customer = session.get_one(Customer, order.customer_id)
        items = session.scalars(select(OrderItem).order_by(OrderItem.line_no)).all()
    assert (order.external_id, order.status, order.total) == ("727", "paid", Decimal("29.35"))
    assert (order.currency, order.paid_at) == ("USD", datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC))
    assert (customer.external_id, customer.first_name) == ("guest:+989121112233", "John")
    assert [(i.product_id, i.sku, i.quantity, i.unit_price) for i in items] == [
        ("93", None, 2, Decimal(3)),
        ("22", "Bar3", 1, Decimal(12)),
    ]

    # A partial refund of 10.00, the way the order's `refunds` lists it; a later modification.
    refunded = wc_order()
    refunded.update(
        date_modified_gmt="2017-03-23T08:00:00",
        refunds=[woo_docs.refund_entry(726, "", "10.00")],
    )
    assert woo(client, "order.updated", refunded).status_code == 200
    with sessions() as session:
        assert session.scalars(select(Order.refunded)).one() == Decimal(10)
    assert count(sessions, ShopEvent) == 2


def test_woocommerce_item_names_lose_their_html_entities(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # The REST API returns "Ship Your Idea &ndash; Color: …": a text message must not.
    assert woo(client, "order.created", wc_order()).status_code == 200
    with sessions() as session:
        names = session.scalars(select(OrderItem.name).order_by(OrderItem.line_no)).all()
    assert names == ["Woo Single #1", "Ship Your Idea – Color: Black, Size: M Test"]


def test_a_woocommerce_customer(client: TestClient, sessions: sessionmaker[Session]) -> None:
    iranian = copy.deepcopy(woo_docs.CUSTOMER)
    iranian["billing"]["phone"] = "۰۹۱۲ ۱۲۳ ۴۵۶۷"
    assert woo(client, "customer.created", iranian).status_code == 200
    with sessions() as session:
        john = session.scalars(select(Customer)).one()
    assert (john.external_id, john.first_name, john.phone) == ("25", "John", "+989121234567")


def test_a_record_that_cannot_be_loaded_is_answered_2xx_so_the_shop_keeps_the_webhook(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # WooCommerce disables a webhook after more than 5 consecutive non-2xx answers
    # (WC_Webhook::failed_delivery); Shopify retries the same payload 8 times and may then
    # delete the subscription. A record no retry can fix is refused in the body, not the
    # status: the documented customers' numbers (555) are fictional.
    answer = woo(client, "customer.created", woo_docs.CUSTOMER)
    assert answer.status_code == 200
    assert answer.text.startswith("rejected:") and "'(555) 555-5555'" in answer.text
    answer = shopify(client, "customers/create", shopify_docs.CUSTOMER, "c1")
    assert answer.status_code == 200
    assert answer.text.startswith("rejected:") and "'555-555-5555'" in answer.text
    assert count(sessions, Customer) == 0 and count(sessions, ShopEvent) == 0


def test_a_paid_order_by_webhook_is_thanked_like_one_from_sync(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    order = wc_order()
    order["date_paid_gmt"] = "2026-03-20T08:58:08"  # paid this morning
    assert woo(client, "order.created", order).status_code == 200
    with sessions.begin() as session:
        session.execute(
            Customer.__table__.update().values(marketing_consent=True)  # consent given elsewhere
        )
    later = FixedClock(datetime(2026, 3, 20, 11, 0, tzinfo=UTC))
    with sessions.begin() as session:
        report = plan(session, [THANKS], later, settings)
    assert report.rules["thanks"].planned == 1
    with sessions() as session:
        message = session.scalars(select(Message)).one()
    assert message.due_at == datetime(2026, 3, 20, 8, 58, 8, tzinfo=UTC) + timedelta(hours=2)


# --- Shopify ----------------------------------------------------------------------------


def test_shopifys_sample_order_as_documented_is_a_cancelled_one() -> None:
    record = shopify_mapping.order_record(shopify_docs.ORDER, "")
    assert (record["external_id"], record["status"], record["paid_at"]) == (
        "820982911946154508",
        "cancelled",
        "",
    )
    # total_price is what the buyer was charged (after the 20.00 discount); money is a string.
    assert (record["total"], record["currency"]) == (Decimal("404.95"), "USD")
    assert shopify_mapping.refunds(shopify_docs.ORDER) == {}
    assert shopify_mapping.refunds({"refunds": [shopify_docs.REFUND]}) == {
        "890088186047892319": Decimal("85.00")  # its transactions, not its refunded lines
    }


def test_a_shopify_paid_order(client: TestClient, sessions: sessionmaker[Session]) -> None:
    order = paid_order(sms_marketing_consent=subscribed())
    assert shopify(client, "orders/paid", order, "b54557e4").status_code == 200
    assert shopify(client, "orders/paid", order, "b54557e4").text == "already applied"
    with sessions() as session:
        stored = session.scalars(select(Order)).one()
        john = session.scalars(select(Customer)).one()
        items = session.scalars(select(OrderItem).order_by(OrderItem.line_no)).all()
    assert (stored.external_id, stored.status, stored.total, stored.currency) == (
        "820982911946154508",
        "paid",
        Decimal("404.95"),
        "USD",
    )
    assert stored.paid_at == TRIGGERED_AT
    assert (john.external_id, john.first_name, john.phone, john.marketing_consent) == (
        "115310627314723954",
        "John",
        "+989121234567",
        True,
    )
    assert john.total_spent == Decimal("404.95")
    assert [(i.product_id, i.sku, i.line_total) for i in items][:2] == [
        ("788032119674292922", "SKU2006-001", Decimal("89.99")),
        (None, "LENS-PROTECT-2YR", Decimal("19.99")),  # a custom item has no product
    ]


def test_the_order_phone_is_the_buyers_sms_number(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # Shopify's Order.phone: "The customer's phone number for receiving SMS notifications".
    # Here the customer has none of its own (as in the sample) but gave one at checkout.
    order = paid_order(phone=None)
    order["phone"] = "+989351234567"
    assert shopify(client, "orders/paid", order, "p1").status_code == 200
    # An order without a customer ("might be null … through Shopify POS"): a guest.
    guest = paid_order()
    guest.update(id=820982911946154509, customer=None, phone="+989361234567")
    assert shopify(client, "orders/paid", guest, "p2").status_code == 200
    with sessions() as session:
        phones = dict(session.execute(select(Customer.external_id, Customer.phone)).all())
    assert phones == {
        "115310627314723954": "+989351234567",
        "guest:+989361234567": "+989361234567",
    }


def test_a_refund_counts_once_whichever_of_its_two_webhooks_comes_first(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # A refund fires refunds/create, and orders/updated with the refund in the order's
    # `refunds`; Shopify does not promise their order. The sample refund gave back 85.00.
    def refunded() -> Decimal:
        with sessions() as session:
            return session.scalars(select(Order.refunded)).one()

    assert shopify(client, "orders/paid", paid_order(), "o1").status_code == 200
    updated = paid_order()
    updated.update(financial_status="partially_refunded", refunds=[shopify_docs.REFUND])
    assert shopify(client, "orders/updated", updated, "o2").status_code == 200
    assert refunded() == Decimal(85)
    assert shopify(client, "refunds/create", shopify_docs.REFUND, "r1").status_code == 200
    assert refunded() == Decimal(85)

    second = copy.deepcopy(shopify_docs.REFUND)  # another refund of 10.00, seen first alone
    second.update(id=890088186047892320, transactions=[second["transactions"][1]])
    assert shopify(client, "refunds/create", second, "r2").status_code == 200
    assert refunded() == Decimal(95)
    updated["refunds"] = [shopify_docs.REFUND, second]
    assert shopify(client, "orders/updated", updated, "o3").status_code == 200
    assert refunded() == Decimal(95)
    with sessions() as session:
        assert session.scalars(select(Customer.total_spent)).one() == Decimal("309.95")


def test_orders_updated_keeps_the_time_the_order_was_paid(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert shopify(client, "orders/paid", paid_order(), "o1").status_code == 200
    fulfilled = paid_order()
    fulfilled["fulfillment_status"] = "fulfilled"  # a day later, shipped
    answer = shopify(
        client, "orders/updated", fulfilled, "o2", **{"X-Shopify-Triggered-At": "2025-07-11"}
    )
    assert answer.status_code == 200
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == TRIGGERED_AT


def test_editing_an_old_order_sends_no_thanks(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # The first we hear of the sample order (processed 2021-12-31) is an edit today: it was
    # paid then, not now, and the post-purchase rule must not thank it.
    assert shopify(client, "orders/updated", paid_order(), "o1").status_code == 200
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == datetime(2022, 1, 1, tzinfo=UTC)
    with sessions.begin() as session:
        session.execute(Customer.__table__.update().values(marketing_consent=True))
    with sessions.begin() as session:
        report = plan(session, [THANKS], FixedClock(NOW), settings)
    assert report.rules["thanks"].planned == 0


def test_consent_is_kept_when_a_payload_says_nothing_about_it(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    def consent() -> bool:
        with sessions() as session:
            return session.scalars(select(Customer.marketing_consent)).one()

    first = paid_order(sms_marketing_consent=subscribed())
    assert shopify(client, "orders/paid", first, "o1").status_code == 200
    assert consent() is True
    # The 2026-07 sample order's customer carries no sms_marketing_consent; older API
    # versions send it as null when the customer has none recorded.
    assert shopify(client, "orders/updated", paid_order(), "o2").status_code == 200
    assert consent() is True
    unsaid = paid_order(sms_marketing_consent=None)
    assert shopify(client, "orders/updated", unsaid, "o3").status_code == 200
    assert consent() is True
    customer = copy.deepcopy(shopify_docs.CUSTOMER)
    customer.update(id=115310627314723954, phone="+989121234567")
    assert shopify(client, "customers/update", customer, "c1").status_code == 200
    assert consent() is True
    unsubscribed = paid_order(sms_marketing_consent={**subscribed(), "state": "unsubscribed"})
    assert shopify(client, "orders/updated", unsubscribed, "o4").status_code == 200
    assert consent() is False


def test_a_new_customer_without_consent_information_has_none(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    customer = copy.deepcopy(shopify_docs.CUSTOMER)
    customer["phone"] = "+989121234567"
    assert shopify(client, "customers/create", customer, "c1").status_code == 200
    with sessions() as session:
        bob = session.scalars(select(Customer)).one()
    assert (bob.external_id, bob.first_name, bob.city, bob.marketing_consent) == (
        "706405506930370084",
        "Bob",
        "Ottawa",
        False,
    )


def test_shopifys_marketing_consent_topic(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # In API 2026-07 customers/* carry no consent: customers_marketing_consent/update does.
    def bob() -> tuple[str, str | None, bool]:
        with sessions() as session:
            customer = session.scalars(select(Customer)).one()
            return customer.first_name, customer.phone, customer.marketing_consent

    # The sample as documented (state null) says nothing yet: a customer that does not
    # exist is not made from it.
    answer = shopify(
        client, "customers_marketing_consent/update", shopify_docs.MARKETING_CONSENT, "m0"
    )
    assert answer.status_code == 200 and count(sessions, Customer) == 0

    given = copy.deepcopy(shopify_docs.MARKETING_CONSENT)
    given["phone"] = "+989121234567"
    given["sms_marketing_consent"].update(
        state="subscribed", opt_in_level="single_opt_in", consent_updated_at="2026-03-20T08:00:00Z"
    )
    assert shopify(client, "customers_marketing_consent/update", given, "m1").status_code == 200
    assert bob() == ("", "+989121234567", True)  # arrived before customers/create: kept

    customer = copy.deepcopy(shopify_docs.CUSTOMER)
    customer["phone"] = "+989121234567"
    assert shopify(client, "customers/create", customer, "c1").status_code == 200
    assert bob() == ("Bob", "+989121234567", True)

    given["sms_marketing_consent"]["state"] = "unsubscribed"
    assert shopify(client, "customers_marketing_consent/update", given, "m2").status_code == 200
    assert bob() == ("Bob", "+989121234567", False)


def test_an_unknown_consent_state_is_rejected(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    odd = paid_order(sms_marketing_consent={**subscribed(), "state": "maybe"})
    answer = shopify(client, "orders/paid", odd, "e1")
    assert answer.status_code == 200 and answer.text.startswith("rejected:")
    assert "maybe" in answer.text
    assert count(sessions, Customer) == 0 and count(sessions, ShopEvent) == 0


def test_a_refund_recorded_concurrently_is_not_counted_twice_nor_lost(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # refunds/create and orders/updated for the same refund, racing: the one that commits
    # second fails on the refund's key, changes nothing and asks Shopify to send it again.
    if sessions.kw["bind"].dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): this race needs PostgreSQL")
    assert shopify(client, "orders/paid", paid_order(), "o1").status_code == 200
    shop = _Shop(settings, sessions, FixedClock(NOW))
    refund_key = f"refund:{shopify_docs.REFUND['id']}"

    def racing(session: Session) -> LoadResult:
        unseen = shop._unseen_refunds(session, {str(shopify_docs.REFUND["id"]): Decimal(85)})
        assert unseen == Decimal(85)  # not counted yet, as far as this delivery can see
        with sessions.begin() as other:  # the other delivery commits it meanwhile
            other.add(ShopEvent(shop="shopify", key=refund_key, received_at=NOW))
        return LoadResult(updated=1)

    assert shop.apply("shopify", "r1", racing).status_code == 503
    with sessions() as session:
        paid_key = f"paid:{shopify_docs.ORDER['id']}"  # orders/paid sets the time once
        assert set(session.scalars(select(ShopEvent.key))) == {"o1", paid_key, refund_key}
    # Sent again, the delivery finds the refund counted: applied, and nothing added twice.
    assert shopify(client, "refunds/create", shopify_docs.REFUND, "r1").text == "ok 1"
    with sessions() as session:
        assert session.scalars(select(Order.refunded)).one() == Decimal(0)


# --- Payloads no documentation shows, and what a new shop sends first ------------------


def changed(payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(payload), **fields}


# Signed but malformed: a plugin or a proxy in between can send any JSON. Each used to end
# in a 500 with a traceback (AttributeError, ValueError, InvalidOperation).
MALFORMED_WOO = {
    "woocommerce, total not a number": ("order.created", changed(wc_order(), total="abc")),
    "woocommerce, total NaN": ("order.created", changed(wc_order(), total="NaN")),
    "woocommerce, customer_id not a number": (
        "order.created",
        changed(wc_order(), customer_id="x"),
    ),
    "woocommerce, billing a list": ("order.created", changed(wc_order(), billing=["x"])),
    "woocommerce, line_items a string": ("order.created", changed(wc_order(), line_items="abc")),
    "woocommerce, line_items of numbers": ("order.created", changed(wc_order(), line_items=[1, 2])),
    "woocommerce, coupon_lines of strings": (
        "order.created",
        changed(wc_order(), coupon_lines=["a"]),
    ),
    "woocommerce, refunds of numbers": ("order.created", changed(wc_order(), refunds=[5])),
    "woocommerce, meta_data a string": ("order.created", changed(wc_order(), meta_data="x")),
    "woocommerce, customer billing a string": (
        "customer.created",
        changed(woo_docs.CUSTOMER, billing="x"),
    ),
}
MALFORMED_SHOPIFY = {
    "shopify, quantity not a number": (
        "orders/paid",
        changed(paid_order(), line_items=[{"name": "a", "price": "1", "quantity": "abc"}]),
    ),
    "shopify, line_items a string": ("orders/paid", changed(paid_order(), line_items="x")),
    "shopify, discount_codes of strings": (
        "orders/paid",
        changed(paid_order(), discount_codes=["x"]),
    ),
    "shopify, customer a list": ("orders/paid", changed(paid_order(), customer=[1])),
    "shopify, default_address a string": (
        "orders/paid",
        changed(paid_order(), customer={"id": 5, "default_address": "x"}),
    ),
    "shopify, billing_address a string": (
        "orders/paid",
        changed(paid_order(), customer=None, billing_address="x"),
    ),
    "shopify, total NaN": ("orders/paid", changed(paid_order(), total_price="NaN")),
    "shopify, refunds of numbers": ("orders/updated", changed(paid_order(), refunds=[1])),
    "shopify, consent a string": (
        "customers/create",
        changed(shopify_docs.CUSTOMER, sms_marketing_consent="x"),
    ),
    "shopify, refund transactions of strings": (
        "refunds/create",
        changed(shopify_docs.REFUND, transactions=["x"]),
    ),
}


@pytest.mark.parametrize("case", [*MALFORMED_WOO, *MALFORMED_SHOPIFY])
def test_a_malformed_signed_payload_is_rejected_not_a_server_error(
    client: TestClient, sessions: sessionmaker[Session], case: str
) -> None:
    if case in MALFORMED_WOO:
        topic, payload = MALFORMED_WOO[case]
        answer = woo(client, topic, payload)
    else:
        topic, payload = MALFORMED_SHOPIFY[case]
        answer = shopify(client, topic, payload, f"m-{case}")
    assert (answer.status_code, answer.text[:9]) == (200, "rejected:"), answer.text
    assert count(sessions, Order) == 0 and count(sessions, ShopEvent) == 0


@pytest.mark.parametrize("amount", ["-50.00", "NaN", "Infinity"])
def test_a_refund_of_no_real_amount_is_rejected(
    client: TestClient, sessions: sessionmaker[Session], amount: str
) -> None:
    # Shopify's refund transactions are positive amounts; a negative one would add revenue.
    assert shopify(client, "orders/paid", paid_order(), "o1").status_code == 200
    refund = copy.deepcopy(shopify_docs.REFUND)
    for transaction in refund["transactions"]:
        transaction["amount"] = amount
    answer = shopify(client, "refunds/create", refund, "r1")
    assert (answer.status_code, answer.text[:9]) == (200, "rejected:"), answer.text
    with sessions() as session:
        assert session.scalars(select(Order.refunded)).one() == Decimal(0)


@pytest.fixture
def shop_client(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    """The shop of README "Connecting your shop": the preset with a plugin's consent key."""
    configured = settings.model_copy(
        update={
            "server": settings.server.model_copy(
                update={"woocommerce_webhook_secret": SecretStr(WC_SECRET)}
            ),
            "sources": [
                SourceSettings.model_validate(
                    {
                        "name": "shop",
                        "preset": "woocommerce",
                        "url": "mysql+pymysql://reader@db.shop.local/wordpress",
                        "customers": {
                            "consent_values": {"yes": True, "no": False},
                            "columns": {"consent": "sms_optin"},
                        },
                    }
                )
            ],
        }
    )
    app = create_app(settings=configured, sessions=sessions, clock=FixedClock(NOW), gateways={})
    return TestClient(app)


def opted_in(order: dict[str, Any], value: str = "yes") -> dict[str, Any]:
    """The order with a checkout opt-in plugin's meta entry, shaped as `meta_data` entries are."""
    return changed(
        order, meta_data=[*order["meta_data"], {"id": 13107, "key": "sms_optin", "value": value}]
    )


def test_an_order_of_a_registered_customer_not_known_yet_is_kept_and_thanked(
    shop_client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # order.created often arrives before customer.created (or the customer predates the
    # webhook): the order used to be answered "rejected: unknown customer" and lost.
    order = opted_in(changed(wc_order(), customer_id=25, date_paid_gmt="2026-03-20T08:58:08"))
    answer = woo(shop_client, "order.created", order)
    assert (answer.status_code, answer.text) == (200, "ok 1")
    with sessions() as session:
        john = session.scalars(select(Customer)).one()
    assert (john.external_id, john.first_name, john.phone) == ("25", "John", "+989121112233")
    assert john.marketing_consent is True and john.orders_count == 1
    with sessions.begin() as session:
        report = plan(session, [THANKS], FixedClock(NOW + timedelta(hours=2)), settings)
    assert report.rules["thanks"].planned == 1


def test_a_registered_buyers_order_is_kept_without_a_phone_that_is_no_phone(
    shop_client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # Known by their id, the buyer needs no phone: the order (revenue, history) is kept.
    order = changed(wc_order("(555) 555-5555"), customer_id=25)
    assert woo(shop_client, "order.created", order).text == "ok 1"
    with sessions() as session:
        john = session.scalars(select(Customer)).one()
    assert (john.external_id, john.phone, john.orders_count) == ("25", None, 1)


def test_an_order_never_replaces_a_known_customers_data_with_billing_data(
    shop_client: TestClient, sessions: sessionmaker[Session]
) -> None:
    known = changed(woo_docs.CUSTOMER, first_name="Johnny")
    known["billing"] = {**known["billing"], "phone": "09351234567"}
    assert woo(shop_client, "customer.created", known).status_code == 200
    order = opted_in(changed(wc_order("09129998877"), customer_id=25), "no")
    assert woo(shop_client, "order.created", order).text == "ok 1"
    with sessions() as session:
        john = session.scalars(select(Customer)).one()
    assert (john.first_name, john.phone, john.marketing_consent) == (
        "Johnny",
        "+989351234567",
        False,
    )


def test_the_presets_consent_key_is_read_from_the_webhooks_meta_data(
    shop_client: TestClient, sessions: sessionmaker[Session]
) -> None:
    def consent(external_id: str) -> bool:
        with sessions() as session:
            return session.scalars(
                select(Customer.marketing_consent).where(Customer.external_id == external_id)
            ).one()

    # A guest's checkout opt-in is on the order.
    assert woo(shop_client, "order.created", opted_in(wc_order())).text == "ok 1"
    assert consent("guest:+989121112233") is True
    # A registered customer's, in their user meta.
    iranian = changed(woo_docs.CUSTOMER, meta_data=[{"id": 1, "key": "sms_optin", "value": "yes"}])
    iranian["billing"] = {**iranian["billing"], "phone": "09121234567"}
    assert woo(shop_client, "customer.created", iranian).text == "ok 1"
    assert consent("25") is True
    # customer.updated without the key says nothing: the consent stays.
    later = changed(iranian, meta_data=[], date_modified_gmt="2017-03-22T10:00:00")
    assert woo(shop_client, "customer.updated", later).text == "ok 1"
    assert consent("25") is True
    withdrawn = changed(
        iranian,
        meta_data=[{"id": 1, "key": "sms_optin", "value": "no"}],
        date_modified_gmt="2017-03-23T10:00:00",
    )
    assert woo(shop_client, "customer.updated", withdrawn).text == "ok 1"
    assert consent("25") is False


def test_the_day_an_account_was_created_is_its_signup_date(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    iranian = copy.deepcopy(woo_docs.CUSTOMER)
    iranian["billing"]["phone"] = "09121234567"
    assert woo(client, "customer.created", iranian).status_code == 200
    bob = copy.deepcopy(shopify_docs.CUSTOMER)
    bob["phone"] = "+989351234567"
    assert shopify(client, "customers/create", bob, "c1").status_code == 200
    odd = copy.deepcopy(woo_docs.CUSTOMER)
    odd.update(id=26, date_created="yesterday")
    odd["billing"]["phone"] = "09121112222"
    assert woo(client, "customer.created", odd).status_code == 200
    with sessions() as session:
        signups = dict(
            session.execute(
                select(Customer.external_id, CustomerDate.date).join(
                    CustomerDate, CustomerDate.customer_id == Customer.id
                )
            ).all()
        )
    assert count(sessions, Customer) == 3
    # WooCommerce's date_created is the site's own time; Shopify's created_at carries its
    # offset: the day as the shop saw it, not the UTC day (2022-01-01 for Bob).
    assert signups == {"25": date(2017, 3, 21), "706405506930370084": date(2021, 12, 31)}


# --- Deliveries out of order: the newest data the shop sent stays -----------------------


def stored_order(sessions: sessionmaker[Session]) -> tuple[str, list[str]]:
    with sessions() as session:
        order = session.scalars(select(Order)).one()
        items = session.scalars(select(OrderItem.name).order_by(OrderItem.line_no)).all()
    return order.status, list(items)


def first_name(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        return session.scalars(select(Customer.first_name)).one()


def test_a_stale_woocommerce_order_update_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # WooCommerce queues deliveries in Action Scheduler and sends them from background runs
    # (it does not resend a failed one): an order.updated of 19:28 (still pending) can arrive
    # after the one of 19:40 (paid).
    newer = wc_order()
    newer["date_modified_gmt"] = "2017-03-22T19:40:00"
    older = wc_order()
    older.update(status="pending", date_paid_gmt=None, line_items=older["line_items"][:1])
    assert woo(client, "order.updated", newer).text == "ok 1"
    answer = woo(client, "order.updated", older)
    assert answer.status_code == 200 and answer.text.startswith("stale")
    assert stored_order(sessions) == (
        "paid",
        ["Woo Single #1", "Ship Your Idea – Color: Black, Size: M Test"],
    )
    # Its key is kept: sent again, it is a plain redelivery.
    assert woo(client, "order.updated", older).text == "already applied"
    # A delivery as new as the stored one, or newer, is applied.
    newest = wc_order()
    newest.update(status="completed", date_modified_gmt="2017-03-22T19:41:00")
    newest["line_items"] = newest["line_items"][1:]
    assert woo(client, "order.updated", newest).text == "ok 1"
    assert stored_order(sessions) == ("paid", ["Ship Your Idea – Color: Black, Size: M Test"])


def test_a_stale_woocommerce_customer_update_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    customer = copy.deepcopy(woo_docs.CUSTOMER)
    customer["billing"]["phone"] = "09121234567"
    renamed = copy.deepcopy(customer)
    renamed.update(first_name="Johnny", date_modified_gmt="2017-03-21T20:00:00")
    assert woo(client, "customer.updated", renamed).text == "ok 1"
    assert woo(client, "customer.created", customer).text.startswith("stale")
    assert first_name(sessions) == "Johnny"


def test_a_stale_shopify_order_update_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    paid = paid_order()
    paid["updated_at"] = "2022-01-01T10:00:00-05:00"
    unpaid = paid_order()
    unpaid.update(financial_status="pending", line_items=unpaid["line_items"][:1])
    assert shopify(client, "orders/updated", paid, "u2").text == "ok 1"
    # The earlier update (19:00 the day before) arrives last: Shopify does not promise order.
    answer = shopify(client, "orders/updated", unpaid, "u1")
    assert answer.status_code == 200 and answer.text.startswith("stale")
    status, items = stored_order(sessions)
    assert status == "paid" and len(items) == len(paid["line_items"])


def test_a_stale_shopify_customer_update_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    customer = copy.deepcopy(shopify_docs.CUSTOMER)
    customer["phone"] = "+989121234567"
    renamed = copy.deepcopy(customer)
    renamed.update(first_name="Robert", updated_at="2022-01-02T08:00:00-05:00")
    assert shopify(client, "customers/update", renamed, "c2").text == "ok 1"
    assert shopify(client, "customers/update", customer, "c1").text.startswith("stale")
    assert first_name(sessions) == "Robert"


def test_woocommerce_names_with_html_entities_read_as_text(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # The REST API returns a profile's name as stored: `&` as `&amp;` (WordPress's kses),
    # or numeric entities for a name typed where the page was not UTF-8.
    customer = copy.deepcopy(woo_docs.CUSTOMER)
    customer.update(first_name="&#1593;&#1604;&#1740;", last_name="Smith &amp; Sons")
    customer["billing"].update(phone="09121234567", city="R&amp;D")
    assert woo(client, "customer.created", customer).text == "ok 1"
    guest = wc_order()
    guest["billing"]["first_name"] = "&#1605;&#1585;&#1740;&#1605;"
    assert woo(client, "order.created", guest).text == "ok 1"
    with sessions() as session:
        names = session.execute(
            select(Customer.first_name, Customer.last_name, Customer.city).order_by(Customer.id)
        ).all()
    assert [tuple(n) for n in names] == [
        ("علی", "Smith & Sons", "R&D"),
        ("مریم", "Doe", "San Francisco"),
    ]


def test_a_trashed_woocommerce_order_is_cancelled(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    trashed = wc_order()
    trashed.update(status="trash", date_modified_gmt="2017-03-23T08:00:00")
    assert woo(client, "order.updated", trashed).text == "ok 1"
    assert stored_order(sessions)[0] == "cancelled"


# --- Hostile deliveries ------------------------------------------------------------------


def test_a_lone_surrogate_is_refused_not_a_server_error(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # JSON may escape half of a UTF-16 pair; Python reads it, no database can store it.
    body = json.dumps(wc_order()).replace('"John"', '"\\ud800"', 1)
    assert woo(client, "order.created", json.loads(body)).status_code == 400
    order = paid_order()
    order["customer"]["first_name"] = "\ud800"
    assert shopify(client, "orders/paid", order, "s1").status_code == 400
    assert count(sessions, Customer) == 0


def test_a_signed_body_resent_under_another_topic_stores_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # The signature covers the body, not the topic header: an order delivery captured once
    # and resent as customer.updated made customer "727" (the order's id, which may be a
    # real customer's) with the order's billing name and phone.
    answer = woo(client, "customer.updated", wc_order())
    assert answer.status_code == 200 and answer.text.startswith("rejected:")
    customer = copy.deepcopy(woo_docs.CUSTOMER)
    customer["billing"]["phone"] = "09121234567"
    assert woo(client, "order.updated", customer).text.startswith("rejected:")
    assert shopify(client, "customers/update", paid_order(), "x1").text.startswith("rejected:")
    assert shopify(client, "refunds/create", paid_order(), "x2").text.startswith("rejected:")
    shopify_customer = changed(shopify_docs.CUSTOMER, phone="+989121234567")
    assert shopify(client, "orders/paid", shopify_customer, "x3").text.startswith("rejected:")
    assert count(sessions, Customer) == 0 and count(sessions, Order) == 0


def test_two_woocommerce_deliveries_of_one_second_are_both_applied(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # A gateway that confirms at once: order.created (pending) and order.updated (paid)
    # carry the same date_modified_gmt. The second was taken for a redelivery of the first.
    pending = wc_order()
    pending.update(status="pending", date_paid_gmt=None)
    assert woo(client, "order.created", pending).text == "ok 1"
    assert woo(client, "order.updated", wc_order()).text == "ok 1"
    assert stored_order(sessions)[0] == "paid"
    assert woo(client, "order.updated", wc_order()).text == "already applied"


def test_direction_controls_in_a_name_do_not_reach_the_message(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # An unclosed RIGHT-TO-LEFT OVERRIDE (U+202E) in a name turns every word after it in the
    # text message around; an isolate (U+2067) left open does the same. A Persian name's
    # ZWNJ (U+200C) is part of it and stays.
    customer = copy.deepcopy(woo_docs.CUSTOMER)
    customer.update(first_name="\u202eمحمد\u200cعلی", last_name="\u2067Doe")
    customer["billing"].update(phone="09121234567", city="Tehran\u202d")
    assert woo(client, "customer.created", customer).text == "ok 1"
    with sessions() as session:
        stored = session.execute(
            select(Customer.first_name, Customer.last_name, Customer.city)
        ).one()
    assert tuple(stored) == ("محمد\u200cعلی", "Doe", "Tehran")


def test_a_resent_orders_paid_cannot_move_the_payment_time(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # X-Shopify-Webhook-Id and X-Shopify-Triggered-At are headers, outside the signature: a
    # captured orders/paid resent with a new id and today's time moved paid_at to today, so
    # an old order became due for its thank-you.
    assert shopify(client, "orders/paid", paid_order(), "o1").text == "ok 1"
    resent = shopify(
        client, "orders/paid", paid_order(), "forged", **{"X-Shopify-Triggered-At": NOW.isoformat()}
    )
    assert resent.status_code == 200
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == TRIGGERED_AT


def test_a_woocommerce_guest_order_with_a_long_billing_name_is_kept(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    order = wc_order()
    order["billing"].update(first_name="جان" * 60, city="x" * 200)
    answer = woo(client, "order.created", order)
    assert answer.status_code == 200
    assert answer.text == (
        "ok 1; warning: first_name of 180 characters cut to 128; city of 200 characters cut to 128"
    )
    with sessions() as session:
        stored = session.scalars(select(Order)).one()
        buyer = session.get_one(Customer, stored.customer_id)
    assert (buyer.first_name, buyer.city) == (("جان" * 60)[:128], "x" * 128)


def test_a_shopify_customer_with_a_long_name_is_kept(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    order = paid_order(first_name="J" * 300, last_name="Smith")
    answer = shopify(client, "orders/paid", order, "long-name")
    assert answer.status_code == 200
    assert answer.text.startswith("ok 1; warning: first_name of 300 characters cut to 128")
    with sessions() as session:
        john = session.scalars(select(Customer)).one()
        assert session.scalars(select(Order)).one().customer_id == john.id
    assert (john.first_name, john.last_name) == ("J" * 128, "Smith")


# --- Orders moved to the bin and back --------------------------------------------------


def customer_stats(sessions: sessionmaker[Session]) -> tuple[int, Decimal]:
    with sessions() as session:
        customer = session.scalars(select(Customer)).one()
        return customer.orders_count, customer.total_spent


def planned_thanks(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions.begin() as session:
        session.execute(Customer.__table__.update().values(marketing_consent=True))
        report = plan(
            session, [THANKS], FixedClock(datetime(2026, 3, 20, 11, 0, tzinfo=UTC)), settings
        )
    return report.rules["thanks"].planned


def transfer_on_hold() -> dict[str, Any]:
    """A bank transfer as WooCommerce sends it when placed: on hold, with no payment date."""
    return changed(
        wc_order(),
        status="on-hold",
        date_paid_gmt=None,
        date_created_gmt="2026-03-15T08:55:00",
        date_modified_gmt="2026-03-15T08:55:00",
    )


def test_a_bank_transfer_confirmed_days_later_is_paid_when_it_was_seen_paid(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: WooCommerce sends no payment date for some gateways, and the order's
    creation time stood in for it. The documented bank transfer, placed (on hold) on the
    15th and confirmed on the 20th, counted as paid on the 15th: its thank-you, five days
    past due, was never planned, and its new customer was placed quietly, with no move from
    none for a welcome rule to see. Seen unpaid before, it is paid when first seen paid,
    and a later update keeps that time."""
    clock = FixedClock(datetime(2026, 3, 15, 9, 0, tzinfo=UTC))
    with sessions.begin() as session:  # the daemon's pass at start: from now on webhooks rank
        daily(session, settings.segments.segment_map, clock.now(), settings.customers.currency)
    app = create_app(settings=with_secrets(settings), sessions=sessions, clock=clock, gateways={})
    client = TestClient(app)
    placed = transfer_on_hold()
    assert woo(client, "order.created", placed).text == "ok 1"
    clock.set(NOW)  # the transfer arrived
    confirmed = changed(placed, status="processing", date_modified_gmt="2026-03-20T08:59:00")
    assert woo(client, "order.updated", confirmed).text == "ok 1"
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == NOW
        moves = session.execute(select(SegmentChange.old, SegmentChange.changed_at)).all()
    assert [tuple(move) for move in moves] == [("none", NOW)]
    assert planned_thanks(sessions, settings) == 1
    clock.advance(timedelta(days=2))
    completed = changed(confirmed, status="completed", date_modified_gmt="2026-03-22T09:00:00")
    assert woo(client, "order.updated", completed).text == "ok 1"
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == NOW


@pytest.mark.parametrize("unpaid", ["on-hold", "pending", "failed", "cancelled", "refunded", "bin"])
def test_an_order_seen_paid_without_a_payment_date_keeps_that_time_through_unpaid_statuses(
    sessions: sessionmaker[Session], settings: Settings, unpaid: str
) -> None:
    """Regression: a bank transfer first seen paid on the 20th lost that time when the shop
    set it unpaid (back on hold, cancelled, refunded, moved to the bin) and paid again: back
    from on hold it was paid at the later update, from cancelled or the bin at its creation
    on the 15th. Each flip moved the payment: its place among the customer's orders (which
    is their first, second, … for a referral request) and a thank-you due after it."""
    clock = FixedClock(datetime(2026, 3, 15, 9, 0, tzinfo=UTC))
    own = {"order.deleted": SecretStr(DELETION_SECRET)}
    shop = with_secrets(settings, woocommerce_webhook_secrets=own)
    client = TestClient(create_app(settings=shop, sessions=sessions, clock=clock, gateways={}))
    placed = transfer_on_hold()
    assert woo(client, "order.created", placed).text == "ok 1"
    clock.set(NOW)  # the transfer arrived
    confirmed = changed(placed, status="processing", date_modified_gmt="2026-03-20T08:59:00")
    assert woo(client, "order.updated", confirmed).text == "ok 1"
    clock.advance(timedelta(hours=1))
    if unpaid == "bin":
        assert woo(client, "order.deleted", woo_docs.DELETED_ORDER).text == "ok 1"
    else:
        unset = changed(confirmed, status=unpaid, date_modified_gmt="2026-03-20T10:00:00")
        assert woo(client, "order.updated", unset).text == "ok 1"
    clock.advance(timedelta(hours=1))
    again = changed(confirmed, date_modified_gmt="2026-03-20T11:00:00")
    assert woo(client, "order.updated" if unpaid != "bin" else "order.restored", again).text == (
        "ok 1"
    )
    assert stored_order(sessions)[0] == "paid"
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == NOW


def test_an_order_first_seen_paid_without_a_payment_date_was_paid_when_placed(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    """Never seen unpaid (a shop's history, or a webhook set up after the order was paid),
    the order's creation time is the best known: it stands in, as before."""
    order = changed(wc_order(), date_paid_gmt=None)
    assert woo(client, "order.created", order).text == "ok 1"
    with sessions() as session:
        paid_at = session.scalars(select(Order.paid_at)).one()
    assert paid_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)


def test_a_deleted_woocommerce_order_stops_counting_as_paid_until_restored(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: order.deleted was "ignored topic": an order moved to the bin kept counting
    as paid, in the customer's statistics and segments, and was thanked."""
    order = wc_order()
    order["date_paid_gmt"] = "2026-03-20T08:58:08"  # paid this morning: due for thanks
    assert woo(client, "order.created", order).text == "ok 1"
    assert customer_stats(sessions) == (1, Decimal("29.35"))
    assert woo(client, "order.deleted", woo_docs.DELETED_ORDER).text == "ok 1"
    assert stored_order(sessions)[0] == "cancelled"
    assert customer_stats(sessions) == (0, Decimal(0))
    assert planned_thanks(sessions, settings) == 0  # due at 10:58, not thanked
    restored = changed(order, date_modified_gmt="2026-03-20T09:30:00")  # untrashing saves it
    assert woo(client, "order.restored", restored).text == "ok 1"
    assert stored_order(sessions)[0] == "paid"
    assert customer_stats(sessions) == (1, Decimal("29.35"))


def test_an_order_while_a_pass_holds_the_rescoring_lock_is_answered_without_waiting(
    settings: Settings, impatient_sessions: sessionmaker[Session]
) -> None:
    """Regression: a webhook that came while a segments pass held the rescoring lock waited
    for the whole pass (10 s and more at 1M customers; Shopify gives up after 5 s) and the
    shop sent it again. It now answers without ranking, and the next pass places the buyer
    with its move from "none"."""
    sessions = impatient_sessions
    with sessions.begin() as session:  # the daemon's pass at start: from now on webhooks rank
        daily(session, settings.segments.segment_map, NOW, settings.customers.currency)
    client = app_client(with_secrets(settings), sessions)
    order = wc_order()
    order["date_paid_gmt"] = "2026-03-20T08:58:08"  # paid this morning: an arrival
    with sessions.begin() as holder:
        holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RESCORE_LOCK})
        assert woo(client, "order.created", order).text == "ok 1"  # on main: a 500 after 2 s
    assert count(sessions, CustomerScore) == 0 and count(sessions, SegmentChange) == 0
    with sessions.begin() as session:  # the next pass
        daily(session, settings.segments.segment_map, NOW, settings.customers.currency)
        buyer = session.scalars(select(Customer)).one()
        history = session.execute(select(SegmentChange.old, SegmentChange.new)).all()
    assert buyer.segment == "lost" and [tuple(row) for row in history] == [("none", "lost")]


def test_an_order_deleted_again_after_a_restore_is_deleted_again(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # Every deletion of order 727 has the same body, {"id": 727}: it is no retry of the last.
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    assert woo(client, "order.deleted", woo_docs.DELETED_ORDER).text == "ok 1"
    restored = changed(wc_order(), date_modified_gmt="2017-03-23T08:00:00")
    assert woo(client, "order.restored", restored).text == "ok 1"
    assert woo(client, "order.deleted", woo_docs.DELETED_ORDER).text == "ok 1"
    assert stored_order(sessions)[0] == "cancelled"
    assert woo(client, "order.deleted", woo_docs.DELETED_ORDER).text == "ok 0"  # a retry


def test_deleting_an_order_never_loaded_stores_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    answer = woo(client, "order.deleted", {"id": 999})
    assert (answer.status_code, answer.text) == (200, "unknown order '999': nothing to delete")
    assert count(sessions, Order) == 0 and count(sessions, ShopEvent) == 0


def test_a_signed_body_resent_as_order_deleted_deletes_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    # A captured customer 25 or order delivery, resent as order.deleted, is no deletion: it
    # would cancel order 25, or the order itself.
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    customer = changed(woo_docs.CUSTOMER, id=727)
    assert woo(client, "order.deleted", customer).text.startswith("rejected:")
    assert woo(client, "order.deleted", wc_order()).text.startswith("rejected:")
    assert woo(client, "order.deleted", {"id": "seven"}).text.startswith("rejected:")
    assert stored_order(sessions)[0] == "paid"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("order.deleted", {"id": "7" * 5000}),
        ("order.updated", {**wc_order(), "customer_id": "7" * 5000}),
    ],
)
def test_an_id_of_thousands_of_digits_is_rejected_not_a_server_error(
    client: TestClient, sessions: sessionmaker[Session], topic: str, payload: dict[str, Any]
) -> None:
    """Regression: an id past Python's 4,300 digits for int() (a signed body, or one from a
    shop plug-in gone wrong) was a 500, which WooCommerce counts towards disabling the
    webhook; it is refused as every other id that is no id."""
    answer = woo(client, topic, payload)
    assert answer.status_code == 200
    assert answer.text.startswith("rejected: ") and "more than 20 digits" in answer.text
    assert count(sessions, Order) == 0


# --- One secret for every webhook: a deletion is only an id ---------------------------------


def test_a_customer_deletion_resent_as_order_deleted_cancels_nothing(
    one_secret_client: TestClient, sessions: sessionmaker[Session]
) -> None:
    """Regression: with one secret for all the shop's webhooks, a captured customer.deleted
    delivery of customer 727 (body `{"id": 727}`, signed with that secret) resent with topic
    order.deleted cancelled order 727. `WC_Webhook::build_payload()` (woocommerce/woocommerce
    plugins/woocommerce/includes/class-wc-webhook.php) makes every 'deleted' event's body
    `array( 'id' => $resource_id )`, whatever the resource (coupon.deleted, customer.deleted,
    product.deleted, order.deleted), and `deliver()` signs only that body
    (`generate_signature( $http_args['body'] )`) with the webhook's secret; the
    X-WC-Webhook-Topic header is not signed."""
    client = one_secret_client
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    customer_deleted = {"id": 727}  # customer 727's deletion, signed with the shop's secret
    answer = woo(client, "order.deleted", customer_deleted, secret=WC_SECRET)
    assert answer.status_code == 200  # so WooCommerce does not disable the webhook
    assert answer.text.startswith("ignored: order.deleted signed with the shop's one secret")
    assert 'woocommerce_webhook_secrets."order.deleted"' in answer.text
    assert stored_order(sessions)[0] == "paid"
    assert customer_stats(sessions) == (1, Decimal("29.35"))


def test_order_deleted_with_its_own_secret_takes_no_other(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    # A customer, product or coupon deletion signed with the shop's one secret: refused.
    assert woo(client, "order.deleted", {"id": 727}, secret=WC_SECRET).status_code == 401
    assert stored_order(sessions)[0] == "paid"
    # The deletion's secret signs only deletions: no other topic takes it.
    assert woo(client, "order.updated", wc_order(), secret=DELETION_SECRET).status_code == 401
    # The Order deleted webhook's own delivery.
    assert woo(client, "order.deleted", {"id": 727}).text == "ok 1"
    assert stored_order(sessions)[0] == "cancelled"


def test_a_topic_with_its_own_secret_refuses_the_shared_one(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    own = {"order.updated": SecretStr("wc-updates-secret")}
    client = app_client(with_secrets(settings, woocommerce_webhook_secrets=own), sessions)
    assert woo(client, "order.updated", wc_order()).status_code == 401
    assert count(sessions, Order) == 0
    assert woo(client, "order.updated", wc_order(), secret="wc-updates-secret").text == "ok 1"
    # The other topics keep the shop's secret.
    customer = copy.deepcopy(woo_docs.CUSTOMER)
    customer["billing"]["phone"] = "09121234567"
    assert woo(client, "customer.updated", customer).text == "ok 1"


def test_ignoring_deletions_is_said_at_start_and_at_each_one(
    settings: Settings, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="campaigner.server.shop_webhooks")
    client = app_client(with_secrets(settings), sessions)
    assert [r.getMessage() for r in caplog.records] == [
        "woocommerce webhooks: order.deleted will be ignored: order.deleted signed with the "
        "shop's one secret could be a customer, product or coupon deletion resent: give the "
        'Order deleted webhook its own secret (server.woocommerce_webhook_secrets."order.deleted")'
        ' or configure the shop\'s WooCommerce source (preset = "woocommerce") to confirm '
        "deletions"
    ]
    caplog.clear()
    woo(client, "order.deleted", {"id": 727}, secret=WC_SECRET)
    assert caplog.records[0].getMessage().startswith("woocommerce order 727 deleted: ignored")
    caplog.clear()
    own = {"order.deleted": SecretStr(DELETION_SECRET)}
    app_client(with_secrets(settings, woocommerce_webhook_secrets=own), sessions)
    assert caplog.records == []


def test_a_deletion_the_shops_database_cannot_confirm_changes_nothing(
    settings: Settings,
    sessions: sessionmaker[Session],
    refused_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # With the shop's database configured, a deletion is applied only once the shop says the
    # order is in the bin; a database that cannot be reached confirms nothing, and its
    # password is in neither the answer nor the log. WooCommerce does not send a delivery
    # again (WC_Webhook::log_delivery() only counts failures), so the answer is 200: the
    # next sync reads the order as the shop has it.
    source = SourceSettings.model_validate(
        {
            "name": "shop",
            "preset": "woocommerce",
            "url": f"mysql+pymysql://reader:db-s3cret@127.0.0.1:{refused_port}/wordpress",
        }
    )
    configured = with_secrets(settings).model_copy(update={"sources": [source]})
    client = app_client(configured, sessions)
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    answer = woo(client, "order.deleted", {"id": 727}, secret=WC_SECRET)
    assert (answer.status_code, answer.text) == (
        200,
        "not applied: the shop's database could not confirm the deletion (logged); "
        "the next sync reads the order",
    )
    assert stored_order(sessions)[0] == "paid"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "woocommerce order 727 deleted: not applied" in logged
    assert f"cannot connect to 127.0.0.1:{refused_port}" in logged
    assert "db-s3cret" not in logged


def test_a_deletion_whose_database_hangs_is_answered_in_bounded_time(
    settings: Settings,
    sessions: sessionmaker[Session],
    silent_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: a shop database that accepts the connection and never answers (PyMySQL
    waits for its greeting with no timeout) held the deletion's worker thread for good;
    WooCommerce gives up after a minute (`'timeout' => MINUTE_IN_SECONDS`, WC_Webhook::
    deliver()), counts a failure and sends the next deletion into another thread, until the
    server's thread pool was all waiting. The confirmation is bounded (a few seconds per
    connect and read) and the deletion not applied."""
    source = SourceSettings.model_validate(
        {
            "name": "shop",
            "preset": "woocommerce",
            "url": f"mysql+pymysql://reader:db-s3cret@127.0.0.1:{silent_port}/wordpress",
        }
    )
    client = app_client(with_secrets(settings).model_copy(update={"sources": [source]}), sessions)
    assert woo(client, "order.created", wc_order()).text == "ok 1"
    answers: list[Any] = []
    delivery = threading.Thread(
        target=lambda: answers.append(woo(client, "order.deleted", {"id": 727}, WC_SECRET)),
        daemon=True,
    )
    delivery.start()
    delivery.join(timeout=30)  # well within WooCommerce's minute
    assert answers, "the deletion was still waiting for the shop's database"
    assert answers[0].text.startswith("not applied: the shop's database could not confirm")
    assert stored_order(sessions)[0] == "paid"
    assert "db-s3cret" not in "\n".join(r.getMessage() for r in caplog.records)


def test_a_burst_of_deletions_for_a_slow_shop_holds_a_few_threads_and_connections(
    sessions: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: each order.deleted was confirmed in the worker threads all requests
    share, and a confirmation past its deadline went on in a thread the pool no longer
    counted: a bulk deletion in a shop whose database hangs held as many threads, and
    opened as many connections to that database, as it sent deletions, and more as each
    deadline passed. Now CONFIRMATIONS_AT_ONCE ask at once; the rest wait their turn within
    their deadline, are answered as unconfirmed when it passes, and never begin."""
    monkeypatch.setattr(shop_webhooks, "CONFIRM_DEADLINE_SECONDS", 0.3)
    release = threading.Event()
    lock = threading.Lock()
    asking = 0
    most = 0
    begun: list[str] = []

    def hanging_shop(order_id: str) -> None:
        nonlocal asking, most
        with lock:
            asking += 1
            most = max(most, asking)
            begun.append(order_id)
        release.wait(10)
        with lock:
            asking -= 1

    shop = _Shop(settings, sessions, FixedClock(NOW), hanging_shop)
    answers: list[str] = []

    async def burst() -> None:
        async def delete(order_id: str) -> None:
            answer = await shop.delete_order(order_id)
            answers.append(bytes(answer.body).decode())

        async with anyio.create_task_group() as group:
            for n in range(12):
                group.start_soon(delete, str(n))
        # the deadlines have passed: later deletions find the threads still taken
        await delete("late")

    try:
        anyio.run(burst)
    finally:
        release.set()
        shop.confirming.shutdown(wait=True)
    assert len(answers) == 13
    assert all(a.startswith("not applied: the shop's database could not") for a in answers)
    assert most == len(begun) == CONFIRMATIONS_AT_ONCE  # the others never began
