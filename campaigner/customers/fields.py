"""The fields of a customer and of an order, and the other names they go by.

Both the settings (a source's column mapping is checked at load) and the record parsers need
them; living here, apart from either, neither has to import the other.
"""

from __future__ import annotations

CUSTOMER_FIELDS = (
    "external_id",
    "first_name",
    "last_name",
    "phone",
    "birthday",
    "calendar",
    "timezone",
    "locale",
    "tags",
    "marketing_consent",
    "city",
)
ORDER_FIELDS = (
    "external_id",
    "customer_id",
    "total",
    "currency",
    "status",
    "paid_at",
    "coupon_code",
    "referral_code",
    "items_count",
    "refunded",
)
# Order fields that describe the buyer: an order without a customer id (a guest checkout)
# makes its buyer a customer identified by phone, `guest:+98912…`.
BUYER_FIELDS = ("first_name", "last_name", "phone", "city", "marketing_consent", "locale")
ITEM_FIELDS = ("product_id", "sku", "name", "categories", "quantity", "unit_price", "line_total")
# Other spellings accepted for field names (CSV headers, source column mappings).
ALIASES = {
    "id": "external_id",
    "customer": "customer_id",
    "customer_external_id": "customer_id",
    "mobile": "phone",
    "consent": "marketing_consent",
    "amount": "total",
    "coupon": "coupon_code",
}


def canonical_field(name: str) -> str:
    text = name.strip().lower()
    return ALIASES.get(text, text)
