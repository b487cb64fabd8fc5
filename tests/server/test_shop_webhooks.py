"""Signed shop webhooks: WooCommerce and Shopify deliveries, signed here as the shops sign them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr, TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message, Order, OrderItem, ShopEvent
from campaigner.planner import plan
from campaigner.rules.models import Rule
from campaigner.server.app import create_app
from campaigner.server.signatures import sign

WC_SECRET = "wc-webhook-secret"
SHOPIFY_SECRET = "shpss_client_secret"
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)

# WooCommerce REST API v3 docs, "Retrieve an order" example (order 727), with its buyer
# made an Iranian guest; fields, types and nesting as documented.
WC_ORDER: dict[str, Any] = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "rest-api",
    "version": "3.0.0",
    "status": "processing",
    "currency": "IRR",
    "date_created": "2026-03-20T12:28:02",
    "date_created_gmt": "2026-03-20T08:58:02",
    "date_modified": "2026-03-20T12:28:08",
    "date_modified_gmt": "2026-03-20T08:58:08",
    "discount_total": "0.00",
    "discount_tax": "0.00",
    "shipping_total": "10.00",
    "shipping_tax": "0.00",
    "cart_tax": "1.35",
    "total": "29.35",
    "total_tax": "1.35",
    "prices_include_tax": False,
    "customer_id": 0,
    "customer_ip_address": "",
    "customer_user_agent": "",
    "customer_note": "",
    "billing": {
        "first_name": "مریم",
        "last_name": "کاظمی",
        "company": "",
        "address_1": "خیابان ولیعصر",
        "address_2": "",
        "city": "تهران",
        "state": "THR",
        "postcode": "1234567890",
        "country": "IR",
        "email": "maryam@example.com",
        "phone": "09121112233",
    },
    "shipping": {
        "first_name": "مریم",
        "last_name": "کاظمی",
        "company": "",
        "address_1": "خیابان ولیعصر",
        "address_2": "",
        "city": "تهران",
        "state": "THR",
        "postcode": "1234567890",
        "country": "IR",
    },
    "payment_method": "bacs",
    "payment_method_title": "Direct Bank Transfer",
    "transaction_id": "",
    "date_paid": "2026-03-20T12:28:08",
    "date_paid_gmt": "2026-03-20T08:58:08",
    "date_completed": None,
    "date_completed_gmt": None,
    "cart_hash": "",
    "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
    "line_items": [
        {
            "id": 315,
            "name": "Woo Single #1",
            "product_id": 93,
            "variation_id": 0,
            "quantity": 2,
            "tax_class": "",
            "subtotal": "6.00",
            "subtotal_tax": "0.45",
            "total": "6.00",
            "total_tax": "0.45",
            "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}],
            "meta_data": [],
            "sku": "",
            "price": 3,
        }
    ],
    "tax_lines": [],
    "shipping_lines": [],
    "fee_lines": [],
    "coupon_lines": [],
    "refunds": [],
}
# WooCommerce REST API v3 docs, "Retrieve a customer" example (customer 25).
WC_CUSTOMER: dict[str, Any] = {
    "id": 25,
    "date_created": "2017-03-21T16:09:28",
    "date_created_gmt": "2017-03-21T19:09:28",
    "date_modified": "2017-03-21T16:09:30",
    "date_modified_gmt": "2017-03-21T19:09:30",
    "email": "john.doe@example.com",
    "first_name": "John",
    "last_name": "Doe",
    "role": "customer",
    "username": "john.doe",
    "billing": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
        "email": "john.doe@example.com",
        "phone": "(555) 555-5555",
    },
    "shipping": {},
    "is_paying_customer": False,
    "avatar_url": "https://secure.gravatar.com/avatar/8eb1b522f60d11fa897de1dc6351b7e8?s=96",
    "meta_data": [],
}
# Shopify Admin REST API, Order resource example (order 450789469) and its customer with
# `sms_marketing_consent` as the Customer resource documents it; trimmed of fields not read.
SHOPIFY_ORDER: dict[str, Any] = {
    "id": 450789469,
    "email": "bob.norman@mail.example.com",
    "created_at": "2008-01-10T11:00:00-05:00",
    "updated_at": "2008-01-10T11:00:00-05:00",
    "processed_at": "2008-01-10T11:00:00-05:00",
    "cancelled_at": None,
    "currency": "USD",
    "financial_status": "paid",
    "total_price": "598.94",
    "discount_codes": [{"code": "TENOFF", "amount": "10.00", "type": "fixed_amount"}],
    "line_items": [
        {
            "id": 466157049,
            "name": "IPod Nano - 8gb - green",
            "title": "IPod Nano - 8gb",
            "price": "199.00",
            "product_id": 632910392,
            "quantity": 1,
            "sku": "IPOD2008GREEN",
            "variant_id": 39072856,
        }
    ],
    "billing_address": {
        "first_name": "Bob",
        "last_name": "Norman",
        "city": "Drayton Valley",
        "phone": "+1(613)555-1212",
    },
    "customer": {
        "id": 207119551,
        "email": "bob.norman@mail.example.com",
        "first_name": "Bob",
        "last_name": "Norman",
        "phone": "+16136120707",
        "currency": "USD",
        "sms_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2021-08-03T12:45:00-04:00",
            "consent_collected_from": "OTHER",
        },
        "default_address": {"city": "Ottawa", "phone": "+16136120707"},
    },
    "refunds": [],
}
# Shopify Admin REST API, Refund resource example: money returned in its transactions.
SHOPIFY_REFUND: dict[str, Any] = {
    "id": 509562969,
    "order_id": 450789469,
    "created_at": "2008-01-10T11:00:00-05:00",
    "note": "it broke during shipping",
    "transactions": [
        {
            "id": 179259969,
            "order_id": 450789469,
            "kind": "refund",
            "amount": "209.00",
            "status": "success",
        }
    ],
    "refund_line_items": [],
}


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    configured = settings.model_copy(
        update={
            "server": settings.server.model_copy(
                update={
                    "woocommerce_webhook_secret": SecretStr(WC_SECRET),
                    "shopify_webhook_secret": SecretStr(SHOPIFY_SECRET),
                }
            )
        }
    )
    app = create_app(settings=configured, sessions=sessions, clock=FixedClock(NOW), gateways={})
    return TestClient(app)


def woo(
    client: TestClient, topic: str, payload: Any, secret: str = WC_SECRET, **headers: str
) -> Any:
    body = json.dumps(payload).encode()
    sent = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "a1b2",
        "X-WC-Webhook-Signature": sign(body, secret),
        **headers,
    }
    return client.post("/webhooks/shop/woocommerce", content=body, headers=sent)


def shopify(
    client: TestClient, topic: str, payload: Any, webhook_id: str, secret: str = SHOPIFY_SECRET
) -> Any:
    body = json.dumps(payload).encode()
    sent = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "shop.myshopify.com",
        "X-Shopify-API-Version": "2024-10",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2026-03-20T08:30:00Z",
        "X-Shopify-Hmac-Sha256": sign(body, secret),
    }
    return client.post("/webhooks/shop/shopify", content=body, headers=sent)


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_woocommerce_ping_on_creation_is_answered_and_stores_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    answer = client.post(
        "/webhooks/shop/woocommerce",
        content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert count(sessions, ShopEvent) == 0


@pytest.mark.parametrize("secret", ["", "a-wrong-secret"])
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(
    client: TestClient, sessions: sessionmaker[Session], secret: str
) -> None:
    extra = {"X-WC-Webhook-Signature": ""} if not secret else {}
    assert woo(client, "order.created", WC_ORDER, secret or "x", **extra).status_code == 401
    assert shopify(client, "orders/paid", SHOPIFY_ORDER, "w1", secret or "x").status_code == 401
    assert count(sessions, Order) == 0 and count(sessions, Customer) == 0


def test_unsigned_woocommerce_body_that_is_no_ping_is_401(client: TestClient) -> None:
    body = json.dumps(WC_ORDER).encode()
    answer = client.post(
        "/webhooks/shop/woocommerce", content=body, headers={"X-WC-Webhook-Topic": "order.created"}
    )
    assert answer.status_code == 401


def test_without_a_configured_secret_nothing_is_accepted(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    app = create_app(settings=settings, sessions=sessions, clock=FixedClock(NOW), gateways={})
    assert woo(TestClient(app), "order.created", WC_ORDER).status_code == 401


def test_a_woocommerce_guest_order_is_stored_once(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert woo(client, "order.created", WC_ORDER).status_code == 200
    assert woo(client, "order.created", WC_ORDER).text == "already applied"  # redelivery
    with sessions() as session:
        order = session.scalars(select(Order)).one()
        customer = session.get_one(Customer, order.customer_id)
        item = session.scalars(select(OrderItem)).one()
    assert (order.external_id, order.status, order.total) == ("727", "paid", Decimal("29.35"))
    assert order.paid_at == datetime(2026, 3, 20, 8, 58, 8, tzinfo=UTC)
    assert (customer.external_id, customer.first_name) == ("guest:+989121112233", "مریم")
    assert (item.name, item.product_id, item.quantity, item.unit_price) == (
        "Woo Single #1",
        "93",
        2,
        Decimal(3),
    )

    refunded = copy.deepcopy(WC_ORDER)
    refunded.update(
        status="completed",
        date_modified_gmt="2026-03-21T08:00:00",
        refunds=[{"id": 726, "reason": "", "total": "-10.00"}],
    )
    assert woo(client, "order.updated", refunded).status_code == 200
    with sessions() as session:
        assert session.scalars(select(Order.refunded)).one() == Decimal(10)
    assert count(sessions, ShopEvent) == 2


def test_a_woocommerce_customer(client: TestClient, sessions: sessionmaker[Session]) -> None:
    # The documented example's US number is fictional (555): rejected with its reason.
    answer = woo(client, "customer.created", WC_CUSTOMER)
    assert answer.status_code == 422 and "invalid phone number '(555) 555-5555'" in answer.text
    iranian = copy.deepcopy(WC_CUSTOMER)
    iranian["billing"]["phone"] = "۰۹۱۲ ۱۲۳ ۴۵۶۷"
    assert woo(client, "customer.created", iranian).status_code == 200
    with sessions() as session:
        john = session.scalars(select(Customer)).one()
    assert (john.external_id, john.first_name, john.phone) == ("25", "John", "+989121234567")


def test_shopify_paid_order_with_consent_and_a_refund(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert shopify(client, "orders/paid", SHOPIFY_ORDER, "b54557e4").status_code == 200
    assert shopify(client, "orders/paid", SHOPIFY_ORDER, "b54557e4").text == "already applied"
    assert shopify(client, "refunds/create", SHOPIFY_REFUND, "c0ffee01").status_code == 200
    with sessions() as session:
        order = session.scalars(select(Order)).one()
        bob = session.scalars(select(Customer)).one()
        item = session.scalars(select(OrderItem)).one()
    assert (bob.external_id, bob.phone, bob.marketing_consent) == (
        "207119551",
        "+16136120707",
        True,
    )
    assert (order.status, order.coupon_code, order.refunded) == ("paid", "TENOFF", Decimal(209))
    assert order.paid_at == datetime(2026, 3, 20, 8, 30, tzinfo=UTC)
    assert (item.sku, item.line_total) == ("IPOD2008GREEN", Decimal(199))
    assert bob.total_spent == Decimal("389.94")

    unsubscribed = copy.deepcopy(SHOPIFY_ORDER["customer"])
    unsubscribed["sms_marketing_consent"]["state"] = "unsubscribed"
    assert shopify(client, "customers/update", unsubscribed, "d00d").status_code == 200
    with sessions() as session:
        assert session.scalars(select(Customer.marketing_consent)).one() is False


def test_an_unknown_consent_state_is_rejected(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    odd = copy.deepcopy(SHOPIFY_ORDER["customer"])
    odd["sms_marketing_consent"]["state"] = "maybe"
    answer = shopify(client, "customers/create", odd, "e1")
    assert answer.status_code == 422 and "maybe" in answer.text
    assert count(sessions, Customer) == 0 and count(sessions, ShopEvent) == 0


def test_a_paid_order_by_webhook_is_thanked_like_one_from_sync(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    paid = copy.deepcopy(WC_ORDER)
    paid["customer_id"] = 0
    assert woo(client, "order.created", paid).status_code == 200
    with sessions.begin() as session:
        session.execute(
            Customer.__table__.update().values(marketing_consent=True)  # consent given elsewhere
        )
    thanks: Rule = TypeAdapter(Rule).validate_python(
        {"name": "thanks", "trigger": "post_purchase", "template": "x", "delay": "2h"}
    )
    later = FixedClock(datetime(2026, 3, 20, 11, 0, tzinfo=UTC))
    with sessions.begin() as session:
        report = plan(session, [thanks], later, settings)
    assert report.rules["thanks"].planned == 1
    with sessions() as session:
        message = session.scalars(select(Message)).one()
    assert message.due_at == datetime(2026, 3, 20, 8, 58, 8, tzinfo=UTC) + timedelta(hours=2)
