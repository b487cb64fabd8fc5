"""Signed shop webhooks: WooCommerce and Shopify push orders and customers as they change.

`POST /webhooks/shop/woocommerce` and `POST /webhooks/shop/shopify`. The signature covers the
body, so the body is read before it can be checked, by `Guard.unverified_body` (a few at a
time, a few per client, within the size limit and the body timeout, strangers' slow bodies
giving way to the shop's); then its HMAC is checked against the
shop's secret before anything else (`signatures`): a missing or wrong signature is 401 and
stores nothing. Shopify always signs, so a request without its header is refused unread.
Payloads go through
the same loader as CSV import, sync and the ingest API. Each delivery is applied once:
Shopify's `X-Shopify-Webhook-Id`, or WooCommerce's resource id, modification time and body
digest, is recorded in `shop_events` in the same transaction as the data it brought; so is
each Shopify refund id, which arrives twice (refunds/create, and in the order of
orders/updated). A delivery older than the data stored (`shop_modified_at`) changes nothing.
The topic header is not signed, so a body must be the resource its topic names.

A WooCommerce webhook may have a Secret of its own (`server.woocommerce_webhook_secrets`, by
topic; the others use `woocommerce_webhook_secret`). order.deleted needs more than the shop's
one secret: its body, `{"id": N}`, is also every customer, product and coupon deletion's, so
with one secret for all, a captured customer deletion resent as order.deleted would cancel
order N. It is acted on only when signed with a secret of its own, or when a WooCommerce
source is configured to confirm it: the shop's database is asked whether the order is in the
bin, which also stops a deletion delivered late, or replayed, after the order was restored.
The confirmed deletion records the shop's trash time in `shop_modified_at`, so an update
older than the deletion that arrives after it changes nothing.

A record that cannot be loaded (a phone that is no phone) is answered 200 with the reason,
logged, and stores nothing: resending the same payload cannot fix it, and both shops give up
on a URL that keeps failing (WooCommerce disables the webhook after more than 5 failures in
a row, Shopify retries 8 times and may delete the subscription).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

import anyio
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.customers.loader import (
    LoadResult,
    RecordError,
    RecordWarning,
    load_customers,
    load_orders,
    refresh_customer_stats,
)
from campaigner.customers.records import BirthdayFormat, RowError, as_text
from campaigner.db.models import Customer, Order, ShopEvent
from campaigner.errors import CampaignerError
from campaigner.segments.daily import rank_for_request
from campaigner.server.guard import Guard, Refused
from campaigner.server.signatures import signature_matches
from campaigner.shops import shopify, woocommerce
from campaigner.shops.topics import ORDER_DELETED, SHOPIFY_TOPICS, WOOCOMMERCE_TOPICS
from campaigner.sources.woocommerce import (
    CONFIRM_DEADLINE_SECONDS,
    OrderState,
    ShopMeta,
    order_state,
)

log = logging.getLogger(__name__)

ShopOrders = Callable[[str], OrderState | None]
"""An order's state as the shop has it now, by id (None: the shop has no such order)."""

# Deletions confirmed in the shop's database at once, each on a connection of its own. A
# bulk deletion in the shop sends one order.deleted per order at once; confirmed in the
# worker threads every other request shares (40), a burst held them all for the deadline
# (delivery reports waited) and opened as many connections to a shop's database already
# slow, and each confirmation given up on at its deadline went on in a thread the pool no
# longer counted, so more began. Past these, a deletion waits for a thread within its deadline.
CONFIRMATIONS_AT_ONCE = 4


class _Shop:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        clock: Clock,
        shop_orders: ShopOrders | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.shop_orders = shop_orders
        # Threads of their own: one given up on still holds its place until its read ends.
        self.confirming: Executor = ThreadPoolExecutor(
            CONFIRMATIONS_AT_ONCE, thread_name_prefix="order-deleted"
        )

    def apply(self, shop: str, key: str, load: Callable[[Session], LoadResult]) -> Response:
        """Load once per delivery key: the data and the key land together or not at all."""
        with self.sessions() as session:
            if self._applied(session, shop, key):
                return PlainTextResponse("already applied")
            try:
                result = load(session)
                if result.errors:
                    session.rollback()
                    reasons = "; ".join(f"{e.field or 'record'}: {e.reason}" for e in result.errors)
                    return _rejected(shop, key, reasons)
                if result.stale:
                    # Delivered after a newer one: nothing of it is kept, the key is.
                    session.rollback()
                    log.info("%s webhook %s is stale: newer data is stored", shop, key)
                session.add(ShopEvent(shop=shop, key=key[:255], received_at=self.clock.now()))
                session.commit()
            except RowError as exc:
                session.rollback()
                return _rejected(shop, key, f"{exc.field or 'record'}: {exc}")
            except IntegrityError:  # a concurrent delivery recorded the same key or refund
                session.rollback()
                if self._applied(session, shop, key):
                    return PlainTextResponse("already applied")
                return PlainTextResponse("busy with the same data, send again", status_code=503)
        if result.stale:
            return PlainTextResponse("stale: the shop sent newer data before, kept")
        if result.warnings:
            shortened = "; ".join(w.reason for w in result.warnings)
            log.warning("%s webhook %s loaded, shortened: %s", shop, key, shortened)
            return PlainTextResponse(f"ok {result.accepted}; warning: {shortened}")
        return PlainTextResponse(f"ok {result.accepted}")

    async def delete_order(self, order_id: str) -> Response:
        """order.deleted: the order went to the shop's bin, and stops counting as paid as a
        cancelled one does (a sync reads a trashed order so too); order.restored brings back
        its status. No delivery key: every deletion of an order has the same body, its id,
        so a key would take a deletion after a restore for a retry, and applying one twice
        changes nothing.

        With the shop's orders to ask (`shop_orders`), only an order the shop has in the bin
        (or no longer has at all) is cancelled, and only if nothing newer than its move to
        the bin is stored: a deletion delivered after the order's restore changes nothing.
        Without, the deletion has no time of its own to compare, and is applied."""
        trashed_at: datetime | None = None
        if self.shop_orders is not None:
            try:
                state = await _shop_order(self.shop_orders, order_id, self.confirming)
            except CampaignerError as exc:
                log.warning(
                    "woocommerce order %s deleted: not applied, the shop's database could not "
                    "confirm it (%s); the next sync reads the order",
                    order_id,
                    exc,
                )
                return PlainTextResponse(
                    "not applied: the shop's database could not confirm the deletion (logged); "
                    "the next sync reads the order"
                )
            if state is not None and not state.trashed:
                log.info(
                    "woocommerce order %s deleted: not applied, the shop has it as %r",
                    order_id,
                    state.status,
                )
                return PlainTextResponse(f"not deleted: the shop has the order as {state.status!r}")
            trashed_at = state.modified if state is not None else None
        return await run_in_threadpool(self._cancel, order_id, trashed_at)

    def _cancel(self, order_id: str, trashed_at: datetime | None) -> Response:
        """The deletion applied, unless newer data than `trashed_at` (the shop's time of the
        move to the bin, when confirmed) is stored."""
        with self.sessions() as session:
            order = session.execute(
                select(Order.id, Order.customer_id, Order.status, Order.shop_modified_at)
                .where(Order.external_id == order_id)
                .with_for_update()
            ).one_or_none()
            if order is None:
                return PlainTextResponse(f"unknown order {order_id!r}: nothing to delete")
            stored = order.shop_modified_at
            if trashed_at is not None and stored is not None and stored > trashed_at:
                log.info("woocommerce order %s deleted: stale, newer data is stored", order_id)
                return PlainTextResponse("stale: the shop changed the order after its deletion")
            modified = trashed_at or stored
            if order.status == "cancelled":
                if modified != stored:
                    session.execute(
                        update(Order).where(Order.id == order.id).values(shop_modified_at=modified)
                    )
                    session.commit()
                return PlainTextResponse("ok 0")
            session.execute(
                update(Order)
                .where(Order.id == order.id)
                .values(
                    status="cancelled",
                    shop_modified_at=modified,
                    updated_at=self.clock.now(),
                )
            )
            self._refresh_customer(session, order.customer_id)
            session.commit()
        log.info("woocommerce order %s deleted: cancelled", order_id)
        return PlainTextResponse("ok 1")

    @staticmethod
    def _applied(session: Session, shop: str, key: str) -> bool:
        found = session.scalar(
            select(ShopEvent.id).where(ShopEvent.shop == shop, ShopEvent.key == key[:255])
        )
        return found is not None

    def customers(
        self, session: Session, record: dict[str, Any], birthday_format: BirthdayFormat = "auto"
    ) -> LoadResult:
        return load_customers(
            session,
            [record],
            self.settings.customers,
            now=self.clock.now(),
            birthday_format=birthday_format,
        )

    def woocommerce_order(
        self, session: Session, record: dict[str, Any], buyer: dict[str, Any]
    ) -> LoadResult:
        """An order; a registered buyer not known yet (their customer.created has not arrived,
        or never will) is made from the order's billing data, so the order is kept and
        thanked. A known customer's own data is never replaced by an order's billing data."""
        registered = record.get("customer_id")
        if registered and not session.scalar(
            select(Customer.id).where(Customer.external_id == registered)
        ):
            made = self.customers(session, {**buyer, "external_id": registered})
            if made.errors and {e.field for e in made.errors} == {"phone"}:
                # Known by id, the buyer needs no phone: the order is kept, the phone is not.
                made = self.customers(session, {**buyer, "external_id": registered, "phone": ""})
            if made.errors:
                return LoadResult(
                    errors=[
                        RecordError(0, e.reason, f"customer.{e.field}" if e.field else None)
                        for e in made.errors
                    ]
                )
            result = self.orders(session, record)
            result.warnings[:0] = [
                RecordWarning(0, w.reason, f"customer.{w.field}") for w in made.warnings
            ]
            return result
        return self.orders(session, record)

    def orders(self, session: Session, record: dict[str, Any]) -> LoadResult:
        return load_orders(
            session,
            [record],
            self.settings.customers,
            now=self.clock.now(),
            segment_map=self.settings.segments.segment_map,
        )

    def shopify_order(
        self,
        session: Session,
        record: dict[str, Any],
        refunds: Mapping[str, Decimal],
        *,
        keep_paid_at: bool,
    ) -> LoadResult:
        """An order from orders/*: its refunds not yet counted are added to what is stored.

        With `keep_paid_at` (orders/updated: any change to the order), a paid order keeps the
        payment time already recorded. orders/paid sets it once per order: its time comes
        from X-Shopify-Triggered-At, a header the signature does not cover, so a captured
        delivery resent under a new webhook id cannot move the payment to now.
        """
        stored = session.execute(
            select(Order.refunded, Order.paid_at).where(Order.external_id == record["external_id"])
        ).one_or_none()
        new = self._unseen_refunds(session, refunds)
        record["refunded"] = min((stored.refunded if stored else Decimal(0)) + new, record["total"])
        if not keep_paid_at:
            keep_paid_at = not self._first(session, f"paid:{record['external_id']}")
        if keep_paid_at and stored and stored.paid_at and record["status"] == "paid":
            record["paid_at"] = stored.paid_at.isoformat()
        return self.orders(session, record)

    def _refresh_customer(self, session: Session, customer_id: int) -> None:
        """The customer's statistics, then their inputs and the ranking if that need not
        wait for a pass (`rank_for_request`)."""
        refresh_customer_stats(session, [customer_id])
        segments, customers = self.settings.segments, self.settings.customers
        rank_for_request(
            session, [customer_id], segments.segment_map, self.clock.now(), customers.currency
        )

    def refund(
        self, session: Session, order_id: str, refund_id: str, amount: Decimal
    ) -> LoadResult:
        order = session.scalars(select(Order).where(Order.external_id == order_id)).one_or_none()
        if order is None:
            raise RowError(f"refund of unknown order {order_id!r}", "order_id")
        if not self._unseen_refunds(session, {refund_id: amount}):
            return LoadResult(unchanged=1)
        session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(refunded=min(order.refunded + amount, order.total))
        )
        self._refresh_customer(session, order.customer_id)
        return LoadResult(updated=1)

    def _first(self, session: Session, key: str) -> bool:
        """Whether Shopify's `key` is seen for the first time; from now on it is seen."""
        if self._applied(session, "shopify", key):
            return False
        session.add(ShopEvent(shop="shopify", key=key, received_at=self.clock.now()))
        return True

    def _unseen_refunds(self, session: Session, refunds: Mapping[str, Decimal]) -> Decimal:
        """The sum of the refunds not counted before; from now on they are."""
        keys = {f"refund:{refund_id}": amount for refund_id, amount in refunds.items()}
        seen = set(
            session.scalars(
                select(ShopEvent.key).where(ShopEvent.shop == "shopify", ShopEvent.key.in_(keys))
            )
        )
        unseen = {key: amount for key, amount in keys.items() if key not in seen}
        session.add_all(
            ShopEvent(shop="shopify", key=key, received_at=self.clock.now()) for key in unseen
        )
        return sum(unseen.values(), Decimal(0))

    def consent(self, session: Session, record: dict[str, Any]) -> LoadResult:
        """customers_marketing_consent/update: the consent of a known customer changes and
        nothing else; an unknown one is created with it (customers/create may come later)."""
        if "marketing_consent" not in record:
            return LoadResult(unchanged=1)
        known = session.execute(
            select(Customer.id, Customer.marketing_consent).where(
                Customer.external_id == record["external_id"]
            )
        ).one_or_none()
        if known is None:
            return self.customers(session, record)
        if known.marketing_consent == record["marketing_consent"]:
            return LoadResult(unchanged=1)
        session.execute(
            update(Customer)
            .where(Customer.id == known.id)
            .values(marketing_consent=record["marketing_consent"], updated_at=self.clock.now())
        )
        return LoadResult(updated=1)


def _signed_json(body: bytes, request: Request, secret: SecretStr | None, header: str) -> Any:
    key = secret.get_secret_value() if secret else None
    if not signature_matches(body, key, request.headers.get(header)):
        raise Refused(401, "missing or wrong signature")
    try:
        payload = json.loads(body)
        # JSON may escape a lone surrogate ("\ud800"), which no database can store.
        json.dumps(payload, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        raise Refused(400, "the body is not valid JSON") from None
    return payload


def _delivery_key(resource: str, payload: Mapping[str, Any], body: bytes) -> str:
    """A WooCommerce delivery's key: the resource, its id and modification time, and a digest
    of the body, so two deliveries of one second that differ (order.created while pending,
    order.updated once paid, in the same second) are both applied, and a retry is not."""
    digest = hashlib.sha256(body).hexdigest()[:16]
    modified = as_text(payload.get("date_modified_gmt"))[:32]
    return f"{resource}:{as_text(payload.get('id'))[:64]}:{modified}:{digest}"


def _not_the_topics(topic: str, payload: Mapping[str, Any]) -> str | None:
    """Why the body is not the resource its topic names, if it is not. The signature covers
    the body, not the headers: a captured order delivery resent as customer.updated would
    otherwise make a customer of the order's buyer under the order's id, and any resource
    resent as order.deleted would cancel the order of its id."""
    if topic == "order.deleted":
        return None if set(payload) == {"id"} else "an order.deleted delivery is only an id"
    has_items = "line_items" in payload
    if topic.startswith(("order.", "orders/")) and not has_items:
        return f"a {topic} delivery without line_items is no order"
    if topic == "refunds/create":
        if "refund_line_items" not in payload:
            return "a refunds/create delivery without refund_line_items is no refund"
    elif topic.startswith(("customer.", "customers")) and (
        has_items or "refund_line_items" in payload
    ):
        return f"a {topic} delivery with line items is no customer"
    return None


def shop_webhook_routes(
    *, settings: Settings, sessions: sessionmaker[Session], clock: Clock, guard: Guard | None = None
) -> list[BaseRoute]:
    shop = _Shop(settings, sessions, clock, _shop_orders(settings))
    guard = guard or Guard.of(settings)
    woo_meta = ShopMeta.from_settings(settings)
    own_secrets = {str(t): s for t, s in settings.server.woocommerce_webhook_secrets.items()}
    deletions = _deletions_acted_on(settings, confirmed=shop.shop_orders is not None)

    async def woocommerce_hook(request: Request) -> Response:
        # The topic header is not signed: it only chooses the secret the body must be
        # signed with, and a topic with a secret of its own takes no other.
        topic = request.headers.get("x-wc-webhook-topic", "")
        secret = own_secrets.get(topic, settings.server.woocommerce_webhook_secret)
        try:
            # Read even unsigned: WooCommerce's ping on creation carries no signature.
            body = await guard.unverified_body(request)
            if "x-wc-webhook-signature" not in request.headers and body.startswith(b"webhook_id="):
                return PlainTextResponse("pong")  # WooCommerce's ping on creation: unsigned
            payload = _signed_json(body, request, secret, "x-wc-webhook-signature")
        except Refused as refused:
            return _refused(
                "woocommerce", refused, topic, request.headers.get("x-wc-webhook-id", "")
            )
        if topic not in WOOCOMMERCE_TOPICS or not isinstance(payload, Mapping):
            return PlainTextResponse(f"ignored topic {topic!r}")
        resource = topic.split(".")[0]
        key = _delivery_key(resource, payload, body)
        if mismatch := _not_the_topics(topic, payload):
            return _rejected("woocommerce", key, mismatch)
        load: Callable[[Session], LoadResult]
        try:
            if topic == ORDER_DELETED:
                order_id = woocommerce.deleted_order_id(payload)
                if not deletions:
                    log.warning("woocommerce order %s deleted: ignored, %s", order_id, UNSAFE)
                    return PlainTextResponse(f"ignored: {UNSAFE}")
                return await shop.delete_order(order_id)
            if resource == "order":
                order = woocommerce.order_record(payload, woo_meta)
                buyer = woocommerce.buyer(payload, woo_meta)
                load = lambda s: shop.woocommerce_order(s, order, buyer)  # noqa: E731
            else:
                customer = woocommerce.customer_record(payload, woo_meta)
                birthdays = woo_meta.birthday_format
                load = lambda s: shop.customers(s, customer, birthdays)  # noqa: E731
        except RowError as exc:
            return _rejected("woocommerce", key, f"{exc.field or 'record'}: {exc}")
        return await run_in_threadpool(shop.apply, "woocommerce", key, load)

    async def shopify_hook(request: Request) -> Response:
        try:
            if "x-shopify-hmac-sha256" not in request.headers:
                raise Refused(401, "missing or wrong signature")
            body = await guard.unverified_body(request)
            payload = _signed_json(
                body, request, settings.server.shopify_webhook_secret, "x-shopify-hmac-sha256"
            )
        except Refused as refused:
            return _refused("shopify", refused, request.headers.get("x-shopify-topic", ""))
        topic = request.headers.get("x-shopify-topic", "")
        key = request.headers.get("x-shopify-webhook-id", "")
        if topic not in SHOPIFY_TOPICS or not isinstance(payload, Mapping):
            return PlainTextResponse(f"ignored topic {topic!r}")
        if not key:
            return PlainTextResponse("missing X-Shopify-Webhook-Id", status_code=400)
        if mismatch := _not_the_topics(topic, payload):
            return _rejected("shopify", key, mismatch)
        load: Callable[[Session], LoadResult]
        try:
            if topic == "customers_marketing_consent/update":
                record = shopify.with_consent(
                    {"external_id": as_text(payload.get("id")), "phone": payload.get("phone")},
                    payload,
                )
                load = lambda s: shop.consent(s, record)  # noqa: E731
            elif topic.startswith("customers/"):
                customer = shopify.customer_record(payload)
                load = lambda s: shop.customers(s, customer)  # noqa: E731
            elif topic == "refunds/create":
                order_id, refund_id = as_text(payload.get("order_id")), as_text(payload.get("id"))
                amount = shopify.refunded(payload)
                load = lambda s: shop.refund(s, order_id, refund_id, amount)  # noqa: E731
            else:
                paid = topic == "orders/paid"
                paid_at = request.headers.get("x-shopify-triggered-at", "") if paid else ""
                order = shopify.order_record(payload, paid_at)
                refunds = shopify.refunds(payload)
                load = lambda s: shop.shopify_order(  # noqa: E731
                    s, order, refunds, keep_paid_at=not paid
                )
        except RowError as exc:
            return _rejected("shopify", key, f"{exc.field or 'record'}: {exc}")
        return await run_in_threadpool(shop.apply, "shopify", key, load)

    return [
        Route("/webhooks/shop/woocommerce", woocommerce_hook, methods=["POST"]),
        Route("/webhooks/shop/shopify", shopify_hook, methods=["POST"]),
    ]


UNSAFE = (
    "order.deleted signed with the shop's one secret could be a customer, product or coupon "
    "deletion resent: give the Order deleted webhook its own secret "
    '(server.woocommerce_webhook_secrets."order.deleted") or configure the shop\'s '
    'WooCommerce source (preset = "woocommerce") to confirm deletions'
)


async def _shop_order(
    shop_orders: ShopOrders, order_id: str, threads: Executor
) -> OrderState | None:
    """The order as the shop has it, asked in one of `threads`, or CampaignerError past
    CONFIRM_DEADLINE_SECONDS, waiting for a thread included.

    The answer waits no longer even if a read hangs past it (its driver timeout ends it
    later, in its thread, and `order_state` begins no read after the deadline); a
    confirmation still waiting for a thread at its deadline never begins."""
    try:
        with anyio.fail_after(CONFIRM_DEADLINE_SECONDS):
            return await asyncio.get_running_loop().run_in_executor(threads, shop_orders, order_id)
    except TimeoutError:
        raise CampaignerError(
            f"no answer within {CONFIRM_DEADLINE_SECONDS:g}s about order {order_id}"
        ) from None


def _shop_orders(settings: Settings) -> ShopOrders | None:
    """The shop's orders, read from its WooCommerce source if one is configured."""
    source = next((s for s in settings.sources if s.preset == "woocommerce"), None)
    if source is None:
        return None
    return lambda order_id: order_state(source, order_id)


def _deletions_acted_on(settings: Settings, *, confirmed: bool) -> bool:
    """Whether order.deleted is acted on: with a secret of its own, or confirmed by the
    shop's database. Said once at start-up when it is not, since the shop sees only 200s."""
    server = settings.server
    if confirmed or ORDER_DELETED in server.woocommerce_webhook_secrets:
        return True
    if server.woocommerce_webhook_secret is not None:
        log.warning("woocommerce webhooks: order.deleted will be ignored: %s", UNSAFE)
    return False


def _refused(shop: str, refused: Refused, topic: str, webhook_id: str = "") -> Response:
    """A refused delivery; a bad signature is logged with the webhook's topic and id, so the
    operator can tell which one to fix before the shop gives up on it (WooCommerce disables
    a webhook after 5 failures in a row)."""
    if refused.status == 401:
        which = f" {_header(webhook_id)}" if webhook_id else ""
        log.warning(
            "%s webhook%s (topic %s): missing or wrong signature", shop, which, _header(topic)
        )
    return PlainTextResponse(refused.detail, status_code=refused.status, headers=refused.headers)


def _rejected(shop: str, key: str, reasons: str) -> Response:
    """A delivery whose record cannot be loaded: nothing stored, the reason logged and told."""
    log.warning("%s webhook %s rejected: %s", shop, key, reasons)
    return PlainTextResponse(f"rejected: {reasons}")


HEADER_SHOWN = 64  # characters of an unsigned header written to the log


def _header(value: str) -> str:
    """An unsigned header as the log shows it: anyone can send one, so it is quoted, cut
    short and printable (no line breaks or terminal escapes)."""
    shown = "".join(c if c.isprintable() else "?" for c in value[:HEADER_SHOWN])
    return repr(shown + ("…" if len(value) > HEADER_SHOWN else ""))
