"""Customers in three time zones and announcement rules, for the announcement and draw tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import CaptureGateway
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.db.models import Customer, Message
from campaigner.rules.models import Rule

ZONES = ("Asia/Tehran", "Europe/Berlin", "America/New_York")


def rule(**fields: Any) -> Rule:
    fields.setdefault("trigger", "announcement")
    fields.setdefault("name", "yalda_sale")
    fields.setdefault("template", "sale.j2")
    return TypeAdapter(Rule).validate_python(fields)


def add_customers(
    sessions: sessionmaker[Session], count: int, zones: tuple[str, ...] = ZONES, **fields: Any
) -> list[int]:
    """`count` consenting customers c0…, spread round-robin over `zones`; their ids."""
    with sessions.begin() as session:
        customers = [
            Customer(
                external_id=f"c{n}",
                first_name=f"C{n}",
                phone=f"+98912{n:07d}",
                timezone=zones[n % len(zones)],
                locale="fa",
                marketing_consent=True,
                **fields,
            )
            for n in range(count)
        ]
        session.add_all(customers)
        session.flush()
        return [customer.id for customer in customers]


def ledger(sessions: sessionmaker[Session], rule_name: str = "yalda_sale") -> list[Message]:
    with sessions() as session:
        return list(
            session.scalars(select(Message).where(Message.rule == rule_name).order_by(Message.id))
        )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


SALE_TEMPLATE = "{{ first_name }} جان، حراج یلدا شروع شد"


def write_announcement(settings: Settings, text: str, name: str = "yalda_sale") -> Path:
    """The rule file `name`.toml and its template sale.j2, in the project's folders."""
    settings.paths.rules.mkdir(parents=True, exist_ok=True)
    settings.paths.templates.mkdir(parents=True, exist_ok=True)
    (settings.paths.templates / "sale.j2").write_text(SALE_TEMPLATE, encoding="utf-8")
    path = settings.paths.rules / f"{name}.toml"
    path.write_text(f'trigger = "announcement"\ntemplate = "sale.j2"\n{text}', encoding="utf-8")
    return path


def sent_to(gateway: CaptureGateway) -> list[str]:
    return [message.phone for message in gateway.sent]
