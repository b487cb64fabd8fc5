"""A synthetic shop for the demo and for tests: Persian and English customers, two years of orders.

The data goes through the same CSV import as real data, so the demo exercises the real path.
It is laid out around the clock's "now" so that every sample rule has someone due today.
"""

from __future__ import annotations

import csv
import random
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import jdatetime
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.config import CustomerDefaults
from campaigner.customers.importer import CUSTOMER_FIELDS, ORDER_FIELDS, import_csv
from campaigner.customers.phones import normalize_phone
from campaigner.db.models import Customer
from campaigner.messages.filters import fa_digits
from campaigner.optouts import add_opt_outs

PERSIAN_FIRST = [
    "علی",
    "محمد",
    "محمد علی",
    "حسین",
    "رضا",
    "مهدی",
    "امیر حسین",
    "سارا",
    "مریم",
    "فاطمه",
    "زهرا",
    "نازنین",
    "نرگس",
    "پریسا",
    "کوروش",
    "آرش",
    "بهاره",
    "شیرین",
    "مهسا",
    "امید",
    "سید محمد",
    "فرزانه",
    "یاسمن",
    "داریوش",
    "لیلا",
]
PERSIAN_LAST = [
    "محمدی",
    "حسینی",
    "احمدی",
    "رضایی",
    "موسوی",
    "کریمی",
    "جعفری",
    "صادقی",
    "تهرانی",
    "شیرازی",
    "اصفهانی",
    "نوری",
    "کاظمی",
    "رحیمی",
    "قاسمی",
]
ENGLISH_FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Lucas",
    "Sophia",
    "Ethan",
    "Mia",
    "Mason",
    "Chloe",
    "Jack",
    "Zoe",
    "Owen",
    "Lily",
    "mary ann",
    "  james  ",
]
ENGLISH_LAST = [
    "Smith",
    "Brown",
    "Tremblay",
    "Martin",
    "Roy",
    "Wilson",
    "Taylor",
    "Lee",
    "Campbell",
]
IR_CITIES = ["Tehran", "Isfahan", "Shiraz", "Tabriz", "Mashhad", "Karaj"]
EN_PLACES = [
    ("Toronto", "America/Toronto"),
    ("Vancouver", "America/Vancouver"),
    ("London", "Europe/London"),
]
TAGS = ["vip", "newsletter", "wholesale", "instagram", "app"]
ORDER_STATUSES = ["paid"] * 17 + ["cancelled", "refunded", "pending"]


def _write(path: Path, fields: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def demo_rows(
    now: datetime, customers: int, seed: int
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
    """Customer rows, order rows and opted-out phones, as CSV-ready strings."""
    rng = random.Random(seed)
    today = now.date()
    customer_rows: list[dict[str, str]] = []
    order_rows: list[dict[str, str]] = []
    opted_out: list[str] = []
    order_number = 1000
    for index in range(1, customers + 1):
        persian = rng.random() < 0.7
        external_id = f"C{index:05d}"
        if persian:
            first = rng.choice(PERSIAN_FIRST) if rng.random() > 0.03 else ""
            last = rng.choice(PERSIAN_LAST)
            operator = rng.choice(["12", "13", "19", "35", "36", "01", "02"])
            national = f"9{operator}{rng.randrange(10**7):07d}"
            style = rng.randrange(4)
            phone = [
                "0" + national,
                "+98" + national,
                "0098" + national,
                fa_digits(0) + fa_digits(int(national)),
            ][style]
            city, zone, locale = rng.choice(IR_CITIES), "Asia/Tehran", "fa"
        else:
            first = rng.choice(ENGLISH_FIRST)
            last = rng.choice(ENGLISH_LAST)
            city, zone = rng.choice(EN_PLACES)
            phone = (
                f"+1416{rng.randrange(200, 999)}{rng.randrange(10**4):04d}"
                if zone != "Europe/London"
                else f"+447400{rng.randrange(10**6):06d}"
            )
            locale = "en"
        # A few birthdays fall today so that the birthday rule has work in the demo.
        if index % 97 == 0:
            # Yesterday, today or tomorrow in UTC, so "today" has birthdays in every time zone.
            near = today + timedelta(days=(index // 97) % 3 - 1)
            born = date(rng.randrange(1965, 2005), near.month, min(near.day, 28))
        else:
            born = date(rng.randrange(1965, 2005), 1, 1) + timedelta(days=rng.randrange(365))
        calendar = "jalali" if persian and rng.random() < 0.8 else "gregorian"
        if calendar == "jalali":
            j = jdatetime.date.fromgregorian(date=born)
            birthday = f"{j.year}/{j.month:02d}/{j.day:02d}"
        else:
            birthday = born.isoformat()
        consent = "yes" if rng.random() < 0.92 else "no"
        tags = ";".join(sorted(rng.sample(TAGS, rng.randrange(3))))
        customer_rows.append(
            {
                "external_id": external_id,
                "first_name": first,
                "last_name": last,
                "phone": phone,
                "birthday": birthday if rng.random() > 0.05 else "",
                "calendar": calendar,
                "timezone": zone,
                "locale": locale,
                "tags": tags,
                "marketing_consent": consent,
                "city": city,
            }
        )
        if rng.random() < 0.04:
            opted_out.append(phone)
        # Order history: most customers bought a few times over two years; some are recent.
        count = rng.choice([0, 1, 1, 2, 2, 3, 3, 4, 5, 7])
        span_days = 730
        moments = sorted(
            now - timedelta(minutes=rng.randrange(span_days * 24 * 60)) for _ in range(count)
        )
        if index % 41 == 0:
            moments.append(now - timedelta(hours=2, minutes=rng.randrange(600)))
        if index % 53 == 0 and count:
            moments = [now - timedelta(days=90 + rng.randrange(20), hours=rng.randrange(24))]
        for moment in moments:
            order_number += 1
            status = rng.choice(ORDER_STATUSES)
            total = rng.randrange(150, 9000) * 1000 if persian else rng.randrange(15, 400)
            order_rows.append(
                {
                    "external_id": f"O{order_number}",
                    "customer_id": external_id,
                    "total": str(total),
                    "currency": "IRT" if persian else "CAD",
                    "status": status,
                    "paid_at": moment.isoformat(timespec="seconds") if status != "pending" else "",
                    "coupon_code": "",
                    "referral_code": "",
                    "items_count": str(rng.randrange(1, 6)),
                }
            )
    return customer_rows, order_rows, opted_out


def generate_demo(
    sessions: sessionmaker[Session],
    defaults: CustomerDefaults,
    clock: Clock,
    *,
    customers: int = 3000,
    seed: int = 7,
) -> str:
    """Create the demo shop in the database; returns a one-line summary."""
    customer_rows, order_rows, opted_out = demo_rows(clock.now(), customers, seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder / "customers.csv", CUSTOMER_FIELDS, customer_rows)
        _write(folder / "orders.csv", ORDER_FIELDS, order_rows)
        imported = import_csv(sessions, "customers", folder / "customers.csv", defaults)
        orders = import_csv(sessions, "orders", folder / "orders.csv", defaults)
    with sessions.begin() as session:
        phones = set(session.scalars(select(Customer.phone).where(Customer.phone.is_not(None))))
        wanted = [
            phone for raw in opted_out if (phone := normalize_phone(raw, defaults.region)) in phones
        ]
        added = add_opt_outs(session, wanted, clock.now(), source="demo", reason="replied STOP")
        total = session.scalar(select(func.count()).select_from(Customer))
    return (
        f"demo shop: {total} customers ({imported.inserted} new), "
        f"{orders.inserted} orders, {added} opted out"
        + (
            f", {imported.rejected + orders.rejected} rows rejected"
            if imported.rejected + orders.rejected
            else ""
        )
    )
