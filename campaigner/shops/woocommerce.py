"""WooCommerce REST resources (what its webhooks deliver) as customer and order records.

Shapes from WooCommerce's REST API v3 documentation (orders, customers): statuses without
the `wc-` prefix, `*_gmt` times without an offset, money as strings, `customer_id` 0 for a
guest, whose name and phone are only in `billing`; item names as stored, HTML entities and
all ("Ship Your Idea &ndash; Color: Black"), which a text message must not show.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from campaigner.customers.records import RowError, as_text
from campaigner.sources.woocommerce import STATUSES


def _gmt(value: Any) -> str:
    text = as_text(value).strip()
    return f"{text}+00:00" if text else ""


def _money(value: Any) -> Decimal:
    try:
        return abs(Decimal(as_text(value) or "0"))
    except InvalidOperation:
        raise RowError(f"bad amount {value!r}", "total") from None


def order_record(order: Mapping[str, Any]) -> dict[str, Any]:
    """An order resource as an order record, its buyer inline when a guest."""
    status = STATUSES.get("wc-" + as_text(order.get("status")), as_text(order.get("status")))
    paid_at = _gmt(order.get("date_paid_gmt"))
    if status == "paid" and not paid_at:
        paid_at = _gmt(order.get("date_created_gmt"))
    billing = order.get("billing") or {}
    total = _money(order.get("total"))
    refunded = sum((_money(r.get("total")) for r in order.get("refunds") or []), Decimal(0))
    record: dict[str, Any] = {
        "external_id": as_text(order.get("id")),
        "status": status,
        "total": total,
        "refunded": min(refunded, total),
        "currency": order.get("currency"),
        "paid_at": paid_at if status == "paid" else "",
        "coupon_code": ",".join(as_text(c.get("code")) for c in order.get("coupon_lines") or [])[
            :64
        ],
        "items": [
            {
                "product_id": item.get("product_id") or None,
                "sku": item.get("sku") or None,
                "name": html.unescape(as_text(item.get("name"))),
                "quantity": item.get("quantity"),
                "unit_price": item.get("price"),
                "line_total": item.get("total"),
            }
            for item in order.get("line_items") or []
        ],
    }
    customer = int(order.get("customer_id") or 0)
    if customer:
        record["customer_id"] = str(customer)
    else:
        record["customer"] = {
            name: billing.get(name) for name in ("first_name", "last_name", "phone", "city")
        }
    return record


def customer_record(customer: Mapping[str, Any]) -> dict[str, Any]:
    """A customer resource: the account's name, else the billing name; the billing phone."""
    billing = customer.get("billing") or {}
    return {
        "external_id": as_text(customer.get("id")),
        "first_name": customer.get("first_name") or billing.get("first_name"),
        "last_name": customer.get("last_name") or billing.get("last_name"),
        "phone": billing.get("phone"),
        "city": billing.get("city"),
    }


def modified(resource: Mapping[str, Any]) -> str:
    """When the resource last changed: with its id, what makes a redelivery a duplicate."""
    return as_text(resource.get("date_modified_gmt") or resource.get("date_modified"))
