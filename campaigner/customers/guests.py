"""Guest buyers: customers known only by the phone they gave at checkout.

Many shops sell mostly to guests. A guest becomes a customer `guest:+98912…`; when someone
registers with that phone, or already has, the guest and the registered customer are one
person, so the guest's orders and history move to the registered customer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    String,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from campaigner.customers.records import GUEST_PREFIX, guest_id
from campaigner.db.models import (
    Coupon,
    Customer,
    CustomerScore,
    InboundMessage,
    Message,
    NpsResponse,
    Order,
    SegmentChange,
)
from campaigner.segments.scoring import lock


def is_guest(external_id: str) -> bool:
    return external_id.startswith(GUEST_PREFIX)


def registered_owners(session: Session, guest_ids: Iterable[str]) -> dict[str, str]:
    """For each guest id, the external id of a registered customer with the same phone."""
    phones = {gid[len(GUEST_PREFIX) :]: gid for gid in guest_ids}
    if not phones:
        return {}
    owners: dict[str, str] = {}
    rows = session.execute(
        select(Customer.phone, Customer.external_id)
        .where(Customer.phone.in_(list(phones)), Customer.external_id.not_like(GUEST_PREFIX + "%"))
        .order_by(Customer.id)
    )
    for phone, external_id in rows:
        if phone is not None:
            owners.setdefault(phones[phone], external_id)
    return owners


def merge_guests(
    session: Session, customers: Iterable[Mapping[str, Any]], main_currency: str | None = None
) -> int:
    """Fold guests into the registered customers just written with the same phone.

    Orders, coupons, replies, NPS answers, ledger rows and segment history move to the
    registered customer, and so does the guest's segment when the registered customer has
    none yet (`_move_scores`).
    A ledger row for an occurrence the registered customer already has stays with the guest
    and goes with it: that occurrence was sent to this person once already.
    """
    from campaigner.customers.loader import refresh_customer_stats

    wanted = {
        guest_id(row["phone"]): row["external_id"]
        for row in customers
        if row.get("phone") and not is_guest(row["external_id"])
    }
    if not wanted:
        return 0
    # Guests are few: look them up first, and their owners only when there is one.
    ids = _ids(session, list(wanted))
    if not ids:
        return 0
    ids.update(_ids(session, [wanted[guest] for guest in ids]))
    lock(session)  # before moving (or deleting with the guest) a row of customer_scores
    merged = 0
    for guest, owner in wanted.items():
        if guest in ids and owner in ids:
            _move(session, ids[guest], ids[owner])
            merged += 1
            refresh_customer_stats(session, [ids[owner]], main_currency=main_currency)
    return merged


def _ids(session: Session, external_ids: list[str]) -> dict[str, int]:
    """The customers with these external ids, the ids passed as one parameter: an IN list's
    thousand placeholders were rendered by SQLAlchemy, and on PostgreSQL rewritten again by
    psycopg, on every batch of an import (a tenth of it). The parameter is JSON text: psycopg
    dumped a list as an array value by value in Python (3 % of an import's CPU)."""
    ids = bindparam("ids", json.dumps(external_ids), type_=String)
    if session.get_bind().dialect.name == "postgresql":
        listed = select(func.json_array_elements_text(cast(ids, JSON)))
    else:
        listed = select(literal_column("value")).select_from(func.json_each(ids))
    query = select(Customer.external_id, Customer.id).where(Customer.external_id.in_(listed))
    return {key: value for key, value in session.execute(query)}


def _move(session: Session, guest: int, owner: int) -> None:
    for model in (Order, Coupon, InboundMessage, NpsResponse, SegmentChange):
        session.execute(
            update(model)
            .where(model.customer_id == guest)
            .values(customer_id=owner)
            .execution_options(synchronize_session=False)
        )
    other = aliased(Message)
    already = exists().where(
        and_(
            other.customer_id == owner,
            other.rule == Message.rule,
            other.occurrence_key == Message.occurrence_key,
        )
    )
    session.execute(
        update(Message)
        .where(Message.customer_id == guest, ~already)
        .values(customer_id=owner)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Customer)
        .where(Customer.referred_by_id == guest)
        .values(referred_by_id=owner)
        .execution_options(synchronize_session=False)
    )
    _move_scores(session, guest, owner)
    session.execute(
        delete(Customer).where(Customer.id == guest).execution_options(synchronize_session=False)
    )


def _move_scores(session: Session, guest: int, owner: int) -> None:
    """The guest's segment becomes the owner's, when the owner has none of its own: the
    person was in it already. Deleted with the guest, the owner's first rescoring recorded
    a move from "none" on the day they registered, and a `segment_change` rule from "none"
    (a welcome) or to "lost" (a win-back) messaged a long-standing buyer for a move they
    never made. An owner with scores keeps them; the refresh of its inputs then records
    what the guest's orders change. (Checked here, not in the UPDATE: MariaDB refuses a
    subquery on the table it updates.)"""
    owned = session.scalar(
        select(CustomerScore.customer_id).where(CustomerScore.customer_id == owner)
    )
    if owned is None:
        session.execute(
            update(CustomerScore)
            .where(CustomerScore.customer_id == guest)
            .values(customer_id=owner)
            .execution_options(synchronize_session=False)
        )
