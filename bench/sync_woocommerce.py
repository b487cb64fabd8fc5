"""Sync a generated WooCommerce shop (HPOS, MariaDB) with the preset; generic mode as baseline.

The shop is written into the real WooCommerce tables (tests/sources/woocommerce_schema.py):
users with usermeta, orders with billing addresses, payment dates, one or two line items
each and a coupon on some, a fifth of them guest checkouts, some refunds. The preset reads
everything (guests, items, SKUs, categories, refunds). The baseline is today's generic
`[[sources]]` mode on the same database: the README's usermeta query for customers and one
query over wc_orders joined to its payment dates, without guests, items or refunds.

    .venv/bin/python bench/sync_woocommerce.py                      # 100,000 orders
    .venv/bin/python bench/sync_woocommerce.py --orders 10000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "sources"))

from conftest import create_mariadb_database, drop_mariadb_database  # noqa: E402
from woocommerce_shop import Product, add_products, create_tables, set_storage  # noqa: E402

from campaigner.clock import SystemClock  # noqa: E402
from campaigner.config import Settings, SourceSettings  # noqa: E402
from campaigner.db import create_engine_for, session_factory, upgrade  # noqa: E402
from campaigner.sources import sync_source  # noqa: E402

START = datetime(2024, 1, 1)
STATUSES = ["wc-completed"] * 6 + ["wc-processing"] * 2 + ["wc-pending", "wc-cancelled"]
CHUNK = 5000


def _insert(connection: Connection, sql: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        connection.execute(text(sql), rows[start : start + CHUNK])


def generate(url: str, orders: int) -> None:
    rng = random.Random(14)
    users = max(orders // 5, 1)
    engine = create_engine(url)
    with engine.begin() as connection:
        create_tables(connection)
        set_storage(connection, "hpos")
        add_products(
            connection,
            [Product(n, f"محصول {n}", f"SKU-{n}", [f"دسته {n % 7}"]) for n in range(1, 51)],
        )
        _insert(
            connection,
            "INSERT INTO wp_users (ID, user_login, user_pass, user_nicename, user_email, user_url,"
            " user_registered, user_activation_key, display_name)"
            " VALUES (:id, :login, '', :login, '', '', :registered, '', :login)",
            [
                {"id": 1000 + u, "login": f"user{u}", "registered": START + timedelta(minutes=u)}
                for u in range(users)
            ],
        )
        meta = []
        for u in range(users):
            meta += [
                {"user": 1000 + u, "key": "first_name", "value": f"نام{u}"},
                {"user": 1000 + u, "key": "last_name", "value": f"خانواده{u}"},
                {"user": 1000 + u, "key": "billing_phone", "value": f"0912{u:07d}"},
                {"user": 1000 + u, "key": "sms_optin", "value": "yes"},
            ]
        _insert(
            connection,
            "INSERT INTO wp_usermeta (user_id, meta_key, meta_value) VALUES (:user, :key, :value)",
            meta,
        )
        rows, addresses, operational, items, item_meta = [], [], [], [], []
        item_id = 0
        for n in range(orders):
            order_id = 100_000 + n
            created = START + timedelta(minutes=5 * n)
            status = rng.choice(STATUSES)
            guest = rng.random() < 0.2
            customer = 0 if guest else 1000 + rng.randrange(users)
            rows.append(
                {
                    "id": order_id,
                    "status": status,
                    "type": "shop_order",
                    "total": rng.randrange(100, 5000) * 1000,
                    "customer": customer,
                    "created": created,
                    "parent": 0,
                }
            )
            phone = f"0935{rng.randrange(10**7):07d}" if guest else ""
            addresses.append({"order": order_id, "first": "مهمان", "phone": phone})
            paid = (
                created + timedelta(minutes=1)
                if status in ("wc-completed", "wc-processing")
                else None
            )
            operational.append({"order": order_id, "paid": paid})
            for line in range(rng.choice((1, 2))):
                item_id += 1
                product = rng.randrange(1, 51)
                items.append(
                    {
                        "id": item_id,
                        "name": f"محصول {product}",
                        "type": "line_item",
                        "order": order_id,
                    }
                )
                for key, value in (
                    ("_product_id", product),
                    ("_variation_id", 0),
                    ("_qty", line + 1),
                    ("_line_total", 1000),
                ):
                    item_meta.append({"item": item_id, "key": key, "value": str(value)})
            if n % 10 == 0:
                item_id += 1
                items.append(
                    {"id": item_id, "name": f"code{n}", "type": "coupon", "order": order_id}
                )
            if n % 50 == 0 and status == "wc-completed":
                rows.append(
                    {
                        "id": 900_000 + n,
                        "status": "wc-completed",
                        "type": "shop_order_refund",
                        "total": -1000,
                        "customer": 0,
                        "created": created + timedelta(days=1),
                        "parent": order_id,
                    }
                )
        _insert(
            connection,
            "INSERT INTO wp_wc_orders (id, status, currency, type, total_amount, customer_id,"
            " date_created_gmt, date_updated_gmt, parent_order_id)"
            " VALUES (:id, :status, 'IRR', :type, :total, :customer, :created, :created, :parent)",
            rows,
        )
        _insert(
            connection,
            "INSERT INTO wp_wc_order_addresses (order_id, address_type, first_name, phone)"
            " VALUES (:order, 'billing', :first, :phone)",
            addresses,
        )
        _insert(
            connection,
            "INSERT INTO wp_wc_order_operational_data (order_id, date_paid_gmt)"
            " VALUES (:order, :paid)",
            operational,
        )
        _insert(
            connection,
            "INSERT INTO wp_woocommerce_order_items (order_item_id, order_item_name,"
            " order_item_type, order_id) VALUES (:id, :name, :type, :order)",
            items,
        )
        _insert(
            connection,
            "INSERT INTO wp_woocommerce_order_itemmeta (order_item_id, meta_key, meta_value)"
            " VALUES (:item, :key, :value)",
            item_meta,
        )
    engine.dispose()


GENERIC_CUSTOMERS = """
SELECT u.ID AS user_id,
       MAX(CASE WHEN m.meta_key = 'first_name' THEN m.meta_value END) AS first_name,
       MAX(CASE WHEN m.meta_key = 'last_name' THEN m.meta_value END) AS last_name,
       MAX(CASE WHEN m.meta_key = 'billing_phone' THEN m.meta_value END) AS billing_phone,
       MAX(CASE WHEN m.meta_key = 'sms_optin' THEN m.meta_value END) AS sms_optin
FROM wp_users u LEFT JOIN wp_usermeta m ON m.user_id = u.ID
GROUP BY u.ID
"""
GENERIC_ORDERS = """
SELECT o.id, o.status, o.currency, o.total_amount, o.customer_id, o.date_updated_gmt,
       op.date_paid_gmt
FROM wp_wc_orders o LEFT JOIN wp_wc_order_operational_data op ON op.order_id = o.id
WHERE o.type = 'shop_order' AND o.customer_id > 0
"""


def sources(url: str) -> dict[str, SourceSettings]:
    preset = {
        "name": "preset",
        "url": url,
        "preset": "woocommerce",
        "customers": {"columns": {"consent": "sms_optin"}},
    }
    generic = {
        "name": "generic",
        "url": url,
        "customers": {
            "query": GENERIC_CUSTOMERS,
            "columns": {"id": "user_id", "phone": "billing_phone", "consent": "sms_optin"},
        },
        "orders": {
            "query": GENERIC_ORDERS,
            "cursor": "date_updated_gmt",
            "columns": {"id": "id", "total": "total_amount", "paid_at": "date_paid_gmt"},
            "status_values": {"wc-pending": "pending"},
        },
    }
    return {
        "generic (baseline)": SourceSettings.model_validate(generic),
        "preset": SourceSettings.model_validate(preset),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    url = create_mariadb_database()
    try:
        began = time.perf_counter()
        generate(url, args.orders)
        print(f"generated a shop of {args.orders:,} orders in {time.perf_counter() - began:.1f} s")
        for label, source in sources(url).items():
            with tempfile.TemporaryDirectory() as folder:
                db_url = f"sqlite:///{folder}/campaigner.db"
                engine = create_engine_for(db_url)
                upgrade(engine)
                settings = Settings.model_validate({"database": {"url": db_url}})
                began = time.perf_counter()
                report = sync_source(session_factory(engine), source, settings, clock=SystemClock())
                seconds = time.perf_counter() - began
                engine.dispose()
            orders = report.kinds["orders"]
            print(
                f"{label:>20}: {seconds:6.1f} s, {orders.read / seconds:8,.0f} orders/s "
                f"({orders.inserted:,} orders loaded, {orders.rejected:,} rejected, "
                f"{report.kinds['customers'].inserted:,} customers)"
            )
    finally:
        drop_mariadb_database(url)


if __name__ == "__main__":
    main()
