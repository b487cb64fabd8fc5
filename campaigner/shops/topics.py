"""The shop webhook topics Campaigner acts on.

Both the settings (a per-topic WooCommerce secret is checked at load) and the webhook routes
need them; living here, apart from either, neither has to import the other.
"""

from __future__ import annotations

from typing import Literal, get_args

WooCommerceTopic = Literal[
    "order.created",
    "order.updated",
    "order.deleted",
    "order.restored",
    "customer.created",
    "customer.updated",
]
WOOCOMMERCE_TOPICS: frozenset[str] = frozenset(get_args(WooCommerceTopic))
# A deletion's body is only the id (`WC_Webhook::build_payload()`), as is every other
# `*.deleted` topic's (coupon, customer, product): such a body signed for one of them is a
# valid order.deleted body too, unless order.deleted has a secret of its own.
ORDER_DELETED: WooCommerceTopic = "order.deleted"
SHOPIFY_TOPICS = frozenset(
    {
        "orders/paid",
        "orders/updated",
        "refunds/create",
        "customers/create",
        "customers/update",
        "customers_marketing_consent/update",
    }
)
