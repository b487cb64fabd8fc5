"""The WooCommerce preset against WooCommerce's real tables on MariaDB, in both order stores."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from time import monotonic
from typing import Any

import pytest
import woocommerce_payloads as woo_docs
from conftest import create_mariadb_database, drop_mariadb_database, require_mariadb
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient
from woocommerce_shop import (
    Line,
    Product,
    Storage,
    User,
    WooOrder,
    add_orders,
    add_products,
    add_users,
    create_tables,
    move_order,
    refund,
    set_storage,
)

from campaigner.clock import FixedClock
from campaigner.config import Settings, SourceSettings
from campaigner.db.models import Customer, CustomerDate, Order, OrderItem, SegmentChange
from campaigner.errors import CampaignerError
from campaigner.messages.context import build_context
from campaigner.server import shop_webhooks
from campaigner.server.app import create_app
from campaigner.server.signatures import sign
from campaigner.sources import sync as sync_module
from campaigner.sources import sync_source
from campaigner.sources.woocommerce import CONFIRM_TIMEOUT_SECONDS, OrderState, order_state

T = datetime(2026, 2, 1, 9, 0)
CLOCK = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))

PRODUCTS = [
    Product(57, "چای ماسالا", sku="TEA-57", categories=["چای", "نوشیدنی"]),
    Product(58, "ماگ", categories=["ظروف"]),
    Product(59, "ماگ آبی", sku="MUG-BLUE", parent=58),
]
USERS = [
    User(
        1,
        "ali",
        datetime(2025, 4, 30, 22, 0),  # GMT, as WordPress keeps it: 1 May 01:30 in Tehran
        {
            "first_name": "علی",
            "last_name": "رضایی",
            "billing_phone": "09121234567",
            "sms_optin": "yes",
            "birthday": "1370/01/01",
            "last_update": "1767225600",
        },
    ),
    # No name or phone in usermeta: both come from her latest order's billing address.
    User(2, "sara", datetime(2025, 6, 1), {"sms_optin": "no"}),
]
MARYAM = {"first_name": "مریم", "last_name": "کاظمی", "phone": "۰۹۱۲۳۳۳۴۴۴۴", "city": "شیراز"}
SARA = {"first_name": "Sara", "last_name": "Ahmadi", "phone": "+98 935 123 4567", "city": "Tehran"}


def order(order_id: int, status: str, total: str, customer: int, **kw: Any) -> WooOrder:
    billing = kw.pop("billing", MARYAM if customer == 0 else SARA)
    return WooOrder(order_id, status, total, customer, T, T, billing, **kw)


ORDERS = [
    order(
        101,
        "wc-completed",
        "1250000",
        1,
        billing={"first_name": "علی", "phone": "09121234567"},
        paid=datetime(2026, 1, 10, 8, 30),
        lines=[Line("چای ماسالا", 57, 2, "400000"), Line("ماگ آبی", 58, 1, "850000", variation=59)],
        coupons=["nowruz1405"],
    ),
    # A guest; the Persian gateway left no payment date: the creation time stands in.
    order(102, "wc-processing", "480000", 0, meta={"sms_optin": "yes"}),
    order(103, "wc-completed", "900000", 1, paid=datetime(2026, 1, 20)),
    order(104, "wc-refunded", "500000", 2, paid=datetime(2026, 1, 21)),
    order(105, "wc-checkout-draft", "100000", 0),
    order(106, "wc-cancelled", "100000", 0),
    order(107, "wc-pending", "700000", 0),
    order(108, "wc-on-hold", "300000", 2),
    order(109, "wc-failed", "300000", 0),
    refund(201, 103, "300000", datetime(2026, 1, 25)),  # partial: the order stays completed
    refund(202, 104, "500000", datetime(2026, 1, 26)),  # full: the order became wc-refunded
]


def build_shop(
    url: str,
    storage: Storage,
    orders: list[WooOrder] = ORDERS,
    products: list[Product] = PRODUCTS,
) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        create_tables(connection)
        set_storage(connection, storage)
        add_products(connection, products)
        add_users(connection, USERS)
        add_orders(connection, orders, storage)
    engine.dispose()


@pytest.fixture
def shop_db() -> Iterator[str]:
    require_mariadb()
    url = create_mariadb_database()
    try:
        yield url
    finally:
        drop_mariadb_database(url)


def preset(url: str, **extra: Any) -> SourceSettings:
    # The README's four lines, plus the shop's consent and birthday meta keys.
    return SourceSettings.model_validate(
        {
            "name": "shop",
            "preset": "woocommerce",
            "url": url,
            "timezone": "Asia/Tehran",
            "customers": {"columns": {"consent": "sms_optin", "birthday": "birthday"}},
            **extra,
        }
    )


def run(sessions: sessionmaker[Session], source: SourceSettings, settings: Settings) -> Any:
    return sync_source(sessions, source, settings, clock=CLOCK)


def loaded(sessions: sessionmaker[Session]) -> tuple[dict[str, Customer], dict[str, Order]]:
    with sessions() as session:
        customers = {c.external_id: c for c in session.scalars(select(Customer))}
        orders = {o.external_id: o for o in session.scalars(select(Order))}
        session.expunge_all()
    return customers, orders


@pytest.mark.parametrize("storage", ["hpos", "posts", "both"])
def test_a_real_shop_syncs_in_either_store(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    build_shop(shop_db, storage)
    report = run(sessions, preset(shop_db), settings)
    assert report.errors == []
    assert report.kinds["orders"].read == 9  # refunds are no orders of their own
    customers, orders = loaded(sessions)

    assert set(customers) == {"1", "2", "guest:+989123334444"}
    ali, sara, maryam = customers["1"], customers["2"], customers["guest:+989123334444"]
    assert (ali.first_name, ali.phone, ali.marketing_consent) == ("علی", "+989121234567", True)
    assert ali.birth_jalali_md == 101
    assert (sara.first_name, sara.phone, sara.marketing_consent) == ("Sara", "+989351234567", False)
    assert (maryam.first_name, maryam.last_name, maryam.city) == ("مریم", "کاظمی", "شیراز")

    statuses = {key: o.status for key, o in orders.items()}
    assert statuses == {
        "101": "paid",
        "102": "paid",
        "103": "paid",
        "104": "refunded",
        "105": "pending",
        "106": "cancelled",
        "107": "pending",
        "108": "pending",
        "109": "failed",
    }
    assert orders["101"].paid_at == datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
    assert orders["102"].paid_at == T.replace(tzinfo=UTC)  # no paid date: created time
    assert (orders["103"].total, orders["103"].refunded) == (Decimal(900000), Decimal(300000))
    assert orders["104"].refunded == Decimal(500000)
    assert orders["101"].coupon_code == "NOWRUZ1405"
    assert orders["101"].currency == "IRR"
    assert (ali.orders_count, ali.total_spent) == (2, Decimal(1850000))  # net of the refund
    # A guest has no user meta: the checkout's opt-in, kept on the order under the same key,
    # is their consent (it used to be read from the orders' mapping, which cannot name it).
    assert maryam.orders_count == 1 and maryam.marketing_consent is True
    # The day each account was registered, in the shop's zone, is its `signup` date.
    with sessions() as session:
        signups = dict(
            session.execute(
                select(Customer.external_id, CustomerDate.date)
                .join(CustomerDate, CustomerDate.customer_id == Customer.id)
                .where(CustomerDate.name == "signup")
            ).all()
        )
    assert signups == {"1": date(2025, 5, 1), "2": date(2025, 6, 1)}

    with sessions() as session:
        items = session.scalars(
            select(OrderItem)
            .join(Order)
            .where(Order.external_id == "101")
            .order_by(OrderItem.line_no)
        ).all()
        lines = [
            (i.name, i.product_id, i.sku, i.categories, i.quantity, i.line_total) for i in items
        ]
    assert lines == [
        ("چای ماسالا", "57", "TEA-57", ",نوشیدنی,چای,", 2, Decimal(400000)),
        ("ماگ آبی", "58", "MUG-BLUE", ",ظروف,", 1, Decimal(850000)),
    ]


def test_incremental_sync_sees_pending_become_processing_in_one_pass(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    assert run(sessions, source, settings).kinds["orders"].read == 0

    engine = create_engine(shop_db)
    with engine.begin() as connection:
        # What WooCommerce does when the gateway confirms payment of order 107.
        connection.execute(
            text(
                "UPDATE wp_wc_orders SET status = 'wc-processing', "
                "date_updated_gmt = '2026-02-02 10:00:00' WHERE id = 107"
            )
        )
        connection.execute(
            text(
                "UPDATE wp_wc_order_operational_data SET date_paid_gmt = '2026-02-02 10:00:00' "
                "WHERE order_id = 107"
            )
        )
    engine.dispose()
    report = run(sessions, source, settings)
    assert (report.kinds["orders"].read, report.kinds["orders"].updated) == (1, 1)
    _, orders = loaded(sessions)
    assert orders["107"].status == "paid"
    assert orders["107"].paid_at == datetime(2026, 2, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_an_order_on_hold_confirmed_without_a_payment_date_is_paid_when_synced_paid(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: Sara's order 108, on hold (a bank transfer) since February, is confirmed
    by the shop a month later, and the gateway leaves no payment date. Its creation time
    stood in: paid a month before it was, so no thank-you, and Sara placed quietly with no
    move from none for a welcome. Seen unpaid by the previous sync, it is paid when this
    sync first sees it paid; later syncs keep that time."""
    build_shop(shop_db, storage)
    source = preset(shop_db)
    run(sessions, source, settings)
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        move_order(connection, 108, "wc-processing", datetime(2026, 3, 2, 8, 0), storage)
    engine.dispose()
    confirmed = FixedClock(datetime(2026, 3, 2, 8, 5, tzinfo=UTC))
    sync_source(sessions, source, settings, clock=confirmed)
    with sessions() as session:
        sara = session.scalars(select(Customer.id).where(Customer.external_id == "2")).one()
        paid_at = session.scalars(select(Order.paid_at).where(Order.external_id == "108")).one()
        moves = session.execute(
            select(SegmentChange.old, SegmentChange.changed_at).where(
                SegmentChange.customer_id == sara
            )
        ).all()
    assert paid_at == confirmed.now()
    assert [tuple(move) for move in moves] == [("none", confirmed.now())]
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        move_order(connection, 108, "wc-completed", datetime(2026, 3, 5, 8, 0), storage)
    engine.dispose()
    sync_source(sessions, source, settings, clock=FixedClock(datetime(2026, 3, 5, 9, tzinfo=UTC)))
    with sessions() as session:
        kept = session.scalars(select(Order.paid_at).where(Order.external_id == "108")).one()
    assert kept == confirmed.now()


def test_a_late_refund_reaches_its_parent_order(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    build_shop(shop_db, "posts")
    source = preset(shop_db)
    run(sessions, source, settings)
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        add_orders(connection, [refund(203, 101, "400000", datetime(2026, 2, 5))], "posts")
    engine.dispose()
    report = run(sessions, source, settings)
    assert report.kinds["orders"].read == 1
    customers, orders = loaded(sessions)
    assert orders["101"].refunded == Decimal(400000)
    assert customers["1"].total_spent == Decimal(1450000)


def test_compatibility_mode_loads_each_order_once(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # Order 110 is in the posts store only: synchronisation has not copied it yet.
    build_shop(shop_db, "both")
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        add_orders(connection, [order(110, "wc-completed", "50000", 0, paid=T)], "posts")
    engine.dispose()
    report = run(sessions, preset(shop_db), settings)
    assert report.kinds["orders"].read == 10
    customers, orders = loaded(sessions)
    assert len(orders) == 10
    assert customers["guest:+989123334444"].orders_count == 2  # 102 and 110, once each


def test_a_guest_who_registers_becomes_one_customer(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        add_users(
            connection,
            [User(3, "maryam", datetime(2026, 2, 10), {"billing_phone": "09123334444"})],
        )
    engine.dispose()
    run(sessions, source, settings)
    customers, orders = loaded(sessions)
    assert "guest:+989123334444" not in customers
    assert customers["3"].orders_count == 1
    assert orders["102"].customer_id == customers["3"].id


def test_overrides_next_to_the_preset(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    build_shop(shop_db, "hpos", [*ORDERS, order(111, "wc-shipped", "1000", 1, paid=T)])
    plain = run(sessions, preset(shop_db), settings)
    assert [(e.row_id, e.reason) for e in plain.errors] == [
        ("111", "unknown order status 'wc-shipped'")
    ]
    source = preset(shop_db, orders={"status_values": {"wc-shipped": "paid"}})
    sync_source(sessions, source, settings, clock=CLOCK, full=True)  # a new mapping: read again
    _, orders = loaded(sessions)
    assert orders["111"].status == "paid"


def test_a_wrong_table_prefix_is_named(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    build_shop(shop_db, "hpos")
    with pytest.raises(CampaignerError, match="no WordPress table shop_users"):
        run(sessions, preset(shop_db, table_prefix="shop_"), settings)


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_names_lose_their_html_entities_as_by_webhook(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # WordPress keeps `&` as `&amp;` in term names (wp_terms) and WooCommerce copies a
    # product's stored title into order_item_name: a message must show "Tea & Coffee".
    products = [Product(60, "Tea &amp; Coffee &ndash; 250g", categories=["Tea &amp; Coffee"])]
    sold = order(
        112,
        "wc-completed",
        "90000",
        1,
        paid=T,
        lines=[Line("Tea &amp; Coffee &ndash; 250g", 60, 1, "90000")],
    )
    build_shop(shop_db, storage, [sold], products)
    run(sessions, preset(shop_db), settings)
    with sessions() as session:
        item = session.scalars(select(OrderItem)).one()
    assert (item.name, item.categories) == ("Tea & Coffee – 250g", ",tea & coffee,")


def deliver(
    sessions: sessionmaker[Session],
    settings: Settings,
    source: SourceSettings,
    topic: str,
    payload: dict[str, Any],
) -> str:
    """A delivery of `topic`, signed with the shop's one secret, to the daemon's webhook; its
    answer."""
    secret = "wc-webhook-secret"
    server = settings.server.model_copy(update={"woocommerce_webhook_secret": SecretStr(secret)})
    app = create_app(
        settings=settings.model_copy(update={"server": server, "sources": [source]}),
        sessions=sessions,
        clock=CLOCK,
        gateways={},
    )
    body = json.dumps(payload).encode()
    headers = {
        **woo_docs.HEADERS,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Signature": sign(body, secret),
    }
    answer = TestClient(app).post("/webhooks/shop/woocommerce", content=body, headers=headers)
    return answer.text


def order_updated(
    sessions: sessionmaker[Session],
    settings: Settings,
    source: SourceSettings,
    order: dict[str, Any],
) -> str:
    return deliver(sessions, settings, source, "order.updated", order)


def test_a_sync_reading_older_rows_keeps_what_a_webhook_brought_since(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # The daemon syncs every few minutes and takes webhooks meanwhile: a pass that read order
    # 107 as pending (changed at T) must not undo the order.updated that paid it since.
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    paid = {
        **woo_docs.ORDER,  # the documented order, as WooCommerce would now send order 107
        "id": 107,
        "status": "processing",
        "customer_id": 0,
        "currency": "IRR",
        "total": "700000",
        "date_modified_gmt": "2026-02-01T09:30:00",
        "date_paid_gmt": "2026-02-01T09:30:00",
        "billing": {**woo_docs.ORDER["billing"], "phone": MARYAM["phone"]},
    }
    assert order_updated(sessions, settings, source, paid) == "ok 1"
    report = sync_source(sessions, source, settings, clock=CLOCK, full=True)
    assert report.kinds["orders"].stale == 1
    assert "1 stale" in report.summary()
    _, orders = loaded(sessions)
    assert orders["107"].status == "paid"
    assert orders["107"].paid_at == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


# Term names as a shop's admin types them; WordPress stores `&` as `&amp;` (sanitize_term).
SEPARATED = ["Tea, Coffee &amp; Co", "Gifts | Sale", "Nuts; Dried Fruit", "50% off", "چای، دمنوش"]
WHOLE = ("50% off", "gifts | sale", "nuts; dried fruit", "tea, coffee & co", "چای، دمنوش")


def item_categories(sessions: sessionmaker[Session]) -> tuple[str, ...]:
    with sessions() as session:
        stored = session.scalars(select(Order)).one()
        customer = stored.customer
        context = build_context(
            session,
            customer=customer,
            trigger="post_purchase",
            rule_name="thanks",
            order=stored,
            coupon=None,
            settings=Settings(),
            now=CLOCK.now(),
        )
    categories: tuple[str, ...] = context["order"].items[0].categories
    return categories


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_category_names_with_separators_stay_whole(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    products = [Product(61, "Gift box", categories=SEPARATED)]
    sold = order(113, "wc-completed", "90000", 1, paid=T, lines=[Line("Gift box", 61, 1, "90000")])
    build_shop(shop_db, storage, [sold], products)
    run(sessions, preset(shop_db), settings)
    assert item_categories(sessions) == WHOLE

    # The REST API's line items name no categories: an order.updated keeps those sync stored.
    line = {**woo_docs.ORDER["line_items"][0], "product_id": 61, "name": "Gift box"}
    note = {
        **woo_docs.ORDER,
        "id": 113,
        "status": "completed",
        "customer_id": 1,
        "date_modified_gmt": "2026-02-03T10:00:00",
        "line_items": [line],
    }
    assert order_updated(sessions, settings, preset(shop_db), note) == "ok 1"
    assert item_categories(sessions) == WHOLE


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_names_with_html_entities_read_as_text(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # WordPress runs wp_filter_kses on pre_user_first_name, which stores `&` as `&amp;`; a
    # name typed where the page was not UTF-8 arrives as numeric entities. Both used to
    # reach the text message as written.
    guest = {
        "first_name": "&#1605;&#1585;&#1740;&#1605;",
        "phone": "09123334444",
        "city": "R&amp;D",
    }
    build_shop(shop_db, storage, [order(114, "wc-completed", "1000", 0, paid=T, billing=guest)])
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        meta = {"first_name": "Tom &amp; Jerry", "last_name": "&#1585;&#1590;&#1575;&#1740;&#1740;"}
        add_users(connection, [User(5, "tom", datetime(2026, 1, 5), meta)])
    engine.dispose()
    run(sessions, preset(shop_db), settings)
    customers, _ = loaded(sessions)
    assert (customers["5"].first_name, customers["5"].last_name) == ("Tom & Jerry", "رضایی")
    maryam = customers["guest:+989123334444"]
    assert (maryam.first_name, maryam.city) == ("مریم", "R&D")


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_a_trashed_order_is_cancelled_and_an_admins_draft_is_no_order(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # "Move to Trash" sets the status `trash` in either store; "Add order" in the admin
    # writes an `auto-draft` without a buyer until it is saved. Both used to be rejected on
    # every pass ("unknown order status 'trash'", "guest order without the buyer's phone").
    orders = [
        order(115, "wc-completed", "5000", 1, paid=T),
        order(116, "auto-draft", "0", 0, billing={}),
    ]
    build_shop(shop_db, storage, orders)
    source = preset(shop_db)
    assert run(sessions, source, settings).errors == []
    customers, _ = loaded(sessions)
    assert customers["1"].orders_count == 1
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        if storage == "hpos":
            connection.execute(
                text(
                    "UPDATE wp_wc_orders SET status = 'trash', "
                    "date_updated_gmt = '2026-02-03 10:00:00' WHERE id = 115"
                )
            )
        else:
            connection.execute(
                text(
                    "UPDATE wp_posts SET post_status = 'trash', "
                    "post_modified_gmt = '2026-02-03 10:00:00' WHERE ID = 115"
                )
            )
    engine.dispose()
    report = run(sessions, source, settings)
    assert report.errors == []
    customers, orders = loaded(sessions)
    assert set(orders) == {"115"}
    assert orders["115"].status == "cancelled" and customers["1"].orders_count == 0


def test_one_guest_whatever_way_the_phone_was_typed(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # Five checkouts by one guest; the half-spaces (ZWNJ) of a Persian keyboard in the last
    # one used to make it "invalid phone number" and the order was lost.
    typed = [
        "0912 333 4444",
        "+98 912 333 4444",
        "0098-912-333-4444",
        "٠٩١٢٣٣٣٤٤٤٤",
        "۰۹۱۲\u200c۳۳۳\u200c۴۴۴۴",
    ]
    orders = [
        order(120 + n, "wc-completed", "1000", 0, paid=T, billing={**MARYAM, "phone": phone})
        for n, phone in enumerate(typed)
    ]
    build_shop(shop_db, "hpos", orders)
    assert run(sessions, preset(shop_db), settings).errors == []
    customers, _ = loaded(sessions)
    assert customers["guest:+989123334444"].orders_count == 5
    assert len([c for c in customers if c.startswith("guest:")]) == 1


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_a_guest_with_a_billing_name_longer_than_its_column_keeps_the_order(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Seen: a guest's billing first name over 128 characters (WooCommerce stores it as
    TEXT) rejected the order: "customer.first_name: first_name longer than 128 characters"."""
    guest = {**MARYAM, "first_name": "مریم" + "\u0651" * 2 + " ملیکا" * 60, "city": "ش" * 300}
    build_shop(shop_db, storage, [order(115, "wc-completed", "1000", 0, paid=T, billing=guest)])
    report = run(sessions, preset(shop_db), settings)
    assert report.errors == []
    assert report.kinds["orders"].shortened == 2
    assert "warning: 2 value(s) too long, shortened" in report.summary()
    customers, orders = loaded(sessions)
    maryam = customers["guest:+989123334444"]
    assert orders["115"].customer_id == maryam.id
    assert len(maryam.first_name) <= 128 and maryam.first_name.startswith("مریم\u0651\u0651 ملیکا")
    assert maryam.city == "ش" * 128


def order_103(modified: datetime) -> dict[str, Any]:
    """Order 103 of the shop as WooCommerce's REST API (and so order.updated and
    order.restored) shows it: the documented order with this order's id, buyer, status, money
    and refund, last changed at `modified`."""
    return {
        **woo_docs.ORDER,
        "id": 103,
        "status": "completed",
        "customer_id": 1,
        "currency": "IRR",
        "total": "900000",
        "date_paid_gmt": "2026-01-20T00:00:00",
        "date_modified_gmt": modified.isoformat(),
        "refunds": [woo_docs.refund_entry(201, "", "300000")],
    }


def order_103_status(sessions: sessionmaker[Session]) -> tuple[str, datetime | None]:
    _, orders = loaded(sessions)
    return orders["103"].status, orders["103"].shop_modified_at


def change_shop(url: str, order_id: int, status: str, when: datetime, storage: Storage) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        move_order(connection, order_id, status, when, storage)
    engine.dispose()


TRASHED = datetime(2026, 2, 1, 10, 0)
RESTORED = datetime(2026, 2, 1, 11, 0)


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_a_deletion_delivered_after_the_restore_cancels_nothing(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: an order.deleted that arrives after the order was restored (Action
    Scheduler runs queued deliveries in any order; anyone who captured it can send it again:
    every deletion of order 103 is the same signed `{"id": 103}`) cancelled the restored
    order. The shop's database says the order is not in the bin: nothing changes."""
    build_shop(shop_db, storage)
    source = preset(shop_db)
    run(sessions, source, settings)
    change_shop(shop_db, 103, "trash", TRASHED, storage)
    change_shop(shop_db, 103, "wc-completed", RESTORED, storage)
    answer = deliver(sessions, settings, source, "order.deleted", {"id": 103})
    assert answer == "not deleted: the shop has the order as 'wc-completed'"
    assert order_103_status(sessions)[0] == "paid"


@pytest.mark.parametrize("storage", ["hpos", "posts"])
def test_a_confirmed_deletion_keeps_out_an_update_older_than_it(
    storage: Storage, shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: a deletion recorded no time, so an order.updated from before the order
    went to the bin, delivered after the deletion, made the trashed order paid again. The
    shop's time of the move to the bin is recorded; an older update is stale; the restore,
    newer, brings the order back."""
    build_shop(shop_db, storage)
    source = preset(shop_db)
    run(sessions, source, settings)
    change_shop(shop_db, 103, "trash", TRASHED, storage)
    assert deliver(sessions, settings, source, "order.deleted", {"id": 103}) == "ok 1"
    assert order_103_status(sessions) == ("cancelled", TRASHED.replace(tzinfo=UTC))
    late = order_103(datetime(2026, 2, 1, 9, 30))  # an edit made before the move to the bin
    assert order_updated(sessions, settings, source, late).startswith("stale")
    assert order_103_status(sessions)[0] == "cancelled"
    change_shop(shop_db, 103, "wc-completed", RESTORED, storage)
    assert deliver(sessions, settings, source, "order.restored", order_103(RESTORED)) == "ok 1"
    assert order_103_status(sessions) == ("paid", RESTORED.replace(tzinfo=UTC))


def test_a_restore_stored_while_the_deletion_was_checked_stays(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # The deletion reads the shop (in the bin, since 10:00), and the order.restored of 11:00
    # lands before the deletion writes: the shop's answer is older than what is stored, so
    # the deletion changes nothing. Played in sequence: the shop's row is left in the bin
    # as the deletion read it, and the restore is delivered first.
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    change_shop(shop_db, 103, "trash", TRASHED, "hpos")
    assert deliver(sessions, settings, source, "order.restored", order_103(RESTORED)) == "ok 1"
    answer = deliver(sessions, settings, source, "order.deleted", {"id": 103})
    assert answer == "stale: the shop changed the order after its deletion"
    assert order_103_status(sessions) == ("paid", RESTORED.replace(tzinfo=UTC))


def test_a_deletion_of_an_order_the_shop_no_longer_has_is_applied(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # Emptied from the bin (wp_delete_post, HPOS delete with force_delete) before the
    # deletion was delivered: the shop has no order 103 any more.
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    engine = create_engine(shop_db)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM wp_wc_orders WHERE id = 103"))
    engine.dispose()
    assert deliver(sessions, settings, source, "order.deleted", {"id": 103}) == "ok 1"
    assert order_103_status(sessions)[0] == "cancelled"


def test_a_deletion_waiting_on_a_locked_table_gives_up_in_bounded_time(
    shop_db: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: the deletion's read waited as long as another session held the orders
    table (MariaDB's lock_wait_timeout is a year by default), and the webhook with it. The
    read gives up after CONFIRM_TIMEOUT_SECONDS and the deletion is not applied."""
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    engine = create_engine(shop_db)
    try:
        with engine.connect() as holder:
            holder.execute(text("LOCK TABLES wp_wc_orders WRITE"))
            started = monotonic()
            answer = deliver(sessions, settings, source, "order.deleted", {"id": 103})
            waited = monotonic() - started
            holder.execute(text("UNLOCK TABLES"))
    finally:
        engine.dispose()
    assert answer.startswith("not applied: the shop's database could not confirm")
    assert waited < 4 * CONFIRM_TIMEOUT_SECONDS
    assert order_103_status(sessions)[0] == "paid"


def test_a_deletion_is_answered_by_its_deadline_however_slow_the_shop(
    shop_db: str,
    sessions: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: the webhook waited for the confirmation as long as it took (each read
    bounded alone: up to ~20 s over four). Past the deadline the answer is the one for a
    database that cannot confirm: not applied, left to the next sync; the shop's late
    answer changes nothing. The shop here answers "in the bin" after 3 s, the deadline is
    0.3 s."""
    build_shop(shop_db, "hpos")
    source = preset(shop_db)
    run(sessions, source, settings)
    answered = threading.Event()

    def slow_shop(source: SourceSettings, order_id: str) -> OrderState:
        answered.wait(3)
        return OrderState("trash", TRASHED.replace(tzinfo=UTC))

    monkeypatch.setattr(shop_webhooks, "order_state", slow_shop)
    monkeypatch.setattr(shop_webhooks, "CONFIRM_DEADLINE_SECONDS", 0.3)
    started = monotonic()
    answer = deliver(sessions, settings, source, "order.deleted", {"id": 103})
    waited = monotonic() - started
    answered.set()
    assert answer.startswith("not applied: the shop's database could not confirm"), answer
    assert waited < 2
    assert order_103_status(sessions)[0] == "paid"


def _sqlite_wordpress(tmp_path: Path) -> SourceSettings:
    """A WordPress on SQLite (the SQLite Database Integration plug-in) with the tables a
    confirmation reads, and no orders."""
    shop = tmp_path / "wordpress.db"
    engine = create_engine(f"sqlite:///{shop}")
    with engine.begin() as connection:
        for table in ("users", "usermeta", "postmeta", "options"):
            connection.execute(text(f"CREATE TABLE wp_{table} (ID INTEGER PRIMARY KEY)"))
        connection.execute(
            text(
                "CREATE TABLE wp_posts (ID INTEGER PRIMARY KEY, post_status TEXT, "
                "post_modified_gmt TEXT, post_type TEXT)"
            )
        )
        connection.execute(text("ALTER TABLE wp_options ADD option_name TEXT"))
        connection.execute(text("ALTER TABLE wp_options ADD option_value TEXT"))
    engine.dispose()
    return SourceSettings.model_validate(
        {"name": "shop", "preset": "woocommerce", "url": f"sqlite:///{shop}"}
    )


def test_a_confirmation_begins_no_read_past_its_deadline(tmp_path: Path) -> None:
    """Regression: each read was bounded alone, so a shop slow on every read held the
    confirmation for a timeout per read. With reads taking 2 s each (by the injected clock)
    and 3 s in all, the tables and the options are read (the second begins at 2 s) and the
    order is not (it would begin at 4 s): the confirmation fails, as for a database that
    cannot be read. With 5 s, all three reads begin in time."""
    source = _sqlite_wordpress(tmp_path)
    now = [0.0]

    def clock() -> float:
        return now[0]

    def slow_read(*_: Any) -> None:
        now[0] += 2

    engine_connect = sync_module._connect

    def connect_slowly(engine: Engine, source: SourceSettings) -> Connection:
        event.listen(engine, "after_cursor_execute", slow_read)
        return engine_connect(engine, source)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync_module, "_connect", connect_slowly)
        with pytest.raises(CampaignerError, match="confirming order 25 took longer than 3s"):
            order_state(source, "25", within=3, clock=clock)
        assert now[0] == 4  # two reads made, the order's not begun
        now[0] = 0.0
        assert order_state(source, "25", within=5, clock=clock) is None
        assert now[0] == 6


def test_an_order_id_beyond_sqlites_integers_is_not_confirmed(tmp_path: Path) -> None:
    """Regression: WordPress on SQLite (the SQLite Database Integration plug-in) as the
    source, and an order.deleted id of 20 digits (a BIGINT UNSIGNED may hold it; SQLite's
    INTEGER may not): the driver's OverflowError was a 500. It is a read that failed."""
    source = _sqlite_wordpress(tmp_path)
    assert order_state(source, "25") is None
    with pytest.raises(CampaignerError, match="reading order 18446744073709551615 failed"):
        order_state(source, "18446744073709551615")
