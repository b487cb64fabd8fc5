"""The WooCommerce preset: customers and orders read from WooCommerce's own tables.

WooCommerce keeps orders in one of two stores: the custom order tables (HPOS: `wc_orders`,
`wc_order_addresses`, `wc_order_operational_data`, `wc_orders_meta`) or the legacy posts
(`posts` of type `shop_order` with `_billing_phone`, `_order_total`, … in `postmeta`). The
option `woocommerce_custom_orders_table_enabled` says which one is authoritative; with
compatibility mode (`woocommerce_custom_orders_table_data_sync_enabled`) both hold the same
orders. The authoritative store is read; with compatibility mode on, the other store is read
too, for orders the authoritative one does not have yet, so each order is loaded once.

Each pass streams (id, change time) rows through the generic engine (batches, cursor), then
reads the batch's details in a few queries by id: addresses, payment dates, refunds, line
items with SKUs and categories, coupons, and the meta keys configured for consent and
birthday. Refunds (`shop_order_refund`) are never orders: a refund row only makes its parent
order be read again, with the refunded amount. Guest buyers (customer id 0) come inline with
their order and become customers known by phone.

Table names come from the validated `table_prefix`; every value is a bound parameter.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from time import monotonic
from typing import Any

from sqlalchemy import Connection, bindparam, event, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings, SourceSettings, SourceTable
from campaigner.customers.fields import CUSTOMER_FIELDS
from campaigner.customers.records import PAID_AT_IS_CREATION, BirthdayFormat, as_text
from campaigner.errors import CampaignerError
from campaigner.sources.sync import SourcePass, SyncReport, source_connection, source_reason

HPOS_OPTION = "woocommerce_custom_orders_table_enabled"
SYNC_OPTION = "woocommerce_custom_orders_table_data_sync_enabled"
# The longest an order.deleted webhook waits for the shop's database to confirm it, all its
# reads together (connecting, the tables, the options, the order): WooCommerce waits a minute
# for the answer (WC_Webhook::deliver()), and one deletion must not hold a worker for
# several reads' timeouts in a row. Each read also gives up after CONFIRM_TIMEOUT_SECONDS.
CONFIRM_DEADLINE_SECONDS = 5.0
# The longest one read of the confirmation may take (the driver's timeouts): what bounds a
# read begun just before the deadline.
CONFIRM_TIMEOUT_SECONDS = 5.0
# WooCommerce order statuses (wc_get_order_statuses) as Campaigner statuses.
STATUSES = {
    "wc-completed": "paid",
    "wc-processing": "paid",
    "wc-pending": "pending",
    "wc-on-hold": "pending",
    "wc-checkout-draft": "pending",
    "wc-cancelled": "cancelled",
    "wc-failed": "failed",
    "wc-refunded": "refunded",
    # An order moved to the bin (wp_trash_post, or HPOS's own trash): no longer a sale.
    "trash": "cancelled",
}
# WordPress's drafts: an order an admin began with "Add order" and never saved. No order yet.
NO_ORDER_YET = ("auto-draft", "draft")
# Customer field -> usermeta key; `columns` next to the preset adds or replaces keys, e.g.
# consent = "sms_optin" or birthday = "billing_birthdate". Without a consent key nobody has
# consent: WooCommerce itself keeps none.
USER_META = {
    "first_name": "first_name",
    "last_name": "last_name",
    "phone": "billing_phone",
    "city": "billing_city",
}
# Set by WooCommerce whenever a customer's data changes (Unix time): the REST API's and so
# the webhooks' `date_modified`.
LAST_UPDATE = "last_update"
BILLING_FALLBACK = {"first_name": "billing_first_name", "last_name": "billing_last_name"}
LEGACY_ORDER_META = (
    "_customer_user",
    "_billing_first_name",
    "_billing_last_name",
    "_billing_phone",
    "_billing_city",
    "_order_total",
    "_order_currency",
    "_date_paid",
    "_paid_date",
)
PERSON_TEXT = ("first_name", "last_name", "city")
ITEM_META = ("_product_id", "_variation_id", "_qty", "_line_total")


def shop_text(value: Any) -> str:
    """A name as WordPress stores it (`Tea &amp; Coffee`, `Idea &ndash; Black`: item, product
    and category names keep their HTML entities, in the tables and in the REST API alike), as
    the text a message shows."""
    return html.unescape(as_text(value))


def shop_names(record: dict[str, Any]) -> dict[str, Any]:
    """A person's name and city as a text shows them: WordPress stores a profile's `&` as
    `&amp;` (kses on `pre_user_first_name`), and names typed where the page was not UTF-8
    arrive as numeric entities («&#1593;&#1604;&#1740;» for «علی»)."""
    for name in PERSON_TEXT:
        if record.get(name) is not None:
            record[name] = shop_text(record[name])
    return record


@dataclass(frozen=True)
class ShopMeta:
    """The customer fields a shop keeps in meta under keys of its own (a plugin's SMS consent
    or birthday), named by `[sources.customers.columns]` next to the preset, and how a
    consent value reads (`consent_values`). The same keys are looked for in a user's meta
    and, for the buyer, in an order's: a checkout opt-in is stored on the order."""

    keys: dict[str, str] = field(default_factory=dict)  # field -> meta key
    consent_values: dict[str, bool] = field(default_factory=dict)
    birthday_format: BirthdayFormat = "auto"

    @classmethod
    def of(cls, source: SourceSettings | None) -> ShopMeta:
        spec = (source.customers if source else None) or SourceTable()
        keys = spec.field_columns(CUSTOMER_FIELDS)
        keys.pop("external_id", None)
        return cls(keys, dict(spec.consent_values), spec.birthday_format)

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopMeta:
        """The keys of the shop's WooCommerce source, if it has one (for its webhooks)."""
        return cls.of(next((s for s in settings.sources if s.preset == "woocommerce"), None))

    def read(self, meta: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """The values of `fields` found in `meta`; a key that is absent says nothing."""
        found: dict[str, Any] = {}
        for name in fields:
            key = self.keys.get(name)
            if key is not None and key in meta:
                found[name] = self.value(name, meta[key])
        return found

    def value(self, name: str, value: Any) -> Any:
        if name == "marketing_consent" and self.consent_values:
            return self.consent_values.get(as_text(value).strip(), value)
        return value


def woocommerce_passes(
    connection: Connection,
    sessions: sessionmaker[Session],
    source: SourceSettings,
    settings: Settings,
    report: SyncReport,
) -> list[SourcePass]:
    """Customers, then orders from the authoritative store, then (compatibility mode) the other."""
    if connection.dialect.name not in ("mysql", "mariadb"):
        raise CampaignerError(
            f"source {source.name!r}: the woocommerce preset reads MySQL or MariaDB "
            f"(WordPress's databases), not {connection.dialect.name}"
        )
    shop = Shop.detect(connection, source)
    common = (connection, sessions, source, settings)
    customers = source.customers or SourceTable()
    orders = source.orders or SourceTable()
    passes: list[SourcePass] = []
    if customers.reads_own_rows:
        passes.append(SourcePass(*common, "customers", customers, report))
    else:
        passes.append(UserPass(*common, "customers", customers, report, shop=shop))
    if orders.reads_own_rows:
        passes.append(SourcePass(*common, "orders", orders, report))
        return passes
    passes.append(OrderPass(*common, "orders", orders, report, shop=shop, hpos=shop.hpos))
    if shop.synced:
        passes.append(OrderPass(*common, "orders", orders, report, shop=shop, hpos=not shop.hpos))
    return passes


@dataclass(frozen=True)
class OrderState:
    """An order as the shop has it now: its raw status (`trash` in the bin) and when it last
    changed (UTC). Moving an order to the bin changes it: `wp_trash_post` saves the post
    with status `trash` (a new post_modified_gmt), and HPOS's
    `OrdersTableDataStore::trash_order` sets status `trash` and date_updated_gmt."""

    status: str
    modified: datetime | None

    @property
    def trashed(self) -> bool:
        return self.status == "trash"


def order_state(
    source: SourceSettings,
    order_id: str,
    *,
    within: float = CONFIRM_DEADLINE_SECONDS,
    clock: Callable[[], float] = monotonic,
) -> OrderState | None:
    """Order `order_id` in the shop's authoritative store, or None when the shop has no such
    order (deleted for good, or never one). One short read-only connection: deletions are
    rare, and the daemon holds no connection to the shop between syncs.

    A webhook waits for it, so it has `within` seconds (by `clock`) in all: no read begins
    past them, and connecting and each read give up after CONFIRM_TIMEOUT_SECONDS. Each read
    bounded alone, four slow ones in a row (connecting, the tables, the options, the order)
    took four timeouts.

    Raises CampaignerError when the shop's database cannot be reached or read in time.
    """
    deadline = clock() + within

    def in_time(*_: Any) -> None:
        if clock() >= deadline:
            raise CampaignerError(
                f"source {source.name!r}: confirming order {order_id} took longer than {within:g}s"
            )

    with source_connection(source, min(CONFIRM_TIMEOUT_SECONDS, within)) as connection:
        event.listen(connection, "before_cursor_execute", in_time)
        try:
            shop = Shop.detect(connection, source)
            if shop.hpos:
                sql = (
                    f"SELECT status, date_updated_gmt AS modified "
                    f"FROM {shop.table('wc_orders')} WHERE id = :id AND type = 'shop_order'"
                )
            else:
                sql = (
                    f"SELECT post_status AS status, post_modified_gmt AS modified "
                    f"FROM {shop.table('posts')} WHERE ID = :id AND post_type = 'shop_order'"
                )
            row = connection.execute(text(sql), {"id": int(order_id)}).one_or_none()
            connection.rollback()
        except (DBAPIError, OverflowError) as exc:  # SQLite's integers end at 2**63 - 1
            reason = source_reason(exc, source)
            raise CampaignerError(
                f"source {source.name!r}: reading order {order_id} failed: {reason}"
            ) from None
    if row is None:
        return None
    return OrderState(as_text(row.status).strip(), _utc(row.modified))


class Shop:
    """Which order store a WooCommerce database uses, and its table names."""

    def __init__(self, prefix: str, *, hpos: bool, synced: bool) -> None:
        self.prefix = prefix
        self.hpos = hpos
        self.synced = synced

    @classmethod
    def detect(cls, connection: Connection, source: SourceSettings) -> Shop:
        prefix = source.table_prefix
        tables = set(inspect(connection).get_table_names())
        connection.rollback()
        missing = [
            t
            for t in ("users", "usermeta", "posts", "postmeta", "options")
            if prefix + t not in tables
        ]
        if missing:
            raise CampaignerError(
                f"source {source.name!r}: no WordPress table {prefix + missing[0]} "
                f"(is table_prefix = {prefix!r} right?)"
            )
        options = {
            name: value
            for name, value in connection.execute(
                text(
                    f"SELECT option_name, option_value FROM {prefix}options "
                    "WHERE option_name IN (:hpos, :sync)"
                ),
                {"hpos": HPOS_OPTION, "sync": SYNC_OPTION},
            )
        }
        connection.rollback()
        has_tables = prefix + "wc_orders" in tables
        hpos = has_tables and options.get(HPOS_OPTION) == "yes"
        synced = has_tables and options.get(SYNC_OPTION) == "yes"
        return cls(prefix, hpos=hpos, synced=synced)

    def table(self, name: str) -> str:
        return self.prefix + name


def _meta(rows: Iterable[Sequence[Any]]) -> dict[Any, dict[str, str]]:
    """(owner, key, value) rows as {owner: {key: value}}; the first value of a key wins."""
    found: dict[Any, dict[str, str]] = defaultdict(dict)
    for owner, key, value in rows:
        found[owner].setdefault(key, as_text(value))
    return found


def _utc(value: Any) -> datetime | None:
    """A *_gmt column: naive UTC, or a zero date WordPress writes for "never"."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return None


SIGNUP = "date:signup"


def _unix(value: str) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value.strip().isdigit() else None


class _WooPass(SourcePass):
    id_key = "id"
    cursor_key = "changed_at"

    def __init__(self, *args: Any, shop: Shop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shop = shop
        self.id_column = self.id_key
        self.cursor_column = self.cursor_key

    def rows(self, sql: str, **params: Any) -> list[Mapping[str, Any]]:
        """A detail query; list parameters expand to IN (…)."""
        statement = text(sql)
        for name, value in params.items():
            if isinstance(value, list | tuple | set):
                statement = statement.bindparams(bindparam(name, expanding=True))
        return self.query(statement, params)


class UserPass(_WooPass):
    """Registered customers: `users` and `usermeta`, the phone falling back to their orders;
    the day they registered (in the shop's zone) is their `signup` date."""

    def __init__(self, *args: Any, shop: Shop) -> None:
        super().__init__(*args, shop=shop)
        self.meta_keys = {**USER_META, **self.columns}
        self.meta_keys.pop("external_id", None)

    def relation(self) -> str:
        users, usermeta = self.shop.table("users"), self.shop.table("usermeta")
        # `last_update` is set by WooCommerce whenever a customer's data changes.
        return (
            f"(SELECT u.ID AS id, u.user_registered AS registered, "
            f"GREATEST(UNIX_TIMESTAMP(u.user_registered), "
            f"COALESCE(CAST(m.meta_value AS UNSIGNED), 0)) AS changed_at "
            f"FROM {users} u LEFT JOIN {usermeta} m "
            f"ON m.user_id = u.ID AND m.meta_key = '{LAST_UPDATE}') AS campaigner_source"
        )

    def records(self, rows: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        ids = [int(row[self._key(row, "id")]) for row in rows]
        keys = [*self.meta_keys.values(), *BILLING_FALLBACK.values(), LAST_UPDATE]
        meta = _meta(
            (r["user_id"], r["meta_key"], r["meta_value"])
            for r in self.rows(
                f"SELECT user_id, meta_key, meta_value FROM {self.shop.table('usermeta')} "
                "WHERE user_id IN :ids AND meta_key IN :keys ORDER BY umeta_id",
                ids=ids,
                keys=keys,
            )
        )
        latest = self._latest_billing([i for i in ids if not meta[i].get(self.meta_keys["phone"])])
        registered = {
            int(row[self._key(row, "id")]): _utc(row[self._key(row, "registered")]) for row in rows
        }
        records = []
        for user_id in ids:
            values = meta[user_id]
            record: dict[str, Any] = {
                "external_id": str(user_id),
                "shop_modified_at": _unix(values.get(LAST_UPDATE, "")),
            }
            for name, key in self.meta_keys.items():
                record[name] = self._value(name, values.get(key, ""))
            for name, key in BILLING_FALLBACK.items():
                record[name] = record[name] or values.get(key, "")
            billing = latest.get(user_id, {})
            for name in ("phone", "first_name", "last_name"):
                record[name] = record[name] or billing.get(name, "")
            signup = registered.get(user_id)
            if signup is not None:
                record[SIGNUP] = signup.astimezone(self.zone).date().isoformat()
            records.append(shop_names(record))
        return records, [str(i) for i in ids]

    def _latest_billing(self, user_ids: list[int]) -> dict[int, dict[str, str]]:
        """Each user's billing name and phone on their latest order that has a phone."""
        if not user_ids:
            return {}
        if self.shop.hpos:
            found = self.rows(
                f"SELECT o.customer_id AS user_id, a.phone, a.first_name, a.last_name "
                f"FROM {self.shop.table('wc_orders')} o "
                f"JOIN {self.shop.table('wc_order_addresses')} a "
                "ON a.order_id = o.id AND a.address_type = 'billing' "
                "WHERE o.customer_id IN :ids AND o.type = 'shop_order' AND a.phone <> '' "
                "ORDER BY o.date_created_gmt DESC, o.id DESC",
                ids=user_ids,
            )
        else:
            postmeta = self.shop.table("postmeta")
            found = self.rows(
                f"SELECT CAST(cu.meta_value AS UNSIGNED) AS user_id, ph.meta_value AS phone, "
                f"fn.meta_value AS first_name, ln.meta_value AS last_name "
                f"FROM {postmeta} cu JOIN {self.shop.table('posts')} p "
                "ON p.ID = cu.post_id AND p.post_type = 'shop_order' "
                f"JOIN {postmeta} ph ON ph.post_id = p.ID AND ph.meta_key = '_billing_phone' "
                f"LEFT JOIN {postmeta} fn ON fn.post_id = p.ID "
                "AND fn.meta_key = '_billing_first_name' "
                f"LEFT JOIN {postmeta} ln ON ln.post_id = p.ID "
                "AND ln.meta_key = '_billing_last_name' "
                "WHERE cu.meta_key = '_customer_user' AND cu.meta_value IN :ids "
                "AND ph.meta_value <> '' ORDER BY p.post_date_gmt DESC, p.ID DESC",
                ids=[str(i) for i in user_ids],
            )
        latest: dict[int, dict[str, str]] = {}
        for row in found:
            latest.setdefault(
                int(row["user_id"]),
                {k: as_text(row[k]) for k in ("phone", "first_name", "last_name")},
            )
        return latest


class OrderPass(_WooPass):
    """Orders of one store; refunds count against their parent order."""

    def __init__(self, *args: Any, shop: Shop, hpos: bool) -> None:
        backup = hpos != shop.hpos
        super().__init__(*args, shop=shop, stream=("hpos" if hpos else "posts") if backup else "")
        self.hpos = hpos
        self.backup = backup
        self.statuses = {**STATUSES, **self.spec.status_values}
        self.meta_keys = {n: k for n, k in self.columns.items() if n != "external_id"}
        self.buyer_meta = ShopMeta.of(self.source)

    def relation(self) -> str:
        """(id, change time, type, parent) of orders and refunds; the time is indexed in HPOS."""
        if self.hpos:
            return (
                "(SELECT id, date_updated_gmt AS changed_at, "
                f"type, parent_order_id AS parent FROM {self.shop.table('wc_orders')} "
                "WHERE type IN ('shop_order', 'shop_order_refund')) AS campaigner_source"
            )
        return (
            "(SELECT ID AS id, post_modified_gmt AS changed_at, post_type AS type, "
            f"post_parent AS parent FROM {self.shop.table('posts')} "
            "WHERE post_type IN ('shop_order', 'shop_order_refund')) AS campaigner_source"
        )

    def records(self, rows: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        ids: list[int] = []
        for row in rows:
            order_id = int(row["parent"] if row["type"] == "shop_order_refund" else row["id"])
            if order_id and order_id not in ids:
                ids.append(order_id)
        if self.backup:
            ids = self._not_in_authoritative(ids)
        if not ids:
            return [], []
        orders = self._orders_hpos(ids) if self.hpos else self._orders_posts(ids)
        refunded = self._refunded(ids)
        items, coupons = self._items(ids)
        records = []
        for order_id, order in orders.items():
            order["refunded"] = min(refunded.get(order_id, Decimal(0)), order["total"] or 0)
            order["items"] = items.get(order_id, [])
            order["coupon_code"] = ",".join(coupons.get(order_id, []))[:64] or None
            records.append(order)
        return records, [r["external_id"] for r in records]

    def _not_in_authoritative(self, ids: list[int]) -> list[int]:
        if self.shop.hpos:
            sql = f"SELECT id FROM {self.shop.table('wc_orders')} WHERE id IN :ids"
        else:
            sql = (
                f"SELECT ID AS id FROM {self.shop.table('posts')} "
                "WHERE ID IN :ids AND post_type = 'shop_order'"
            )
        present = {int(r["id"]) for r in self.rows(sql, ids=ids)}
        return [i for i in ids if i not in present]

    def _status(self, value: Any) -> str:
        status = as_text(value).strip()
        return self.statuses.get(status, status)

    def _meta_wanted(self) -> list[str]:
        """The order meta keys read: the order mapping's and the buyer's consent key."""
        consent = self.buyer_meta.keys.get("marketing_consent")
        return [*self.meta_keys.values(), *([consent] if consent else [])]

    def _order_meta(self, ids: list[int], keys: Iterable[str]) -> dict[Any, dict[str, str]]:
        keys = list(keys)
        if not keys:
            return {}
        if self.hpos:
            sql = (
                f"SELECT order_id AS owner, meta_key, meta_value FROM "
                f"{self.shop.table('wc_orders_meta')} WHERE order_id IN :ids AND meta_key IN :keys "
                "ORDER BY id"
            )
        else:
            sql = (
                f"SELECT post_id AS owner, meta_key, meta_value FROM {self.shop.table('postmeta')} "
                "WHERE post_id IN :ids AND meta_key IN :keys ORDER BY meta_id"
            )
        found = self.rows(sql, ids=ids, keys=keys)
        return _meta((int(r["owner"]), r["meta_key"], r["meta_value"]) for r in found)

    def _record(
        self,
        order_id: int,
        *,
        status: Any,
        total: Any,
        currency: Any,
        customer: Any,
        created: datetime | None,
        modified: datetime | None,
        paid: Any,
        billing: Mapping[str, Any],
        meta: Mapping[str, str],
    ) -> dict[str, Any]:
        mapped = self._status(status)
        unknown = not paid and mapped == "paid"  # no payment date for some gateways
        if unknown:
            paid = created
        record: dict[str, Any] = {
            "external_id": str(order_id),
            "shop_modified_at": modified,
            "status": mapped,
            "total": Decimal(as_text(total) or "0"),
            "currency": currency,
            "paid_at": paid if mapped == "paid" else None,
            PAID_AT_IS_CREATION: unknown,
        }
        for name, key in self.meta_keys.items():
            if name not in self.fields or name in ("customer_id", "items_count"):
                continue
            record[name] = self._value(name, meta.get(key, ""))
        user = int(as_text(customer) or 0)
        if user:
            record["customer_id"] = str(user)
        else:
            buyer = {
                name: as_text(billing.get(name))
                for name in ("first_name", "last_name", "phone", "city")
            }
            buyer.update(self.buyer_meta.read(meta, ["marketing_consent"]))
            record["customer"] = shop_names(buyer)
        return record

    def _orders_hpos(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        table = self.shop.table
        rows = self.rows(
            "SELECT o.id, o.status, o.currency, o.total_amount, o.customer_id, "
            "o.date_created_gmt, o.date_updated_gmt, op.date_paid_gmt, "
            "a.first_name, a.last_name, a.phone, a.city "
            f"FROM {table('wc_orders')} o "
            f"LEFT JOIN {table('wc_order_operational_data')} op ON op.order_id = o.id "
            f"LEFT JOIN {table('wc_order_addresses')} a "
            "ON a.order_id = o.id AND a.address_type = 'billing' "
            "WHERE o.id IN :ids AND o.type = 'shop_order' AND o.status NOT IN :drafts "
            "ORDER BY o.id",
            ids=ids,
            drafts=NO_ORDER_YET,
        )
        meta = self._order_meta(ids, self._meta_wanted())
        return {
            int(r["id"]): self._record(
                int(r["id"]),
                status=r["status"],
                total=r["total_amount"],
                currency=r["currency"],
                customer=r["customer_id"],
                created=_utc(r["date_created_gmt"]),
                modified=_utc(r["date_updated_gmt"]),
                paid=_utc(r["date_paid_gmt"]),
                billing=r,
                meta=meta.get(int(r["id"]), {}),
            )
            for r in rows
        }

    def _orders_posts(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        posts = self.rows(
            "SELECT ID AS id, post_status, post_date_gmt, post_modified_gmt "
            f"FROM {self.shop.table('posts')} "
            "WHERE ID IN :ids AND post_type = 'shop_order' AND post_status NOT IN :drafts "
            "ORDER BY ID",
            ids=ids,
            drafts=NO_ORDER_YET,
        )
        meta = self._order_meta(ids, [*LEGACY_ORDER_META, *self._meta_wanted()])
        orders = {}
        for post in posts:
            order_id = int(post["id"])
            values = meta.get(order_id, {})
            paid: Any = None
            if values.get("_date_paid", "").strip().isdigit():
                paid = datetime.fromtimestamp(int(values["_date_paid"]), UTC)
            elif values.get("_paid_date", "").strip():
                paid = values["_paid_date"]  # the site's local time: read in the source zone
            orders[order_id] = self._record(
                order_id,
                status=post["post_status"],
                total=values.get("_order_total", ""),
                currency=values.get("_order_currency", ""),
                customer=values.get("_customer_user", ""),
                created=_utc(post["post_date_gmt"]),
                modified=_utc(post["post_modified_gmt"]),
                paid=paid,
                billing={
                    name: values.get(f"_billing_{name}", "")
                    for name in ("first_name", "last_name", "phone", "city")
                },
                meta=values,
            )
        return orders

    def _refunded(self, ids: list[int]) -> dict[int, Decimal]:
        """Money refunded per order: refunds are orders of their own with a negative total."""
        if self.hpos:
            sql = (
                f"SELECT parent_order_id AS parent, SUM(ABS(total_amount)) AS amount "
                f"FROM {self.shop.table('wc_orders')} "
                "WHERE type = 'shop_order_refund' AND parent_order_id IN :ids "
                "GROUP BY parent_order_id"
            )
        else:
            sql = (
                f"SELECT p.post_parent AS parent, SUM(ABS(CAST(m.meta_value AS DECIMAL(26, 8)))) "
                f"AS amount FROM {self.shop.table('posts')} p JOIN {self.shop.table('postmeta')} m "
                "ON m.post_id = p.ID AND m.meta_key = '_refund_amount' "
                "WHERE p.post_type = 'shop_order_refund' AND p.post_parent IN :ids "
                "GROUP BY p.post_parent"
            )
        return {int(r["parent"]): Decimal(as_text(r["amount"])) for r in self.rows(sql, ids=ids)}

    def _items(
        self, ids: list[int]
    ) -> tuple[dict[int, list[dict[str, Any]]], dict[int, list[str]]]:
        """Line items (with SKU and product categories) and coupon codes per order."""
        found = self.rows(
            "SELECT order_item_id, order_id, order_item_name, order_item_type "
            f"FROM {self.shop.table('woocommerce_order_items')} WHERE order_id IN :ids "
            "AND order_item_type IN ('line_item', 'coupon') ORDER BY order_id, order_item_id",
            ids=ids,
        )
        coupons: dict[int, list[str]] = defaultdict(list)
        lines = []
        for row in found:
            if row["order_item_type"] == "coupon":
                coupons[int(row["order_id"])].append(as_text(row["order_item_name"]).strip())
            else:
                lines.append(row)
        if not lines:
            return {}, coupons
        # One row per item (MAX … GROUP BY), by item id only: a meta_key condition lets
        # MariaDB pick the meta_key index and scan every item's meta.
        pivot = ", ".join(
            f"MAX(CASE WHEN meta_key = '{key}' THEN meta_value END) AS `{key}`" for key in ITEM_META
        )
        meta = {
            int(r["order_item_id"]): {key: as_text(r[key]) for key in ITEM_META}
            for r in self.rows(
                f"SELECT order_item_id, {pivot} FROM "
                f"{self.shop.table('woocommerce_order_itemmeta')} "
                "WHERE order_item_id IN :items GROUP BY order_item_id",
                items=[int(r["order_item_id"]) for r in lines],
            )
        }
        products = {int(m.get("_product_id") or 0) for m in meta.values()} | {
            int(m.get("_variation_id") or 0) for m in meta.values()
        }
        products.discard(0)
        skus, categories = self._products(sorted(products))
        items: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in lines:
            values = meta.get(int(row["order_item_id"]), {})
            product = int(values.get("_product_id") or 0)
            variation = int(values.get("_variation_id") or 0)
            items[int(row["order_id"])].append(
                {
                    "product_id": str(product) if product else None,
                    "sku": skus.get(variation) or skus.get(product),
                    "name": shop_text(row["order_item_name"]),
                    "categories": categories.get(product, []),
                    "quantity": values.get("_qty") or "1",
                    "line_total": values.get("_line_total") or "0",
                }
            )
        return items, coupons

    def _products(self, products: list[int]) -> tuple[dict[int, str], dict[int, list[str]]]:
        if not products:
            return {}, {}
        skus = {
            int(r["post_id"]): as_text(r["meta_value"])
            for r in self.rows(
                f"SELECT post_id, meta_value FROM {self.shop.table('postmeta')} "
                "WHERE post_id IN :ids AND meta_key = '_sku' AND meta_value <> ''",
                ids=products,
            )
        }
        categories: dict[int, list[str]] = defaultdict(list)
        for r in self.rows(
            f"SELECT r.object_id, t.name FROM {self.shop.table('term_relationships')} r "
            f"JOIN {self.shop.table('term_taxonomy')} x "
            "ON x.term_taxonomy_id = r.term_taxonomy_id AND x.taxonomy = 'product_cat' "
            f"JOIN {self.shop.table('terms')} t ON t.term_id = x.term_id "
            "WHERE r.object_id IN :ids ORDER BY r.object_id, t.name",
            ids=products,
        ):
            categories[int(r["object_id"])].append(shop_text(r["name"]))
        return skus, categories
