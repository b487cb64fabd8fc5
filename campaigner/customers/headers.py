"""Which Campaigner field a column header means, the way people actually write headers.

Exports from shops, CRMs and Excel say `First Name`, `Mobile`, `SMS Consent`, `DOB` or
«موبایل» rather than `first_name`, `phone`, `marketing_consent`, `birthday`. Headers are
compared after folding case, spaces, `-` and `_`; a header that still means nothing is
reported by name, never dropped silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from campaigner.customers.fields import DATE_PREFIX, date_name

# Spellings per field, written folded (see `fold`). Both kinds of file share most of them.
_COMMON = {
    "external_id": ("external_id", "id"),
    "phone": (
        "phone",
        "mobile",
        "phone_number",
        "mobile_number",
        "mobile_no",
        "mobile_phone",
        "phone_no",
        "contact_number",
        "cell_number",
        "cell",
        "cell_phone",
        "cellphone",
        "telephone",
        "tel",
        "billing_phone",
        "موبایل",
        "همراه",
        "شماره_موبایل",
        "تلفن_همراه",
        "شماره_همراه",
        "تلفن",
        "شماره_تلفن",
        "شماره_تماس",
        "تلفن_تماس",
    ),
    "first_name": (
        "first_name",
        "firstname",
        "first",
        "given_name",
        "billing_first_name",
        "نام",
        "نام_کوچک",
    ),
    "last_name": (
        "last_name",
        "lastname",
        "last",
        "surname",
        "family_name",
        "billing_last_name",
        "نام_خانوادگی",
        "نام_فامیلی",
        "فامیلی",
    ),
    "city": ("city", "town", "billing_city", "شهر"),
    "locale": ("locale", "language", "lang", "زبان"),
    "marketing_consent": (
        "marketing_consent",
        "consent",
        "sms_consent",
        "opt_in",
        "optin",
        "sms_opt_in",
        "accepts_marketing",
        "accepts_sms_marketing",
        "subscribed",
        "رضایت",
    ),
}
_CUSTOMERS = {
    **_COMMON,
    "external_id": (
        "external_id",
        "id",
        "customer_id",
        "customer_number",
        "customer_no",
        "user_id",
        "شناسه",
        "شناسه_مشتری",
        "کد_مشتری",
        "شماره_مشتری",
    ),
    "birthday": ("birthday", "dob", "date_of_birth", "birth_date", "birthdate", "تاریخ_تولد"),
    "calendar": ("calendar", "تقویم"),
    "timezone": ("timezone", "time_zone", "tz"),
    "tags": ("tags", "tag", "labels", "برچسب", "برچسب_ها"),
}
_ORDERS = {
    **_COMMON,
    "external_id": (
        "external_id",
        "id",
        "order_id",
        "order_number",
        "order_no",
        "شناسه",
        "شناسه_سفارش",
        "شماره_سفارش",
        "کد_سفارش",
        "سفارش",
    ),
    "customer_id": (
        "customer_id",
        "customer",
        "customer_external_id",
        "customer_number",
        "customer_no",
        "user_id",
        "شناسه_مشتری",
        "کد_مشتری",
        "شماره_مشتری",
        # «مشتری» alone only here: in a customers file it could as well head their name.
        "مشتری",
    ),
    "total": (
        "total",
        "amount",
        "order_total",
        "grand_total",
        "total_amount",
        "total_price",
        "مبلغ",
        "جمع_کل",
        "مبلغ_کل",
        "مبلغ_سفارش",
    ),
    "currency": ("currency", "order_currency", "واحد_پول"),
    "status": ("status", "order_status", "وضعیت"),
    "paid_at": ("paid_at", "paid_date", "date_paid", "payment_date", "paid_on", "تاریخ_پرداخت"),
    "coupon_code": ("coupon_code", "coupon", "discount_code", "کد_تخفیف"),
    "referral_code": ("referral_code", "referral"),
    "items_count": ("items_count", "item_count", "items", "quantity"),
    "refunded": ("refunded", "refund", "refunded_amount", "refund_amount"),
}
# An order's line items (`orders import --items`), one line per row, keyed by the order id.
_ITEMS = {
    "order_id": (
        "order_id",
        "order",
        "order_number",
        "order_no",
        "شناسه_سفارش",
        "شماره_سفارش",
        "کد_سفارش",
    ),
    "product_id": ("product_id", "product", "product_no", "شناسه_محصول", "کد_محصول"),
    "sku": ("sku", "product_sku", "lineitem_sku", "کد_کالا"),
    "name": (
        "name",
        "product_name",
        "item_name",
        "item",
        "title",
        "lineitem_name",
        "نام_کالا",
        "نام_محصول",
    ),
    "categories": (
        "categories",
        "category",
        "product_categories",
        "product_category",
        "دسته",
        "دسته_بندی",
    ),
    "quantity": ("quantity", "qty", "count", "lineitem_quantity", "تعداد"),
    "unit_price": ("unit_price", "price", "item_price", "lineitem_price", "قیمت", "قیمت_واحد"),
    "line_total": ("line_total", "total", "subtotal", "line_subtotal", "amount", "مبلغ", "جمع"),
}
_BY_KIND = {"customers": _CUSTOMERS, "orders": _ORDERS, "items": _ITEMS}


def fold(header: str) -> str:
    """`First-Name ` → `first_name`; Arabic ي/ك become Persian ی/ک; the BOM and ZWNJ go."""
    text = unicodedata.normalize("NFKC", header).replace("\ufeff", "").replace("\u200c", "_")
    text = text.replace("ي", "ی").replace("ك", "ک").strip().lower()
    return re.sub(r"[\s\-_./]+", "_", text).strip("_")


def _spellings(kind: str) -> dict[str, str]:
    return {spelling: name for name, spellings in _BY_KIND[kind].items() for spelling in spellings}


SPELLINGS = {kind: _spellings(kind) for kind in _BY_KIND}


def field_for(header: str, kind: str) -> str | None:
    """The field of `kind` ('customers', 'orders' or 'items') that `header` names, or None.

    A customer's own date is written `date:<name>` (`Date: Child Birthday` is
    `date:child_birthday`)."""
    folded = fold(header)
    if kind == "customers" and folded.startswith(DATE_PREFIX):
        field = DATE_PREFIX + folded[len(DATE_PREFIX) :].strip("_")
        return field if date_name(field) else None
    return SPELLINGS[kind].get(folded)


def preferred_header(headers: Iterable[str], field: str, kind: str) -> str | None:
    """Of the headers that name `field`, the one spelled most like it: for a customer's id,
    `external_id` before `id` before `customer_id`; None when none does."""
    ranks = {spelling: rank for rank, spelling in enumerate(_BY_KIND[kind][field])}
    named = [(ranks[fold(h)], n, h) for n, h in enumerate(headers) if fold(h) in ranks]
    return min(named)[2] if named else None
