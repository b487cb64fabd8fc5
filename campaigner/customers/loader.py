"""Writing customer and order records: the one path for CSV import, source sync and the API.

Each call takes a batch of raw records, normalises them (`records`), upserts the good ones
by external id inside the caller's transaction and returns one error per bad record, so a bad
record never stops the others. Writing the same records twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    Update,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigner.config import CustomerDefaults
from campaigner.customers.categories import names as category_names
from campaigner.customers.guests import is_guest, merge_guests, registered_owners
from campaigner.customers.phones import InvalidPhone, normalize_phone
from campaigner.customers.records import (
    NOT_PAID_YET,
    OWN_DATES,
    PAID_AT_IS_CREATION,
    BirthdayFormat,
    RowError,
    as_text,
    customer_row,
    guest_id,
    item_rows,
    order_row,
)
from campaigner.customers.widths import fit_customer, fit_item, fit_order
from campaigner.db.models import Customer, CustomerDate, Order, OrderItem, OrderItemCategory
from campaigner.db.upsert import upsert
from campaigner.messages.coupons import redeem_coupons
from campaigner.messages.referrals import attribute_referrals
from campaigner.segments.daily import rank_for_request
from campaigner.segments.rfm_map import SegmentMap
from campaigner.segments.scoring import refresh_inputs


@dataclass(frozen=True)
class RecordError:
    """Why the record at `index` (its position in the batch given) was not loaded."""

    index: int
    reason: str
    field: str | None = None


@dataclass(frozen=True)
class RecordWarning:
    """A value of the record at `index` changed to fit its column; the record was loaded."""

    index: int
    reason: str
    field: str


@dataclass
class LoadResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Records older than what the shop sent before (out-of-order deliveries): not written.
    stale: int = 0
    errors: list[RecordError] = field(default_factory=list)
    warnings: list[RecordWarning] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.stale

    def add(self, other: LoadResult, offset: int = 0) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.errors += [RecordError(e.index + offset, e.reason, e.field) for e in other.errors]
        self.warnings += [
            RecordWarning(w.index + offset, w.reason, w.field) for w in other.warnings
        ]


def load_customers(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    defaults: CustomerDefaults,
    *,
    now: datetime,
    birthday_format: BirthdayFormat = "auto",
) -> LoadResult:
    """Upsert customer records (keys are Campaigner field names) by external id.

    A record without a `marketing_consent` key says nothing about consent: a known customer
    keeps theirs, a new one starts without. (A shop's order webhook naming its buyer must not
    take back the consent the customer gave elsewhere.)
    """
    batch = prepare_customers(rows, defaults, birthday_format=birthday_format)
    return write_customers(session, batch, defaults, now=now)


@dataclass
class CustomerBatch:
    """Customer records normalised and ready to write, with the errors and warnings found.

    The two halves of `load_customers` apart, so that an import can prepare one batch (all
    Python) while the database writes the previous one (`customers.writer`).
    """

    said: list[dict[str, Any]] = field(default_factory=list)
    unsaid: list[dict[str, Any]] = field(default_factory=list)
    own_dates: dict[str, dict[str, tuple[date, str]]] = field(default_factory=dict)
    result: LoadResult = field(default_factory=LoadResult)


def prepare_customers(
    rows: Sequence[Mapping[str, Any]],
    defaults: CustomerDefaults,
    *,
    birthday_format: BirthdayFormat = "auto",
) -> CustomerBatch:
    """Validate and normalise customer records; touches no database."""
    batch = CustomerBatch()
    result = batch.result
    for index, raw in enumerate(rows):
        try:
            row = customer_row(raw, defaults, birthday_format=birthday_format)
        except RowError as exc:
            result.errors.append(RecordError(index, str(exc), exc.field))
            continue
        for name, reason in fit_customer(row):
            result.warnings.append(RecordWarning(index, reason, name))
        dates = row.pop(OWN_DATES, None)
        if dates:
            batch.own_dates.setdefault(row["external_id"], {}).update(dates)
        (batch.said if "marketing_consent" in raw else batch.unsaid).append(row)
    return batch


def write_customers(
    session: Session, batch: CustomerBatch, defaults: CustomerDefaults, *, now: datetime
) -> LoadResult:
    """Upsert a prepared batch inside the caller's transaction; returns the batch's result,
    its counts added to the errors and warnings found when it was prepared."""
    result = batch.result
    said, unsaid = batch.said, batch.unsaid
    table = cast(Table, Customer.__table__)
    if said:
        _write(session, table, said, now, result)
    if unsaid:
        _write(session, table, unsaid, now, result, keep=("marketing_consent",))
    if batch.own_dates:
        _write_dates(session, batch.own_dates, now)
    if said or unsaid:
        merge_guests(session, said + unsaid, defaults.currency)
    return result


def _write_dates(
    session: Session, own_dates: dict[str, dict[str, tuple[date, str]]], now: datetime
) -> None:
    """Each customer's own dates, one row per customer and name; a new date replaces the old."""
    ids: dict[str, int] = {
        external_id: customer_id
        for external_id, customer_id in session.execute(
            select(Customer.external_id, Customer.id).where(
                Customer.external_id.in_(list(own_dates))
            )
        )
    }
    rows = [
        {
            "customer_id": ids[external_id],
            "name": name,
            "date": day,
            "calendar": calendar,
            "updated_at": now,
        }
        for external_id, dates in own_dates.items()
        for name, (day, calendar) in sorted(dates.items())
    ]
    table = cast(Table, CustomerDate.__table__)
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.customer_id, table.c.name],
        set_={name: stmt.excluded[name] for name in ("date", "calendar", "updated_at")},
        where=or_(
            table.c.date.is_distinct_from(stmt.excluded.date),
            table.c.calendar.is_distinct_from(stmt.excluded.calendar),
        ),
    )
    session.execute(stmt, rows)


def load_orders(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    defaults: CustomerDefaults,
    *,
    now: datetime,
    local_zone: str | None = None,
    segment_map: SegmentMap | None = None,
) -> LoadResult:
    """Upsert order records by external id and refresh their customers' statistics.

    With `segment_map`, value segments are rescored too (shop-wide: see
    `campaigner.segments.scoring`) as a request needs it, never waiting for a pass
    (`campaigner.segments.daily.rank_for_request`); a caller loading many batches leaves it
    out and rescores once at the end.

    `customer_id` is the customer's external id; an order for an unknown customer is an error.
    A record may carry its buyer inline as `customer` (customer fields): that customer is
    upserted first; a buyer without an id (a guest checkout) is known by phone, and belongs
    to the registered customer with that phone when there is one. A record with `items`
    replaces the order's line items. An order older than the stored one (its
    `shop_modified_at`) is stale: nothing of it is written, items included. A paid record
    whose paid_at is only its creation time (`PAID_AT_IS_CREATION`) is paid when it was
    first seen paid (`_first_seen_paid`).
    """
    result = LoadResult()
    buyers = _load_buyers(session, rows, defaults, now=now, result=result)
    valid: list[tuple[int, dict[str, Any], list[dict[str, Any]] | None]] = []
    creation_times: set[str] = set()
    for index, raw in enumerate(rows):
        if index in buyers.failed:
            continue
        record = {k: v for k, v in raw.items() if k not in ("customer", "items")}
        if index in buyers.ids:
            record["customer_id"] = buyers.ids[index]
        try:
            values = order_row(record, defaults, local_zone=local_zone)
            given = raw.get("items")
            items = None if given is None else item_rows(given, values["currency"])
        except RowError as exc:
            result.errors.append(RecordError(index, str(exc), exc.field))
            continue
        for name, reason in fit_order(values, items):
            result.warnings.append(RecordWarning(index, reason, name))
        if raw.get(PAID_AT_IS_CREATION) and values["status"] == "paid":
            creation_times.add(values["external_id"])
        valid.append((index, values, items))
    wanted = {values["customer_id"] for _, values, _ in valid}
    known: dict[str, int] = {
        external_id: customer_id
        for external_id, customer_id in session.execute(
            select(Customer.external_id, Customer.id).where(Customer.external_id.in_(wanted))
        )
    }
    good = []
    items_by_order: dict[str, list[dict[str, Any]]] = {}
    for index, values, items in valid:
        if values["customer_id"] not in known:
            reason = f"unknown customer {values['customer_id']!r}"
            result.errors.append(RecordError(index, reason, "customer_id"))
            continue
        good.append({**values, "customer_id": known[values["customer_id"]]})
        if items is not None:
            items_by_order[values["external_id"]] = items
    result.errors.sort(key=lambda error: error.index)
    result.warnings.sort(key=lambda warning: warning.index)
    _first_seen_paid(session, [row for row in good if row["external_id"] in creation_times], now)
    changed, stale = _write(session, cast(Table, Order.__table__), good, now, result)
    if changed:
        customers = {row["customer_id"] for row in good}
        # A request's inputs are refreshed with its ranking, only if that need not wait.
        inputs_currency = None if segment_map is not None else defaults.currency
        refresh_customer_stats(session, customers, main_currency=inputs_currency)
        _apply_codes(session, [row for row in good if row["external_id"] not in stale])
        if segment_map is not None:
            rank_for_request(session, customers, segment_map, now, defaults.currency)
    items_by_order = {key: items for key, items in items_by_order.items() if key not in stale}
    if items_by_order:
        _replace_items(session, items_by_order)
    return result


def _first_seen_paid(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """Paid orders whose shop sent no payment time (their paid_at the creation time) are
    paid when Campaigner first saw them paid. One stored as not paid yet was paid now: a
    pay-later order (bank transfer, cash on delivery) paid days after it was placed, whose
    creation time would hide the payment from the thank-you (past its lateness) and its new
    customer's arrival from the segments (docs/segments.md). One stored paid keeps the time
    it was given then; one never seen before keeps its creation time, as a shop's history
    does (and one stored cancelled or refunded, which was paid before)."""
    if not rows:
        return
    stored = {
        external_id: (status, paid_at)
        for external_id, status, paid_at in session.execute(
            select(Order.external_id, Order.status, Order.paid_at).where(
                Order.external_id.in_([row["external_id"] for row in rows])
            )
        )
    }
    for row in rows:
        status, paid_at = stored.get(row["external_id"], (None, None))
        if status in NOT_PAID_YET:
            row["paid_at"] = now
        elif status == "paid" and paid_at is not None:
            row["paid_at"] = paid_at


def load_items(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    defaults: CustomerDefaults,
    *,
    now: datetime,
) -> LoadResult:
    """Line item records (item fields and `order_id`, the order's external id) of orders
    already loaded. The rows of one order are all its items: they replace what it had, in
    the order given. An order with a bad line keeps its items and each of its rows is
    rejected (the bad one with its reason), so an order is never left with part of them. A
    name too long for its column is shortened, a product id or SKU left out, with a warning
    (`widths`). `defaults` and `now` are unused: the signature is the other loaders'."""
    result = LoadResult()
    groups: dict[str, list[int]] = {}
    for index, raw in enumerate(rows):
        order = as_text(raw.get("order_id")).strip()
        if not order:
            result.errors.append(RecordError(index, "missing order id", "order_id"))
        else:
            groups.setdefault(order, []).append(index)
    # Each order's currency, which its items' amounts are written in.
    known: dict[str, str] = {
        external_id: currency
        for external_id, currency in session.execute(
            select(Order.external_id, Order.currency).where(Order.external_id.in_(list(groups)))
        )
    }
    items_by_order: dict[str, list[dict[str, Any]]] = {}
    for order, indexes in groups.items():
        if order not in known:
            for index in indexes:
                result.errors.append(RecordError(index, f"unknown order {order!r}", "order_id"))
            continue
        bad = _bad_lines(rows, indexes, known[order])
        if bad:
            for index in indexes:
                reason, field_name = bad.get(index) or (
                    f"order {order!r} has a rejected line; none of its lines were loaded",
                    "order_id",
                )
                result.errors.append(RecordError(index, reason, field_name))
            continue
        items = item_rows(
            [{k: v for k, v in rows[i].items() if k != "order_id"} for i in indexes], known[order]
        )
        for line_no, (index, item) in enumerate(zip(indexes, items, strict=True), start=1):
            for name, reason in fit_item(item, line_no):
                result.warnings.append(RecordWarning(index, reason, name))
        items_by_order[order] = items
    result.errors.sort(key=lambda error: error.index)
    result.warnings.sort(key=lambda warning: warning.index)
    changed = _replace_items(session, items_by_order) if items_by_order else {}
    for order, items in items_by_order.items():
        outcome = changed.get(order)
        if outcome == "inserted":
            result.inserted += len(items)
        elif outcome == "updated":
            result.updated += len(items)
        else:
            result.unchanged += len(items)
    return result


def _bad_lines(
    rows: Sequence[Mapping[str, Any]], indexes: list[int], currency: str
) -> dict[int, tuple[str, str]]:
    """Row index -> (reason, field) for each line of an order that is not a valid item."""
    bad = {}
    for index in indexes:
        try:
            item_rows([{k: v for k, v in rows[index].items() if k != "order_id"}], currency)
        except RowError as exc:
            field_name = (exc.field or "").removeprefix("items.0.")
            bad[index] = (str(exc).removeprefix("item 1: "), field_name)
    return bad


@dataclass
class _Buyers:
    ids: dict[int, str] = field(default_factory=dict)  # record index -> customer external id
    failed: set[int] = field(default_factory=set)


def _load_buyers(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    defaults: CustomerDefaults,
    *,
    now: datetime,
    result: LoadResult,
) -> _Buyers:
    """Upsert the customers given inline on orders; guests are known by their phone."""
    buyers = _Buyers()
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    for index, raw in enumerate(rows):
        inline = raw.get("customer")
        if not isinstance(inline, Mapping):
            continue
        record = dict(inline)
        if not as_text(record.get("external_id")).strip():
            phone = as_text(record.get("phone")).strip()
            try:
                normalised = normalize_phone(phone, defaults.region) if phone else ""
            except InvalidPhone as exc:
                result.errors.append(RecordError(index, f"guest buyer: {exc}", "customer.phone"))
                buyers.failed.add(index)
                continue
            if not normalised:
                reason = "guest order without the buyer's phone"
                result.errors.append(RecordError(index, reason, "customer.phone"))
                buyers.failed.add(index)
                continue
            record["external_id"] = guest_id(normalised)
        records.append(record)
        positions.append(index)
    if not records:
        return buyers
    registered = registered_owners(
        session, [r["external_id"] for r in records if is_guest(r["external_id"])]
    )
    to_write, write_positions = [], []
    for index, record in zip(positions, records, strict=True):
        owner = registered.get(record["external_id"])
        buyers.ids[index] = owner or record["external_id"]
        if owner is None:
            to_write.append(record)
            write_positions.append(index)
    loaded = load_customers(session, to_write, defaults, now=now)
    for error in loaded.errors:
        index = write_positions[error.index]
        result.errors.append(RecordError(index, error.reason, f"customer.{error.field}"))
        buyers.failed.add(index)
        buyers.ids.pop(index, None)
    for warning in loaded.warnings:
        index = write_positions[warning.index]
        result.warnings.append(RecordWarning(index, warning.reason, f"customer.{warning.field}"))
    return buyers


ITEM_COLUMNS = ("line_no", "product_id", "sku", "name", "categories", "quantity")
ITEM_AMOUNTS = ("unit_price", "line_total")


def _item_key(item: Mapping[Any, Any]) -> tuple[Any, ...]:
    amounts = tuple(None if item[k] is None else Decimal(item[k]) for k in ITEM_AMOUNTS)
    return tuple(item[k] for k in ITEM_COLUMNS) + amounts


def _replace_items(
    session: Session, items_by_order: dict[str, list[dict[str, Any]]]
) -> dict[str, str]:
    """Each order's items given take the place of the ones it had; an order whose items are
    the same as stored is left alone, so loading the same data again writes nothing.
    Returns "inserted" (it had none) or "updated" per order external id written. An item that
    names no categories (a webhook's) keeps those last stored for its product (by sync); its
    `order_item_categories` rows are built from that final text."""
    known = _known_categories(
        session,
        {
            item["product_id"]
            for items in items_by_order.values()
            for item in items
            if item["categories"] is None and item["product_id"]
        },
    )
    for items in items_by_order.values():
        for item in items:
            if item["categories"] is None:
                item["categories"] = known.get(item["product_id"], "")
    ids: dict[str, int] = {
        key: value
        for key, value in session.execute(
            select(Order.external_id, Order.id).where(Order.external_id.in_(list(items_by_order)))
        )
    }
    stored: dict[int, list[tuple[Any, ...]]] = {}
    for row in session.execute(
        select(OrderItem.order_id, *(getattr(OrderItem, k) for k in ITEM_COLUMNS + ITEM_AMOUNTS))
        .where(OrderItem.order_id.in_(list(ids.values())))
        .order_by(OrderItem.order_id, OrderItem.line_no)
    ).mappings():
        stored.setdefault(row["order_id"], []).append(_item_key(row))
    ids = {
        external_id: order_id
        for external_id, order_id in ids.items()
        if stored.get(order_id, []) != [_item_key(i) for i in items_by_order[external_id]]
    }
    items_by_order = {external_id: items_by_order[external_id] for external_id in ids}
    order_ids = list(ids.values())
    if not order_ids:
        return {}
    written = {
        external_id: "updated" if order_id in stored else "inserted"
        for external_id, order_id in ids.items()
    }
    old_items = select(OrderItem.id).where(OrderItem.order_id.in_(order_ids))
    session.execute(delete(OrderItemCategory).where(OrderItemCategory.item_id.in_(old_items)))
    session.execute(delete(OrderItem).where(OrderItem.order_id.in_(order_ids)))
    rows = [
        {**item, "order_id": ids[external_id]}
        for external_id, items in items_by_order.items()
        for item in items
    ]
    if not rows:
        return written
    session.execute(insert(OrderItem), rows)
    categorised = session.execute(
        select(OrderItem.id, OrderItem.categories).where(
            OrderItem.order_id.in_(order_ids), OrderItem.categories != ""
        )
    )
    category_rows = [
        {"item_id": item_id, "category": category}
        for item_id, text in categorised
        for category in category_names(text)
    ]
    if category_rows:
        session.execute(insert(OrderItemCategory), category_rows)
    return written


def _known_categories(session: Session, products: set[str]) -> dict[str, str]:
    if not products:
        return {}
    found = session.execute(
        select(OrderItem.product_id, OrderItem.categories)
        .where(OrderItem.product_id.in_(products), OrderItem.categories != "")
        .order_by(OrderItem.id)
    )
    return {product or "": categories for product, categories in found}  # the latest wins


def _apply_codes(session: Session, rows: list[dict[str, Any]]) -> None:
    """Coupon codes on orders redeem coupons; a first order's referral code names a referrer."""
    with_codes = [r["external_id"] for r in rows if r["coupon_code"] or r["referral_code"]]
    if not with_codes:
        return
    ids = list(session.scalars(select(Order.id).where(Order.external_id.in_(with_codes))))
    redeem_coupons(session, ids)
    attribute_referrals(session, ids)


def _write(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    now: datetime,
    result: LoadResult,
    *,
    keep: Sequence[str] = (),
) -> tuple[int, set[str]]:
    """Upsert `rows`, count them into `result`; returns how many were inserted or changed,
    and the external ids of the stale rows (older than the stored `shop_modified_at`).

    Columns in `keep` are written when a row is inserted, never over an existing value.
    """
    if not rows:
        return 0, set()
    latest = {row["external_id"]: row for row in rows}  # the last record wins within a batch
    distinct = list(latest.values())
    for row in distinct:
        row["created_at"] = now
        row["updated_at"] = now
    fixed = ("external_id", "created_at", "updated_at", *keep)
    columns = [name for name in distinct[0] if name not in fixed]
    written = upsert(
        session,
        table,
        distinct,
        "external_id",
        columns,
        also_set=["updated_at"],
        newer="shop_modified_at",
    )
    stale = _stale(session, table, distinct)
    result.inserted += written.inserted
    result.updated += written.updated
    result.stale += len(stale)
    result.unchanged += len(rows) - written.inserted - written.updated - len(stale)
    return written.inserted + written.updated, stale


def _stale(session: Session, table: Table, rows: list[dict[str, Any]]) -> set[str]:
    """The rows the upsert left alone because the stored row is newer. Read after the
    upsert, which locked each row it met, so a concurrent writer cannot change the answer."""
    given = {row["external_id"]: row["shop_modified_at"] for row in rows if row["shop_modified_at"]}
    if not given:
        return set()
    stored = session.execute(
        select(table.c.external_id, table.c.shop_modified_at).where(
            table.c.external_id.in_(list(given))
        )
    )
    return {
        external_id
        for external_id, modified in stored
        if modified is not None and modified > given[external_id]
    }


# Customers refreshed per pair of statements (each id is a bound parameter, twice).
STATS_CHUNK = 1000
STAT_COLUMNS = ("orders_count", "total_spent", "first_order_at", "last_order_at", "last_order_id")


def refresh_customer_stats(
    session: Session, customer_ids: Iterable[int], *, main_currency: str | None = None
) -> None:
    """Recompute order statistics and order sequence numbers for these customers, and with
    `main_currency` their value segment inputs (`campaigner.segments.refresh_inputs`).

    Statistics cover paid orders with a payment time (revenue net of refunds); `sequence`
    numbers them 1, 2, … per customer by (paid_at, id) and is NULL on every other order. Each
    chunk is two statements whatever the number of orders (window functions, UPDATE … FROM),
    and only rows whose values change are written, so their `updated_at` says when the
    figures last moved.
    """
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), STATS_CHUNK):
        chunk = ids[start : start + STATS_CHUNK]
        session.execute(_sequence_update(chunk))
        session.execute(_statistics_update(chunk))
    if main_currency is not None:
        refresh_inputs(session, ids, main_currency)


def _paid(orders: FromClause) -> ColumnElement[bool]:
    return and_(orders.c.status == "paid", orders.c.paid_at.is_not(None))


def _sequence_update(chunk: list[int]) -> Update:
    orders = cast(Table, Order.__table__)
    o = orders.alias("o")
    paid = _paid(o)
    position = func.row_number().over(
        partition_by=(o.c.customer_id, paid), order_by=(o.c.paid_at, o.c.id)
    )
    numbered = (
        select(o.c.id, case((paid, position)).label("sequence"))
        .where(o.c.customer_id.in_(chunk))
        .subquery("numbered")
    )
    return (
        update(orders)
        .where(
            orders.c.id == numbered.c.id,
            orders.c.sequence.is_distinct_from(numbered.c.sequence),
        )
        .values(sequence=numbered.c.sequence)
    )


def _statistics_update(chunk: list[int]) -> Update:
    customers = cast(Table, Customer.__table__)
    o = cast(Table, Order.__table__).alias("o")
    customer = o.c.customer_id
    paid = (
        select(
            o.c.customer_id,
            o.c.id.label("last_order_id"),
            func.row_number()
            .over(partition_by=customer, order_by=(o.c.paid_at.desc(), o.c.id.desc()))
            .label("recency"),
            func.count().over(partition_by=customer).label("orders_count"),
            func.sum(o.c.total - o.c.refunded).over(partition_by=customer).label("total_spent"),
            func.min(o.c.paid_at).over(partition_by=customer).label("first_order_at"),
            func.max(o.c.paid_at).over(partition_by=customer).label("last_order_at"),
        )
        .where(o.c.customer_id.in_(chunk), _paid(o))
        .subquery("paid")
    )
    c = customers.alias("c")
    latest = and_(paid.c.customer_id == c.c.id, paid.c.recency == 1)
    stats = (
        select(
            c.c.id,
            func.coalesce(paid.c.orders_count, 0).label("orders_count"),
            func.coalesce(paid.c.total_spent, 0).label("total_spent"),
            paid.c.first_order_at,
            paid.c.last_order_at,
            paid.c.last_order_id,
        )
        .select_from(c.outerjoin(paid, latest))
        .where(c.c.id.in_(chunk))
        .subquery("stats")
    )
    return (
        update(customers)
        .where(
            customers.c.id == stats.c.id,
            or_(*(customers.c[name].is_distinct_from(stats.c[name]) for name in STAT_COLUMNS)),
        )
        .values({name: stats.c[name] for name in STAT_COLUMNS})
    )
