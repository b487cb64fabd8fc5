"""The fields of a customer and of an order, and the other names they go by.

Both the settings (a source's column mapping is checked at load) and the record parsers need
them; living here, apart from either, neither has to import the other.
"""

from __future__ import annotations

import re

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
# A file of line items (`orders import --items`): each line names its order.
ITEM_FILE_FIELDS = ("order_id", *ITEM_FIELDS)
# Line items read from a shop database (`[sources.items]`): `id` is the line's own id, which
# keeps an order's lines in the shop's order.
ITEM_SOURCE_FIELDS = ("external_id", *ITEM_FILE_FIELDS)
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


# A customer's own dates are fields named `date:<name>` (`date:child_birthday`); names are
# what a rule's `date` says. `first_order` is computed from orders, never written.
DATE_PREFIX = "date:"
DATE_NAME = r"^[a-z][a-z0-9_]{0,63}$"
FIRST_ORDER = "first_order"
BUILT_IN_DATES = (FIRST_ORDER,)


def date_name(field: str) -> str | None:
    """`child_birthday` for the field `date:child_birthday`; None for any other field, a
    name that is no identifier, or a built-in date."""
    if not field.startswith(DATE_PREFIX):
        return None
    name = field[len(DATE_PREFIX) :]
    if not re.match(DATE_NAME, name) or name in BUILT_IN_DATES:
        return None
    return name


def is_field(name: str, fields: tuple[str, ...]) -> bool:
    """Whether `name` is one of `fields`, or a customer's own date when those are a customer's."""
    return name in fields or (fields == CUSTOMER_FIELDS and date_name(name) is not None)
