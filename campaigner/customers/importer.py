"""CSV import of customers and orders: streamed, batched, idempotent, with a reject file.

A bad row never stops an import: it goes to the reject file with its line number and reason,
and every good row still loads. Re-running the same file writes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.calendars import CALENDARS, jalali_month_day, month_day, parse_date
from campaigner.config import CustomerDefaults, check_timezone
from campaigner.customers.phones import InvalidPhone, normalize_phone, to_ascii_digits
from campaigner.db.models import Customer, Order
from campaigner.db.upsert import upsert
from campaigner.errors import CampaignerError
from campaigner.messages.coupons import redeem_coupons
from campaigner.messages.referrals import attribute_referrals

BATCH_SIZE = 1000

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
)
# Header spellings accepted without a mapping.
ALIASES = {
    "id": "external_id",
    "customer": "customer_id",
    "customer_external_id": "customer_id",
    "mobile": "phone",
    "consent": "marketing_consent",
    "amount": "total",
    "coupon": "coupon_code",
}
TRUE = {"1", "true", "yes", "y", "t", "on", "بله", "آری", "x"}
FALSE = {"0", "false", "no", "n", "f", "off", "خیر", "نه", ""}
PAID = {"paid", "completed", "complete", "wc-completed", "processing", "wc-processing", "success"}
STATUSES = {"paid", "pending", "cancelled", "refunded", "failed"}


class RowError(ValueError):
    """A row that cannot be imported; the message is the reason written to the reject file."""


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reject_file: Path | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        text = (
            f"{self.rows} rows: {self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )
        if self.rejected and self.reject_file:
            text += f" (see {self.reject_file})"
        return text


def parse_bool(value: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowError(f"not a yes/no value: {value!r}")


def parse_tags(value: str) -> str:
    parts = [p.strip().lower() for p in value.replace(";", ",").replace("|", ",").split(",")]
    tags = sorted({p for p in parts if p})
    return "," + ",".join(tags) + "," if tags else ""


def parse_amount(value: str) -> Decimal:
    text = to_ascii_digits(value).replace(",", "").replace("٬", "").strip() or "0"
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RowError(f"bad amount {value!r}") from None
    if amount < 0 or not amount.is_finite():
        raise RowError(f"bad amount {value!r}")
    return amount


def parse_datetime(value: str, zone: ZoneInfo) -> datetime:
    """ISO 8601; a time without an offset is local time in the shop's time zone."""
    text = to_ascii_digits(value).strip().replace("/", "-")
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(
            f"bad date/time {value!r}: expected ISO 8601, e.g. 2026-05-01 14:30"
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=zone)
    return instant.astimezone(UTC)


def normalize_status(value: str) -> str:
    text = value.strip().lower() or "paid"
    if text in PAID:
        return "paid"
    if text.startswith("wc-"):
        text = text[3:]
    if text == "canceled":
        text = "cancelled"
    if text not in STATUSES:
        raise RowError(f"unknown order status {value!r}")
    return text


def customer_row(raw: Mapping[str, str], defaults: CustomerDefaults) -> dict[str, Any]:
    """Validate and normalise one customer record into column values."""
    external_id = (raw.get("external_id") or "").strip()
    if not external_id:
        raise RowError("missing customer id")
    phone_text = raw.get("phone") or ""
    try:
        phone = normalize_phone(phone_text, defaults.region) if phone_text.strip() else None
    except InvalidPhone as exc:
        raise RowError(str(exc)) from None
    birthday = None
    if (raw.get("birthday") or "").strip():
        try:
            birthday = parse_date(raw["birthday"])
        except ValueError as exc:
            raise RowError(str(exc)) from None
    calendar = (raw.get("calendar") or "").strip().lower()
    if not calendar:
        calendar = (
            "jalali"
            if birthday and raw["birthday"].strip()[:2] in ("13", "14")
            else ("jalali" if defaults.locale == "fa" else "gregorian")
        )
    if calendar not in CALENDARS:
        raise RowError(f"unknown calendar {calendar!r} (gregorian or jalali)")
    timezone = (raw.get("timezone") or "").strip() or defaults.timezone
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise RowError(str(exc)) from None
    return {
        "external_id": external_id,
        "first_name": " ".join((raw.get("first_name") or "").split()),
        "last_name": " ".join((raw.get("last_name") or "").split()),
        "phone": phone,
        "birthday": birthday,
        "birth_md": month_day(birthday) if birthday else None,
        "birth_jalali_md": jalali_month_day(birthday) if birthday else None,
        "calendar": calendar,
        "timezone": timezone,
        "locale": (raw.get("locale") or "").strip().lower() or defaults.locale,
        "tags": parse_tags(raw.get("tags") or ""),
        "marketing_consent": parse_bool(raw.get("marketing_consent") or ""),
        "city": (raw.get("city") or "").strip(),
    }


def order_row(raw: Mapping[str, str], defaults: CustomerDefaults) -> dict[str, Any]:
    """Validate one order record; `customer_id` is still the customer's external id."""
    external_id = (raw.get("external_id") or "").strip()
    if not external_id:
        raise RowError("missing order id")
    customer = (raw.get("customer_id") or "").strip()
    if not customer:
        raise RowError("missing customer id")
    status = normalize_status(raw.get("status") or "")
    paid_text = (raw.get("paid_at") or "").strip()
    paid_at = parse_datetime(paid_text, ZoneInfo(defaults.timezone)) if paid_text else None
    if status == "paid" and paid_at is None:
        raise RowError("paid order without paid_at")
    items = (raw.get("items_count") or "").strip()
    try:
        items_count = int(to_ascii_digits(items)) if items else None
    except ValueError:
        raise RowError(f"bad items_count {items!r}") from None
    return {
        "external_id": external_id,
        "customer_id": customer,
        "total": parse_amount(raw.get("total") or "0"),
        "currency": (raw.get("currency") or "").strip().upper() or defaults.currency,
        "status": status,
        "paid_at": paid_at,
        "coupon_code": (raw.get("coupon_code") or "").strip().upper() or None,
        "referral_code": (raw.get("referral_code") or "").strip().upper() or None,
        "items_count": items_count,
    }


def refresh_customer_stats(session: Session, customer_ids: Iterable[int]) -> None:
    """Recompute order statistics and order sequence numbers for these customers."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    orders = cast(Table, Order.__table__)
    o2 = orders.alias("o2")
    paid = and_(o2.c.customer_id == Customer.id, o2.c.status == "paid", o2.c.paid_at.is_not(None))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        session.execute(
            update(Customer)
            .where(Customer.id.in_(chunk))
            .values(
                orders_count=select(func.count()).where(paid).scalar_subquery(),
                total_spent=select(func.coalesce(func.sum(o2.c.total), 0))
                .where(paid)
                .scalar_subquery(),
                first_order_at=select(func.min(o2.c.paid_at)).where(paid).scalar_subquery(),
                last_order_at=select(func.max(o2.c.paid_at)).where(paid).scalar_subquery(),
                last_order_id=select(o2.c.id)
                .where(paid)
                .order_by(o2.c.paid_at.desc(), o2.c.id.desc())
                .limit(1)
                .scalar_subquery(),
            )
            .execution_options(synchronize_session=False)
        )
        earlier = and_(
            o2.c.customer_id == orders.c.customer_id,
            o2.c.status == "paid",
            o2.c.paid_at.is_not(None),
            (o2.c.paid_at < orders.c.paid_at)
            | and_(o2.c.paid_at == orders.c.paid_at, o2.c.id <= orders.c.id),
        )
        is_paid = and_(orders.c.status == "paid", orders.c.paid_at.is_not(None))
        session.execute(
            update(orders)
            .where(orders.c.customer_id.in_(chunk), is_paid)
            .values(sequence=select(func.count()).where(earlier).scalar_subquery())
        )
        session.execute(
            update(orders).where(orders.c.customer_id.in_(chunk), ~is_paid).values(sequence=None)
        )


class _Rejects:
    """Writes rejected rows lazily: no reject file appears when nothing was rejected."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self._file: io.TextIOWrapper | None = None
        self._writer: Any = None

    def add(self, line: int, reason: str, raw: Mapping[str, Any]) -> None:
        if self._writer is None:
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason", *self.header])
        self._writer.writerow([line, reason, *(raw.get(name, "") for name in self.header)])

    def close(self) -> None:
        if self._file:
            self._file.close()


def _read(
    path: Path, mapping: Mapping[str, str]
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.DictReader(handle)
    header = list(reader.fieldnames or [])
    rename = _renames(header, mapping)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            for record in reader:
                yield (
                    reader.line_num,
                    {
                        rename[k]: (v or "")
                        for k, v in record.items()
                        if k is not None and k in rename
                    },
                )

    return header, rows()


def import_csv(
    sessions: sessionmaker[Session],
    kind: str,
    path: Path,
    defaults: CustomerDefaults,
    *,
    mapping: Mapping[str, str] | None = None,
    reject_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `kind` ('customers' or 'orders') from a CSV file; see the module docstring.

    `mapping` maps the file's header names to Campaigner field names. `progress` is called
    with the number of bytes read so far, for a progress bar.
    """
    if kind not in ("customers", "orders"):
        raise ValueError(kind)
    if not path.exists():
        raise CampaignerError(f"{path}: file not found")
    fields = CUSTOMER_FIELDS if kind == "customers" else ORDER_FIELDS
    header, records = _read(path, mapping or {})
    renames = _renames(header, mapping)
    if "external_id" not in renames.values():
        raise CampaignerError(
            f"{path}: no id column (expected 'external_id' or 'id', or map one with --map)"
        )
    unknown_targets = sorted(set((mapping or {}).values()) - set(fields))
    if unknown_targets:
        raise CampaignerError(f"--map names unknown field(s): {', '.join(unknown_targets)}")
    reject_file = reject_path or path.with_suffix(".rejects.csv")
    report = ImportReport(reject_file=reject_file)
    rejects = _Rejects(reject_file, header)
    size_hint = path.stat().st_size
    bytes_seen = 0
    batch: list[tuple[int, dict[str, str], dict[str, Any]]] = []

    def reject(line: int, reason: str, raw: Mapping[str, str]) -> None:
        report.rejected += 1
        key = reason.split(":")[0]
        report.reasons[key] = report.reasons.get(key, 0) + 1
        inverse = {v: k for k, v in renames.items()}
        rejects.add(line, reason, {inverse.get(k, k): v for k, v in raw.items()})

    def flush() -> None:
        if not batch:
            return
        with sessions.begin() as session:
            if kind == "customers":
                _write_customers(session, batch, report)
            else:
                _write_orders(session, batch, report, reject)
        batch.clear()

    try:
        for line, raw in records:
            report.rows += 1
            bytes_seen += sum(len(v) + 1 for v in raw.values())
            try:
                values = (customer_row if kind == "customers" else order_row)(raw, defaults)
            except RowError as exc:
                reject(line, str(exc), raw)
                continue
            batch.append((line, raw, values))
            if len(batch) >= BATCH_SIZE:
                flush()
                if progress:
                    progress(min(bytes_seen, size_hint))
        flush()
        if progress:
            progress(size_hint)
    finally:
        rejects.close()
    if not report.rejected:
        report.reject_file = None
    return report


def _renames(header: list[str], mapping: Mapping[str, str] | None) -> dict[str, str]:
    return {
        column: (mapping or {}).get(column)
        or ALIASES.get(column.strip().lower())
        or column.strip().lower()
        for column in header
    }


def _dedupe(batch: list[tuple[int, dict[str, str], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The last row wins when one file names the same id twice."""
    latest: dict[str, dict[str, Any]] = {}
    for _, _, values in batch:
        latest[values["external_id"]] = values
    return list(latest.values())


def _write_customers(
    session: Session, batch: list[tuple[int, dict[str, str], dict[str, Any]]], report: ImportReport
) -> None:
    rows = _dedupe(batch)
    table = cast(Table, Customer.__table__)
    existing = set(
        session.scalars(
            select(Customer.external_id).where(
                Customer.external_id.in_([r["external_id"] for r in rows])
            )
        )
    )
    now = datetime.now(UTC)
    for row in rows:
        row["created_at"] = now
        row["updated_at"] = now
    columns = [name for name in rows[0] if name not in ("external_id", "created_at", "updated_at")]
    changed = upsert(session, table, rows, "external_id", columns, also_set=["updated_at"])
    _count(
        report,
        len(batch),
        len(rows),
        len(rows) - len(existing & {r["external_id"] for r in rows}),
        changed,
    )


def _write_orders(
    session: Session,
    batch: list[tuple[int, dict[str, str], dict[str, Any]]],
    report: ImportReport,
    reject: Callable[[int, str, Mapping[str, str]], None],
) -> None:
    customer_ids = {values["customer_id"] for _, _, values in batch}
    known = {
        external_id: customer_id
        for external_id, customer_id in session.execute(
            select(Customer.external_id, Customer.id).where(Customer.external_id.in_(customer_ids))
        )
    }
    good = []
    for line, raw, values in batch:
        if values["customer_id"] not in known:
            reject(line, f"unknown customer {values['customer_id']!r}", raw)
            continue
        good.append((line, raw, {**values, "customer_id": known[values["customer_id"]]}))
    if not good:
        return
    rows = _dedupe(good)
    existing = set(
        session.scalars(
            select(Order.external_id).where(Order.external_id.in_([r["external_id"] for r in rows]))
        )
    )
    now = datetime.now(UTC)
    for row in rows:
        row["created_at"] = now
        row["updated_at"] = now
    columns = [name for name in rows[0] if name not in ("external_id", "created_at", "updated_at")]
    changed = upsert(
        session, cast(Table, Order.__table__), rows, "external_id", columns, also_set=["updated_at"]
    )
    new = len(rows) - len(existing & {r["external_id"] for r in rows})
    _count(report, len(good), len(rows), new, changed)
    if changed:
        refresh_customer_stats(session, {row["customer_id"] for row in rows})
        _apply_codes(session, rows)


def _apply_codes(session: Session, rows: list[dict[str, Any]]) -> None:
    """Coupon codes on orders redeem coupons; a first order's referral code names a referrer."""
    with_codes = [r["external_id"] for r in rows if r["coupon_code"] or r["referral_code"]]
    if not with_codes:
        return
    ids = list(session.scalars(select(Order.id).where(Order.external_id.in_(with_codes))))
    redeem_coupons(session, ids)
    attribute_referrals(session, ids)


def _count(report: ImportReport, given: int, distinct: int, new: int, changed: int) -> None:
    report.inserted += new
    report.updated += max(changed - new, 0)
    report.unchanged += given - new - max(changed - new, 0)
