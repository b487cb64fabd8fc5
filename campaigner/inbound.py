"""What comes back from phones: replies (opt-out and opt-in keywords) and delivery reports.

Both run in the caller's transaction (the caller commits) and are idempotent, because
providers resend webhooks and pollers see the same reply more than once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from campaigner.config import Settings
from campaigner.customers.phones import InvalidPhone, normalize_phone, to_ascii_digits
from campaigner.db.models import Customer, InboundMessage, Message, MessageStatus
from campaigner.db.upsert import insert_ignore
from campaigner.gateways.base import EARLIEST, LATEST, MAX_LEDGER_ID, DeliveryReport, InboundSms
from campaigner.optouts import add_opt_outs, remove_opt_out
from campaigner.reports.nps import record_nps_reply

log = logging.getLogger(__name__)

INBOUND = cast(Table, InboundMessage.__table__)

OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"
STORED = "stored"
NPS_SCORE = "nps_score"
DUPLICATE = "duplicate"
INVALID_PHONE = "invalid_phone"

_TOKENS = re.compile(r"\d+|[^\d\s]+")
_INVISIBLE = str.maketrans({"\u200c": " ", "\u200f": None, "\u200e": None, "\u200d": None})
_PUNCTUATION = ".,!?;:؛،؟«»\"'()"


REPORT_CHUNK = 500  # ledger ids per query when applying reports in bulk
PROVIDER_ID_CHARS = 128  # messages.provider_id and inbound_messages.provider_id


def _check_text(what: str, value: str | None) -> None:
    if value is None:
        return
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode") from None


def _check_provider_id(value: str | None) -> None:
    _check_text("provider id", value)
    if value is not None and len(value) > PROVIDER_ID_CHARS:
        raise ValueError(f"provider id longer than {PROVIDER_ID_CHARS} characters")


def check_inbound(sms: InboundSms) -> None:
    """ValueError for what the database could not store (a NUL, a lone surrogate, an id
    too long) or what no provider sends (a time outside this century)."""
    _check_text("phone", sms.phone)
    _check_text("text", sms.text)
    _check_provider_id(sms.provider_id)
    if sms.received_at is not None and not EARLIEST <= sms.received_at < LATEST:
        raise ValueError("received time outside 2000-2099")


def check_report(report: DeliveryReport) -> None:
    """ValueError for a report the ledger cannot hold: see `check_inbound`."""
    if report.message_id is not None and not 0 < report.message_id <= MAX_LEDGER_ID:
        raise ValueError("message id out of range")
    _check_provider_id(report.provider_id)
    _check_text("code", report.code)
    _check_text("error", report.error)


def _tokens(text: str) -> list[str]:
    """'  لغو۱۱ ' -> ['لغو', '11']: digits made ASCII, letters split from digits, case folded."""
    clean = to_ascii_digits(text).translate(_INVISIBLE).casefold()
    return [
        token.strip(_PUNCTUATION) for token in _TOKENS.findall(clean) if token.strip(_PUNCTUATION)
    ]


def is_keyword_reply(text: str, keywords: list[str]) -> bool:
    """True when the reply is made of keywords only: 'STOP', 'لغو', '۱۱', 'لغو 11', 'stop!'."""
    words = {token for keyword in keywords for token in _tokens(keyword)}
    tokens = _tokens(text)
    return bool(tokens) and all(token in words for token in tokens)


def handle_inbound(
    session: Session,
    sms: InboundSms,
    *,
    gateway: str,
    settings: Settings,
    now: datetime,
    nps_windows: Mapping[str, timedelta] | None = None,
) -> str:
    """Record a reply and act on it at once; returns the action taken.

    `nps_windows` (nps_survey rule -> response window) lets a 0-10 reply to a recent survey
    count as that customer's score. ValueError (nothing stored) for a value no provider
    sends, see `check_inbound`.
    """
    check_inbound(sms)
    try:
        phone = normalize_phone(sms.phone, settings.customers.region)
    except InvalidPhone:
        log.warning("inbound reply via %s from an invalid number ignored", gateway)
        return INVALID_PHONE
    if is_keyword_reply(sms.text, settings.messages.optout_keywords):
        action = OPTED_OUT
    elif is_keyword_reply(sms.text, settings.messages.optin_keywords):
        action = OPTED_IN
    else:
        action = STORED
    customer_id = session.scalars(
        select(Customer.id).where(Customer.phone == phone).order_by(Customer.id).limit(1)
    ).first()
    row = {
        "phone": phone,
        "text": sms.text,
        "gateway": gateway,
        "provider_id": sms.provider_id,
        "customer_id": customer_id,
        "action": action,
        "received_at": sms.received_at or now,
    }
    if sms.provider_id and not insert_ignore(session, INBOUND, [row]):
        return DUPLICATE
    if not sms.provider_id:
        session.add(InboundMessage(**row))
    if action == OPTED_OUT:
        add_opt_outs(session, [phone], now, source="sms", reason=f"reply via {gateway}")
    elif action == OPTED_IN:
        remove_opt_out(session, phone)
    elif nps_windows and record_nps_reply(
        session,
        phone=phone,
        text=sms.text,
        received_at=sms.received_at or now,
        response_windows=nps_windows,
    ):
        action = NPS_SCORE
        session.flush()
        session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.phone == phone,
                InboundMessage.gateway == gateway,
                InboundMessage.received_at == (sms.received_at or now),
            )
            .values(action=NPS_SCORE)
        )
    session.flush()
    log.info("inbound reply via %s: %s", gateway, action)
    return action


# Rows a report may move: those that were (or may have been) handed to the gateway.
_REPORTABLE = {
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.UNKNOWN,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
}


def apply_delivery_report(
    session: Session, report: DeliveryReport, *, routes: Collection[str], now: datetime
) -> bool:
    """Update the ledger row a report is about. False (and a log line) when there is none.

    `routes` are the labels of the routes the report may concern (a primary and a fallback
    of the same provider share its callback): only rows they sent are matched, since a
    provider's message id means nothing to another provider.

    A final state is never downgraded to `sent`, and `delivered` is never turned into
    `undelivered`: reports arrive twice and out of order. ValueError for a report the
    ledger cannot hold (`check_report`).
    """
    [known] = apply_delivery_reports(session, [(report, routes)], now=now)
    return known


def apply_delivery_reports(
    session: Session,
    reports: Sequence[tuple[DeliveryReport, Collection[str]]],
    *,
    now: datetime,
) -> list[bool]:
    """`apply_delivery_report` for many reports in the caller's transaction, in order.

    The rows named by ledger id (Kannel's, Twilio's) are loaded and locked in one query,
    and written in one flush: a busy SMSC reports thousands a second.
    """
    for report, _routes in reports:
        check_report(report)
    ids = sorted({r.message_id for r, _routes in reports if r.message_id is not None})
    rows: dict[int, Message] = {}
    for start in range(0, len(ids), REPORT_CHUNK):
        chunk = ids[start : start + REPORT_CHUNK]
        query = select(Message).where(Message.id.in_(chunk)).order_by(Message.id)
        rows.update((m.id, m) for m in session.scalars(query.with_for_update()))
    known = [_apply_report(session, report, list(routes), rows, now) for report, routes in reports]
    session.flush()
    return known


def _apply_report(
    session: Session,
    report: DeliveryReport,
    labels: list[str],
    rows: Mapping[int, Message],
    now: datetime,
) -> bool:
    via = "/".join(labels)
    message: Message | None
    if report.message_id is not None:
        message = rows.get(report.message_id)
    elif report.provider_id:
        query = select(Message).with_for_update()
        query = query.where(Message.provider_id == report.provider_id, Message.gateway.in_(labels))
        message = session.scalars(query).first()
    else:
        log.warning("delivery report via %s names no message; ignored", via)
        return False
    if message is None or (message.gateway and message.gateway not in labels):
        log.warning(
            "delivery report via %s for unknown message id=%s provider_id=%s",
            via,
            report.message_id,
            report.provider_id,
        )
        return False
    if message.status not in _REPORTABLE:
        log.info("delivery report for message %s in state %s ignored", message.id, message.status)
        return True
    if report.provider_id and not message.provider_id:
        message.provider_id = report.provider_id
    in_flight = message.status in (MessageStatus.SENDING, MessageStatus.UNKNOWN)
    if report.status == "delivered":
        if message.status != MessageStatus.DELIVERED:
            message.status = MessageStatus.DELIVERED
            message.delivered_at = now
    elif report.status == "undelivered":
        if message.status != MessageStatus.DELIVERED:
            message.status = MessageStatus.UNDELIVERED
            message.last_error = report.error or (f"code {report.code}" if report.code else None)
    elif message.status in (MessageStatus.SENDING, MessageStatus.UNKNOWN):
        message.status = MessageStatus.SENT
    if message.sent_at is None and message.status != MessageStatus.SENDING:
        message.sent_at = now
    if in_flight and message.status not in (MessageStatus.SENDING, MessageStatus.UNKNOWN):
        _settle_in_flight(message)
    if report.opted_out and message.phone:
        reason = f"{message.gateway or via} blacklist"
        add_opt_outs(session, [message.phone], now, source="gateway", reason=reason)
    return True


def _settle_in_flight(message: Message) -> None:
    """A report that settles a row still in flight (it may come before the gateway's answer
    reaches the dispatcher, whose record then no longer applies): the row is left as the
    dispatcher would have left it, its request counted and nothing held."""
    message.claim = None
    message.lease_until = None
    message.attempts += 1
