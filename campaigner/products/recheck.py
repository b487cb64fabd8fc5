"""Whether an order rule's planned message still has a reason to go, asked at send time.

Planning checked "not bought the suggestion since" (cross_sell) and "not bought again"
(replenish) up to its own instant; a message can wait hours or days after that (window,
quiet days, caps), and a suggestion for beans the customer bought meanwhile is worse than
none. So the dispatcher asks again for each claimed row, as it asks consent and opt-out,
counting orders paid up to the moment of sending (never a rehearsal's future). Every rule
whose occurrence is an order (post_purchase, nps_survey, referral_request too) also asks
whether that order is still paid: a thank-you for a refunded order is wrong, whatever waited.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, false, literal, or_, select
from sqlalchemy.orm import Session

from campaigner.db.models import Message, UTCDateTime
from campaigner.products.bought import bought, orders, paid_and_kept
from campaigner.rules.models import (
    CrossSellRule,
    PostPurchaseRule,
    ReferralRequestRule,
    ReplenishRule,
    RuleBase,
)

messages = cast(Table, Message.__table__)

# The skip reasons, as the ledger and the reports show them.
BOUGHT_SUGGESTION = "bought_suggestion"
BOUGHT_AGAIN = "bought_again"
ORDER_NOT_PAID = "order_not_paid"  # refunded (in full) or cancelled since planning


def stopped_holding(
    session: Session, rule: RuleBase, message_ids: Collection[int], now: datetime
) -> dict[int, str]:
    """Of `rule`'s messages `message_ids`, those whose condition no longer holds at `now`,
    each with its skip reason; empty for rules without such a condition. An order no longer
    paid (refunded, cancelled) takes its follow-up with it: nothing to thank for, cross-sell
    or refill. Paid again by the moment of sending, it is sent after all."""
    until = literal(now, UTCDateTime())
    customer = messages.c.customer_id
    condition: ColumnElement[bool]
    if isinstance(rule, CrossSellRule):
        reason = BOUGHT_SUGGESTION
        condition = bought(rule.suggest, customer, since=orders.c.paid_at, until=until)
    elif isinstance(rule, ReplenishRule):
        reason = BOUGHT_AGAIN
        later = (orders.c.paid_at, orders.c.id)
        condition = bought(rule.bought, customer, until=until, later_than=later)
    elif isinstance(rule, PostPurchaseRule | ReferralRequestRule):  # nps_survey included
        reason, condition = ORDER_NOT_PAID, false()
    else:
        return {}
    if not message_ids:
        return {}
    paid = paid_and_kept()
    query = (
        select(messages.c.id, paid)
        .join(orders, orders.c.id == messages.c.order_id)
        .where(messages.c.id.in_(list(message_ids)), or_(~paid, condition))
    )
    return {
        message_id: reason if still_paid else ORDER_NOT_PAID
        for message_id, still_paid in session.execute(query)
    }
