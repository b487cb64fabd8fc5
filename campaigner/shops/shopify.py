"""Shopify REST resources (what its webhooks deliver) as customer and order records.

Shapes from Shopify's webhook reference and Admin REST API (Order, Customer, Refund): ids are
integers, money is a string, `financial_status` says whether an order is paid, and
`sms_marketing_consent.state` says whether texts may be sent. A payload that says nothing
about consent (no `sms_marketing_consent`, or null, as in API 2026-07's customers/* and
orders/*) leaves the record without `marketing_consent`, so what is known is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from campaigner.customers.records import RowError, as_text
from campaigner.shops.payloads import money, obj, objects, scalar, signup_day, whole

FINANCIAL_STATUSES = {
    "paid": "paid",
    "partially_refunded": "paid",
    "partially_paid": "pending",
    "pending": "pending",
    "authorized": "pending",
    "refunded": "refunded",
    "voided": "cancelled",
}
BUYER_FIELDS = ("first_name", "last_name", "city")
CONSENT = {
    "subscribed": True,
    "not_subscribed": False,
    "unsubscribed": False,
    "redacted": False,
    "pending": False,  # double opt-in not yet confirmed
}


def _money(value: Any, field: str = "total") -> Decimal:
    """Shopify's amounts are never negative (a refund is its own positive transaction)."""
    amount = money(value, field)
    if amount < 0:
        raise RowError(f"bad amount {as_text(value)!r}", field)
    return amount


def consent(resource: Mapping[str, Any]) -> bool | None:
    """The SMS consent a customer (or consent update) states; None when it states none."""
    given = obj(resource.get("sms_marketing_consent"), "sms_marketing_consent")
    state = as_text(scalar(given.get("state"), "sms_marketing_consent")).lower()
    if not state:
        return None
    if state not in CONSENT:
        raise RowError(f"unknown sms_marketing_consent state {state!r}", "marketing_consent")
    return CONSENT[state]


def with_consent(record: dict[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    given = consent(resource)
    if given is not None:
        record["marketing_consent"] = given
    return record


def customer_record(customer: Mapping[str, Any]) -> dict[str, Any]:
    address = obj(customer.get("default_address"), "default_address")
    record = {
        "external_id": as_text(scalar(customer.get("id"), "id")),
        "shop_modified_at": scalar(customer.get("updated_at"), "updated_at"),
        "first_name": scalar(customer.get("first_name"), "first_name"),
        "last_name": scalar(customer.get("last_name"), "last_name"),
        "phone": scalar(customer.get("phone") or address.get("phone"), "phone"),
        "city": scalar(address.get("city"), "default_address.city"),
        **signup_day(customer.get("created_at")),
    }
    return with_consent(record, customer)


def refunded(refund: Mapping[str, Any]) -> Decimal:
    """Money a refund gave back: its successful refund transactions."""
    return sum(
        (
            _money(t.get("amount"), "transactions")
            for t in objects(refund.get("transactions"), "transactions")
            if t.get("kind") == "refund" and t.get("status") in (None, "success")
        ),
        Decimal(0),
    )


def refunds(order: Mapping[str, Any]) -> dict[str, Decimal]:
    """The order's refunds by id: refunds/create delivers each of them again on its own."""
    return {
        as_text(scalar(r.get("id"), "refunds")): refunded(r)
        for r in objects(order.get("refunds"), "refunds")
    }


def order_record(order: Mapping[str, Any], paid_at: str) -> dict[str, Any]:
    """An order resource, without `refunded` (see `refunds`).

    `paid_at` is when the shop said the order was paid (orders/paid's delivery time), else
    `processed_at`, the order's own date. The buyer's phone is the customer's, else the
    order's (Shopify: "the customer's phone number for receiving SMS notifications"), else
    an address's.
    """
    financial = as_text(scalar(order.get("financial_status"), "financial_status"))
    status = FINANCIAL_STATUSES.get(financial, financial)
    if order.get("cancelled_at"):
        status = "cancelled"
    processed_at = as_text(scalar(order.get("processed_at"), "processed_at"))
    codes = objects(order.get("discount_codes"), "discount_codes")
    record: dict[str, Any] = {
        "external_id": as_text(scalar(order.get("id"), "id")),
        "shop_modified_at": scalar(order.get("updated_at"), "updated_at"),
        "status": status,
        "total": _money(order.get("total_price")),
        "currency": scalar(order.get("currency"), "currency"),
        "paid_at": (paid_at or processed_at) if status == "paid" else "",
        "coupon_code": ",".join(as_text(scalar(d.get("code"), "discount_codes")) for d in codes)[
            :64
        ],
        "items": [
            {
                "product_id": scalar(item.get("product_id"), "line_items"),
                "sku": scalar(item.get("sku"), "line_items") or None,
                "name": scalar(item.get("name") or item.get("title"), "line_items"),
                "quantity": whole(item.get("quantity"), "line_items"),
                "unit_price": scalar(item.get("price"), "line_items"),
                "line_total": _money(item.get("price"), "line_items")
                * whole(item.get("quantity"), "line_items"),
            }
            for item in objects(order.get("line_items"), "line_items")
        ],
    }
    customer = obj(order.get("customer"), "customer")
    billing = obj(order.get("billing_address"), "billing_address")
    address = obj(customer.get("default_address"), "customer.default_address")
    if customer.get("id"):
        buyer = customer_record(customer)
    else:
        buyer = {name: scalar(billing.get(name), "billing_address") for name in BUYER_FIELDS}
    phone = customer.get("phone") or order.get("phone") or address.get("phone")
    buyer["phone"] = scalar(phone or billing.get("phone"), "phone")
    record["customer"] = buyer
    return record
