"""Shopify REST resources (what its webhooks deliver) as customer and order records.

Shapes from Shopify's webhook reference and Admin REST API (Order, Customer, Refund): ids are
integers, money is a string, `financial_status` says whether an order is paid, and
`sms_marketing_consent.state` says whether texts may be sent. A payload that says nothing
about consent (no `sms_marketing_consent`, or null, as in API 2026-07's customers/* and
orders/*) leaves the record without `marketing_consent`, so what is known is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from campaigner.customers.records import RowError, as_text

FINANCIAL_STATUSES = {
    "paid": "paid",
    "partially_refunded": "paid",
    "partially_paid": "pending",
    "pending": "pending",
    "authorized": "pending",
    "refunded": "refunded",
    "voided": "cancelled",
}
CONSENT = {
    "subscribed": True,
    "not_subscribed": False,
    "unsubscribed": False,
    "redacted": False,
    "pending": False,  # double opt-in not yet confirmed
}


def _money(value: Any) -> Decimal:
    try:
        return Decimal(as_text(value) or "0")
    except InvalidOperation:
        raise RowError(f"bad amount {value!r}", "total") from None


def consent(resource: Mapping[str, Any]) -> bool | None:
    """The SMS consent a customer (or consent update) states; None when it states none."""
    state = as_text((resource.get("sms_marketing_consent") or {}).get("state")).lower()
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
    address = customer.get("default_address") or {}
    record = {
        "external_id": as_text(customer.get("id")),
        "first_name": customer.get("first_name"),
        "last_name": customer.get("last_name"),
        "phone": customer.get("phone") or address.get("phone"),
        "city": address.get("city"),
    }
    return with_consent(record, customer)


def refunded(refund: Mapping[str, Any]) -> Decimal:
    """Money a refund gave back: its successful refund transactions."""
    return sum(
        (
            _money(t.get("amount"))
            for t in refund.get("transactions") or []
            if t.get("kind") == "refund" and t.get("status") in (None, "success")
        ),
        Decimal(0),
    )


def refunds(order: Mapping[str, Any]) -> dict[str, Decimal]:
    """The order's refunds by id: refunds/create delivers each of them again on its own."""
    return {as_text(r.get("id")): refunded(r) for r in order.get("refunds") or []}


def order_record(order: Mapping[str, Any], paid_at: str) -> dict[str, Any]:
    """An order resource, without `refunded` (see `refunds`).

    `paid_at` is when the shop said the order was paid (orders/paid's delivery time), else
    `processed_at`, the order's own date. The buyer's phone is the customer's, else the
    order's (Shopify: "the customer's phone number for receiving SMS notifications"), else
    an address's.
    """
    financial = as_text(order.get("financial_status"))
    status = FINANCIAL_STATUSES.get(financial, financial)
    if order.get("cancelled_at"):
        status = "cancelled"
    record: dict[str, Any] = {
        "external_id": as_text(order.get("id")),
        "status": status,
        "total": _money(order.get("total_price")),
        "currency": order.get("currency"),
        "paid_at": (paid_at or as_text(order.get("processed_at"))) if status == "paid" else "",
        "coupon_code": ",".join(as_text(d.get("code")) for d in order.get("discount_codes") or [])[
            :64
        ],
        "items": [
            {
                "product_id": item.get("product_id"),
                "sku": item.get("sku") or None,
                "name": item.get("name") or item.get("title"),
                "quantity": item.get("quantity"),
                "unit_price": item.get("price"),
                "line_total": _money(item.get("price")) * int(item.get("quantity") or 0),
            }
            for item in order.get("line_items") or []
        ],
    }
    customer = order.get("customer") or {}
    billing = order.get("billing_address") or {}
    address = customer.get("default_address") or {}
    if customer.get("id"):
        buyer = customer_record(customer)
    else:
        buyer = {name: billing.get(name) for name in ("first_name", "last_name", "city")}
    buyer["phone"] = (
        customer.get("phone") or order.get("phone") or address.get("phone") or billing.get("phone")
    )
    record["customer"] = buyer
    return record
