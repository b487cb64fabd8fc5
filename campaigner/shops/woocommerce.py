"""WooCommerce REST resources (what its webhooks deliver) as customer and order records.

Shapes from WooCommerce's REST API v3 documentation (orders, customers): statuses without
the `wc-` prefix, `*_gmt` times without an offset, money as strings, `customer_id` 0 for a
guest, whose name and phone are only in `billing`; item names as stored, HTML entities and
all ("Ship Your Idea &ndash; Color: Black"), which a text message must not show. `meta_data`
(`[{"id", "key", "value"}]`) carries what plugins add, such as a checkout's SMS opt-in: the
keys named next to the preset (`ShopMeta`) are read from it, as sync reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from campaigner.customers.records import PAID_AT_IS_CREATION, RowError, as_text
from campaigner.shops.payloads import money, obj, objects, scalar, signup_day, whole
from campaigner.sources.woocommerce import STATUSES, ShopMeta, shop_names, shop_text

BILLING_FIELDS = ("first_name", "last_name", "phone", "city")


def _gmt(value: Any, field: str) -> str:
    text = as_text(scalar(value, field)).strip()
    return f"{text}+00:00" if text else ""


def _money(value: Any, field: str = "total") -> Decimal:
    """WooCommerce writes refunds negative ("-10.00"): amounts are kept without the sign."""
    return abs(money(value, field))


def _meta(resource: Mapping[str, Any]) -> dict[str, Any]:
    """`meta_data` as {key: value}; the first value of a key wins, as in the tables."""
    found: dict[str, Any] = {}
    for entry in objects(resource.get("meta_data"), "meta_data"):
        found.setdefault(as_text(scalar(entry.get("key"), "meta_data")), entry.get("value"))
    return found


def customer_id(order: Mapping[str, Any]) -> str:
    """The registered customer's id ('' for a guest checkout, whose `customer_id` is 0)."""
    user = whole(order.get("customer_id"), "customer_id")
    return str(user) if user else ""


def buyer(order: Mapping[str, Any], shop: ShopMeta) -> dict[str, Any]:
    """The buyer as the order knows them: the billing name, phone and city, and the consent
    the order's meta holds under the shop's consent key (said only when it is there)."""
    billing = obj(order.get("billing"), "billing")
    record = {name: scalar(billing.get(name), f"billing.{name}") for name in BILLING_FIELDS}
    return shop_names({**record, **shop.read(_meta(order), ["marketing_consent"])})


def order_record(order: Mapping[str, Any], shop: ShopMeta) -> dict[str, Any]:
    """An order resource as an order record; a guest's buyer comes inline (`customer`)."""
    raw_status = as_text(scalar(order.get("status"), "status"))
    status = STATUSES.get("wc-" + raw_status, STATUSES.get(raw_status, raw_status))
    paid_at = _gmt(order.get("date_paid_gmt"), "date_paid_gmt")
    unknown = status == "paid" and not paid_at  # some gateways leave no payment date
    if unknown:
        paid_at = _gmt(order.get("date_created_gmt"), "date_created_gmt")
    total = _money(order.get("total"))
    refunds = objects(order.get("refunds"), "refunds")
    refunded = sum((_money(r.get("total"), "refunds") for r in refunds), Decimal(0))
    coupons = objects(order.get("coupon_lines"), "coupon_lines")
    record: dict[str, Any] = {
        "external_id": as_text(scalar(order.get("id"), "id")),
        "shop_modified_at": modified(order),
        "status": status,
        "total": total,
        "refunded": min(refunded, total),
        "currency": scalar(order.get("currency"), "currency"),
        "paid_at": paid_at if status == "paid" else "",
        PAID_AT_IS_CREATION: unknown,
        "coupon_code": ",".join(as_text(scalar(c.get("code"), "coupon_lines")) for c in coupons)[
            :64
        ],
        "items": [
            {
                "product_id": scalar(item.get("product_id"), "line_items") or None,
                "sku": scalar(item.get("sku"), "line_items") or None,
                "name": shop_text(scalar(item.get("name"), "line_items")),
                "quantity": scalar(item.get("quantity"), "line_items"),
                "unit_price": scalar(item.get("price"), "line_items"),
                "line_total": scalar(item.get("total"), "line_items"),
            }
            for item in objects(order.get("line_items"), "line_items")
        ],
    }
    registered = customer_id(order)
    if registered:
        record["customer_id"] = registered
    else:
        record["customer"] = buyer(order, shop)
    return record


def deleted_order_id(payload: Mapping[str, Any]) -> str:
    """The id an order.deleted delivery names. For a deleted resource `WC_Webhook::
    build_payload()` (woocommerce/woocommerce plugins/woocommerce/includes/class-wc-webhook.php)
    sends `array( 'id' => $resource_id )` and nothing else, on wp_trash_post and
    woocommerce_trash_order: the order went to the bin."""
    order_id = whole(payload.get("id"), "id")
    if not order_id:
        raise RowError("an order.deleted delivery without the order's id", "id")
    return str(order_id)


def customer_record(customer: Mapping[str, Any], shop: ShopMeta) -> dict[str, Any]:
    """A customer resource: the account's name, else the billing name; the billing phone;
    and whatever the shop keeps in the customer's meta under the keys named next to the
    preset (consent, birthday); the day the account was created is its `signup` date."""
    billing = obj(customer.get("billing"), "billing")
    record = {
        "external_id": as_text(scalar(customer.get("id"), "id")),
        "shop_modified_at": modified(customer),
        "first_name": scalar(customer.get("first_name") or billing.get("first_name"), "first_name"),
        "last_name": scalar(customer.get("last_name") or billing.get("last_name"), "last_name"),
        "phone": scalar(billing.get("phone"), "billing.phone"),
        "city": scalar(billing.get("city"), "billing.city"),
    }
    signup = signup_day(customer.get("date_created"))  # the site's own time zone
    return shop_names({**record, **signup, **shop.read(_meta(customer), shop.keys)})


def modified(resource: Mapping[str, Any]) -> str:
    """When the resource last changed (UTC): an older delivery is stale."""
    return _gmt(resource.get("date_modified_gmt"), "date_modified_gmt")
