"""Shopify REST resources (what its webhooks deliver) as customer and order records.

Shapes from Shopify's Admin REST API (Order, Customer, Refund resources and their webhook
examples): ids are integers, money is a string, `financial_status` says whether an order is
paid, and a customer's `sms_marketing_consent.state` says whether texts may be sent.
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


def consent(customer: Mapping[str, Any]) -> bool:
    state = as_text((customer.get("sms_marketing_consent") or {}).get("state")).lower()
    if not state:
        return False
    if state not in CONSENT:
        raise RowError(f"unknown sms_marketing_consent state {state!r}", "marketing_consent")
    return CONSENT[state]


def customer_record(customer: Mapping[str, Any]) -> dict[str, Any]:
    address = customer.get("default_address") or {}
    return {
        "external_id": as_text(customer.get("id")),
        "first_name": customer.get("first_name"),
        "last_name": customer.get("last_name"),
        "phone": customer.get("phone") or address.get("phone"),
        "city": address.get("city"),
        "marketing_consent": consent(customer),
    }


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


def order_record(order: Mapping[str, Any], paid_at: str) -> dict[str, Any]:
    """An order resource; `paid_at` is when the shop said it was paid (the delivery time)."""
    financial = as_text(order.get("financial_status"))
    status = FINANCIAL_STATUSES.get(financial, financial)
    if order.get("cancelled_at"):
        status = "cancelled"
    total = _money(order.get("total_price"))
    given_back = sum((refunded(r) for r in order.get("refunds") or []), Decimal(0))
    record: dict[str, Any] = {
        "external_id": as_text(order.get("id")),
        "status": status,
        "total": total,
        "refunded": min(given_back, total),
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
    if customer.get("id"):
        buyer = customer_record(customer)
        buyer["phone"] = buyer["phone"] or billing.get("phone")
    else:
        buyer = {name: billing.get(name) for name in ("first_name", "last_name", "phone", "city")}
    record["customer"] = buyer
    return record
