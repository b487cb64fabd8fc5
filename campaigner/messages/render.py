"""One ledger row to one SMS text: context, coupon, template, footer, and a length check.

A text longer than the rule allows is an error for that message, never silently cut.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigner.config import Settings
from campaigner.db.models import Customer, Message, Order
from campaigner.errors import one_line
from campaigner.messages.budget import TemplateLimit
from campaigner.messages.context import REFERRAL_VARIABLES, build_context, rule_variables
from campaigner.messages.coupons import issue_coupon
from campaigner.messages.dated import DateGone, dated_context
from campaigner.messages.sms import measure
from campaigner.messages.templates import MessageTemplates
from campaigner.products.favourites import favourite_categories

ORDERS_LOADED = "campaigner.render.orders_loaded"
FAVOURITES_LOADED = "campaigner.render.favourites_loaded"
ORDER_CHUNK = 500


class CouponSpec(Protocol):
    @property
    def percent(self) -> float | Decimal | None: ...
    @property
    def amount(self) -> float | Decimal | None: ...
    @property
    def valid_days(self) -> int: ...
    @property
    def prefix(self) -> str: ...


class RuleLike(Protocol):
    """What rendering needs from a rule (the rule models live in `campaigner.rules`)."""

    @property
    def name(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def transactional(self) -> bool: ...
    @property
    def max_segments(self) -> int | None: ...
    @property
    def coupon(self) -> CouponSpec | None: ...


@dataclass(frozen=True)
class Rendered:
    text: str
    encoding: str  # "gsm7" or "ucs2"
    segments: int


class RenderError(Exception):
    """This message cannot be rendered (too long, missing data, broken template).

    The dispatcher fails the ledger row with `reason`: the message itself unless a short
    code is given (`template_limit` for a template over its render budget).
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class MessageRenderer:
    def __init__(self, settings: Settings, templates: MessageTemplates) -> None:
        self.settings = settings
        self.templates = templates

    def render(self, session: Session, message: Message, rule: RuleLike, now: datetime) -> Rendered:
        """The text for this ledger row; issues the rule's coupon first (once per message)."""
        customer = session.get(Customer, message.customer_id)
        if customer is None:
            raise RenderError(f"customer {message.customer_id} no longer exists")
        order = _order(session, message.order_id) if message.order_id is not None else None
        if message.order_id is not None and order is None:
            raise RenderError(f"order {message.order_id} no longer exists")
        coupon = None
        if rule.coupon is not None:
            spec = rule.coupon
            coupon = issue_coupon(
                session,
                customer_id=customer.id,
                rule=rule.name,
                message_id=message.id,
                percent=spec.percent,
                amount=spec.amount,
                valid_days=spec.valid_days,
                prefix=spec.prefix,
                now=now,
            )
        try:
            dated = dated_context(
                session, rule, customer, message.occurrence_key, self.settings.customers.timezone
            )
        except (DateGone, ValueError) as exc:
            raise RenderError(one_line(exc)) from exc
        locale = customer.locale or self.settings.customers.locale
        with _template_errors(rule.template):
            chosen = self.templates.choose(rule.template, locale)
        context = build_context(
            session,
            customer=customer,
            trigger=rule.trigger,
            rule_name=rule.name,
            order=order,
            coupon=coupon,
            settings=self.settings,
            now=now,
            referral=not REFERRAL_VARIABLES.isdisjoint(chosen.variables),
            dated=dated,
            favourite_category=_favourite(session, customer.id),
            rule_variables=rule_variables(rule, order),
        )
        with _template_errors(rule.template):
            text = self.templates.render_chosen(chosen, context, transactional=rule.transactional)
        size = measure(text)
        ceiling = self.settings.messages.max_segments
        if rule.max_segments is not None and size.segments > min(rule.max_segments, ceiling):
            raise RenderError(
                f"too long: {size.segments} segments > max_segments {rule.max_segments}"
            )
        if size.segments > ceiling:
            raise RenderError(
                f"too long: {size.segments} segments > {ceiling} (messages.max_segments)"
            )
        return Rendered(text=text, encoding=size.encoding, segments=size.segments)


def _batch_ids(session: Session, column: str, first: int, known: Container[int]) -> set[int]:
    """`first` and the `column` of every message loaded in the session, less those `known`:
    what one query for the whole batch has to fetch."""
    return {first} | {
        other
        for state in session.identity_map.all_states()
        if state.class_ is Message
        and (other := state.dict.get(column)) is not None
        and other not in known
    }


def _order(session: Session, order_id: int) -> Order | None:
    """The message's order; the first miss loads the orders of every message in the session.

    The dispatcher renders a claimed batch in one session, its messages already loaded: one
    query for the batch's orders instead of one per message. The session's identity map holds
    its objects weakly, so the loaded orders are kept in `session.info` for its lifetime.
    """
    loaded: dict[int, Order | None] = session.info.setdefault(ORDERS_LOADED, {})
    if order_id not in loaded:
        wanted = _batch_ids(session, "order_id", order_id, loaded)
        loaded.update(dict.fromkeys(wanted))
        ids = sorted(wanted)
        for start in range(0, len(ids), ORDER_CHUNK):
            chunk = ids[start : start + ORDER_CHUNK]
            for order in session.scalars(
                select(Order).where(Order.id.in_(chunk)).options(selectinload(Order.items))
            ):
                loaded[order.id] = order
    return session.get(Order, order_id)


def _favourite(session: Session, customer_id: int) -> str | None:
    """The customer's favourite category; the first miss finds those of every customer with
    a message in the session, in one statement (as `_order` loads the batch's orders)."""
    known: dict[int, str | None] = session.info.setdefault(FAVOURITES_LOADED, {})
    if customer_id not in known:
        wanted = _batch_ids(session, "customer_id", customer_id, known)
        known.update(dict.fromkeys(wanted))
        known.update(favourite_categories(session, wanted))
    return known[customer_id]


@contextmanager
def _template_errors(template: str) -> Iterator[None]:
    """A broken template, or a filter given the wrong data, fails this message only:
    whatever a template raises (IndexError, RecursionError, ...) or a runaway one."""
    try:
        yield
    except TemplateLimit as exc:
        raise RenderError(f"template {template}: {exc}", reason="template_limit") from exc
    except TemplateError as exc:
        raise RenderError(f"template {template}: {exc}") from exc
    except RecursionError as exc:
        raise RenderError(f"template {template}: includes or calls itself without end") from exc
    except Exception as exc:
        raise RenderError(f"template {template}: {one_line(exc)}") from exc
