"""Writes a WooCommerce shop into the real tables (woocommerce_schema), as WooCommerce does.

HPOS orders go to wp_wc_orders and its address, operational-data and meta tables; legacy
orders are wp_posts of type shop_order with `_`-prefixed postmeta (the keys of
OrdersTableDataStore::$internal_meta_keys); with compatibility mode both are written.
Refunds are orders of type shop_order_refund with a negative total and their parent's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, text
from woocommerce_schema import (
    WOOCOMMERCE_HPOS,
    WOOCOMMERCE_ORDER_ITEMS,
    WORDPRESS_BLOG,
    WORDPRESS_USERS,
    statements,
)

Storage = Literal["hpos", "posts", "both"]


@dataclass
class Product:
    id: int
    name: str
    sku: str = ""
    categories: Sequence[str] = ()
    parent: int = 0  # a variation's product


@dataclass
class User:
    id: int
    login: str
    registered: datetime
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Line:
    name: str
    product: int
    quantity: int
    total: str
    variation: int = 0


@dataclass
class WooOrder:
    id: int
    status: str
    total: str
    customer: int  # 0: a guest checkout
    created: datetime
    updated: datetime
    billing: dict[str, str]
    paid: datetime | None = None
    currency: str = "IRR"
    lines: Sequence[Line] = ()
    coupons: Sequence[str] = ()
    meta: dict[str, str] = field(default_factory=dict)
    parent: int = 0  # set on refunds
    type: str = "shop_order"


def refund(refund_id: int, parent: int, amount: str, when: datetime) -> WooOrder:
    """A refund as wc_create_refund() stores it: negative total, status completed."""
    return WooOrder(
        id=refund_id,
        status="wc-completed",
        total=f"-{amount}",
        customer=0,
        created=when,
        updated=when,
        billing={},
        parent=parent,
        type="shop_order_refund",
        meta={"_refund_amount": amount},
    )


def create_tables(connection: Connection) -> None:
    for sql in statements(
        WORDPRESS_USERS, WORDPRESS_BLOG, WOOCOMMERCE_ORDER_ITEMS, WOOCOMMERCE_HPOS
    ):
        connection.execute(text(sql))


def set_storage(connection: Connection, storage: Storage) -> None:
    options = {
        "woocommerce_custom_orders_table_enabled": "no" if storage == "posts" else "yes",
        "woocommerce_custom_orders_table_data_sync_enabled": "yes" if storage == "both" else "no",
    }
    for name, value in options.items():
        connection.execute(
            text(
                "INSERT INTO wp_options (option_name, option_value) VALUES (:n, :v) "
                "ON DUPLICATE KEY UPDATE option_value = :v"
            ),
            {"n": name, "v": value},
        )


def add_products(connection: Connection, products: Sequence[Product]) -> None:
    terms: dict[str, int] = {}
    for product in products:
        kind = "product_variation" if product.parent else "product"
        _post(connection, product.id, kind, "publish", product.name, product.parent, None, None)
        if product.sku:
            _meta(connection, "wp_postmeta", "post_id", product.id, {"_sku": product.sku})
        for name in product.categories:
            if name not in terms:
                term = connection.execute(
                    text("INSERT INTO wp_terms (name, slug) VALUES (:n, :n)"), {"n": name}
                ).lastrowid
                terms[name] = connection.execute(
                    text(
                        "INSERT INTO wp_term_taxonomy (term_id, taxonomy, description) "
                        "VALUES (:t, 'product_cat', '')"
                    ),
                    {"t": term},
                ).lastrowid
            connection.execute(
                text(
                    "INSERT INTO wp_term_relationships (object_id, term_taxonomy_id)"
                    " VALUES (:o, :t)"
                ),
                {"o": product.id, "t": terms[name]},
            )


def add_users(connection: Connection, users: Sequence[User]) -> None:
    for user in users:
        connection.execute(
            text(
                "INSERT INTO wp_users (ID, user_login, user_registered, user_pass, user_nicename,"
                " user_email, user_url, user_activation_key, display_name)"
                " VALUES (:id, :login, :registered, '', :login, '', '', '', :login)"
            ),
            {"id": user.id, "login": user.login, "registered": user.registered},
        )
        _meta(connection, "wp_usermeta", "user_id", user.id, user.meta)


def add_orders(connection: Connection, orders: Sequence[WooOrder], storage: Storage) -> None:
    for order in orders:
        if storage in ("hpos", "both"):
            _hpos_order(connection, order)
        if storage in ("posts", "both"):
            _posts_order(connection, order)
        if order.type == "shop_order":
            _items(connection, order)


def move_order(
    connection: Connection, order_id: int, status: str, when: datetime, storage: Storage
) -> None:
    """Order `order_id` moved to the bin (`status` "trash") or back out of it, at `when`.

    In woocommerce/woocommerce plugins/woocommerce/src/Internal/DataStores/Orders/
    OrdersTableDataStore.php, trash_order() sets wp_wc_orders.status to 'trash' and
    date_updated_gmt to current_time( 'Y-m-d H:i:s', true ) (and calls wp_trash_post() when
    the posts are kept in sync); in the posts store wp_trash_post() saves the post with
    post_status 'trash' through wp_update_post(), which sets post_modified_gmt.
    untrash_order() sets the status from before the bin and saves the order
    (persist_updates() sets date_modified to now). The `_wp_trash_meta_*` keys both write
    are left out: nothing reads them.
    """
    if storage in ("hpos", "both"):
        connection.execute(
            text("UPDATE wp_wc_orders SET status = :s, date_updated_gmt = :t WHERE id = :id"),
            {"s": status, "t": when, "id": order_id},
        )
    if storage in ("posts", "both"):
        connection.execute(
            text(
                "UPDATE wp_posts SET post_status = :s, post_modified = :t, "
                "post_modified_gmt = :t WHERE ID = :id"
            ),
            {"s": status, "t": when, "id": order_id},
        )


def _post(
    connection: Connection,
    post_id: int,
    post_type: str,
    status: str,
    title: str,
    parent: int,
    created: datetime | None,
    updated: datetime | None,
) -> None:
    connection.execute(
        text(
            "INSERT INTO wp_posts (ID, post_type, post_status, post_title, post_parent,"
            " post_date, post_date_gmt, post_modified, post_modified_gmt, post_content,"
            " post_excerpt, to_ping, pinged, post_content_filtered)"
            " VALUES (:id, :type, :status, :title, :parent, :created, :created, :updated,"
            " :updated, '', '', '', '', '')"
        ),
        {
            "id": post_id,
            "type": post_type,
            "status": status,
            "title": title,
            "parent": parent,
            "created": created or datetime(2025, 1, 1),
            "updated": updated or datetime(2025, 1, 1),
        },
    )


def _meta(
    connection: Connection, table: str, owner: str, owner_id: int, meta: dict[str, Any]
) -> None:
    if meta:
        connection.execute(
            text(f"INSERT INTO {table} ({owner}, meta_key, meta_value) VALUES (:o, :k, :v)"),
            [{"o": owner_id, "k": k, "v": v} for k, v in meta.items()],
        )


def _hpos_order(connection: Connection, order: WooOrder) -> None:
    connection.execute(
        text(
            "INSERT INTO wp_wc_orders (id, status, currency, type, tax_amount, total_amount,"
            " customer_id, billing_email, date_created_gmt, date_updated_gmt, parent_order_id,"
            " payment_method, payment_method_title)"
            " VALUES (:id, :status, :currency, :type, 0, :total, :customer, '', :created,"
            " :updated, :parent, 'zarinpal', 'زرین‌پال')"
        ),
        {
            "id": order.id,
            "status": order.status,
            "currency": order.currency,
            "type": order.type,
            "total": Decimal(order.total),
            "customer": order.customer,
            "created": order.created,
            "updated": order.updated,
            "parent": order.parent,
        },
    )
    connection.execute(
        text(
            "INSERT INTO wp_wc_order_operational_data (order_id, created_via, date_paid_gmt)"
            " VALUES (:id, 'checkout', :paid)"
        ),
        {"id": order.id, "paid": order.paid},
    )
    if order.billing:
        connection.execute(
            text(
                "INSERT INTO wp_wc_order_addresses (order_id, address_type, first_name,"
                " last_name, city, phone, email) VALUES (:id, 'billing', :first_name,"
                " :last_name, :city, :phone, '')"
            ),
            {
                "id": order.id,
                **{
                    k: order.billing.get(k, "")
                    for k in ("first_name", "last_name", "city", "phone")
                },
            },
        )
    custom = {k: v for k, v in order.meta.items() if not k.startswith("_")}
    _meta(connection, "wp_wc_orders_meta", "order_id", order.id, custom)


def _posts_order(connection: Connection, order: WooOrder) -> None:
    _post(
        connection,
        order.id,
        order.type,
        order.status,
        "Order",
        order.parent,
        order.created,
        order.updated,
    )
    meta: dict[str, Any] = {
        "_order_total": order.total,
        "_order_currency": order.currency,
        "_customer_user": str(order.customer),
        **{f"_billing_{k}": v for k, v in order.billing.items()},
        **order.meta,
    }
    if order.paid:
        meta["_date_paid"] = str(int(order.paid.timestamp()))
        meta["_paid_date"] = order.paid.strftime("%Y-%m-%d %H:%M:%S")
    _meta(connection, "wp_postmeta", "post_id", order.id, meta)


def _items(connection: Connection, order: WooOrder) -> None:
    for line in order.lines:
        item = connection.execute(
            text(
                "INSERT INTO wp_woocommerce_order_items (order_item_name, order_item_type,"
                " order_id) VALUES (:name, 'line_item', :order)"
            ),
            {"name": line.name, "order": order.id},
        ).lastrowid
        meta = {
            "_product_id": str(line.product),
            "_variation_id": str(line.variation),
            "_qty": str(line.quantity),
            "_line_subtotal": line.total,
            "_line_total": line.total,
        }
        _meta(connection, "wp_woocommerce_order_itemmeta", "order_item_id", item, meta)
    for code in order.coupons:
        item = connection.execute(
            text(
                "INSERT INTO wp_woocommerce_order_items (order_item_name, order_item_type,"
                " order_id) VALUES (:name, 'coupon', :order)"
            ),
            {"name": code, "order": order.id},
        ).lastrowid
        _meta(
            connection,
            "wp_woocommerce_order_itemmeta",
            "order_item_id",
            item,
            {"discount_amount": "50000"},
        )
