"""A CSV import leaves value segments current: rescored once, after its last batch."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import CustomerDefaults
from campaigner.customers.importer import import_csv
from campaigner.db.models import Customer, SegmentChange
from campaigner.segments import SegmentMap


def segments(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return {
            key: value
            for key, value in session.execute(select(Customer.external_id, Customer.segment))
        }


def test_a_csv_import_of_orders_assigns_segments(
    sessions: sessionmaker[Session], clock: FixedClock, tmp_path: Path
) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("external_id,phone\na,09120000001\nb,09120000002\nc,09120000003\n")
    orders = tmp_path / "orders.csv"
    # Header names as the orders import documents them (docs/operations.md, "Orders").
    orders.write_text(
        "external_id,customer_id,total,paid_at\n"
        "o1,a,100,2025-01-01T10:00:00Z\n"
        "o2,b,200,2026-03-01T10:00:00Z\n"
        "o3,b,300,2026-03-10T10:00:00Z\n"
    )
    import_csv(sessions, "customers", customers, CustomerDefaults(), clock=clock)
    assert set(segments(sessions).values()) == {"none"}
    import_csv(
        sessions,
        "orders",
        orders,
        CustomerDefaults(),
        clock=clock,
        segment_map=SegmentMap.standard(),
    )
    # Two paying customers: NTILE(5) gives tiles 1 and 2. a (older, one order) R1 F1: lost;
    # b (recent, two orders) R2 F2: hibernating. c never paid: none.
    assert segments(sessions) == {"a": "lost", "b": "hibernating", "c": "none"}
    with sessions() as session:
        changed_at = session.scalars(select(SegmentChange.changed_at)).all()
    # Their orders are weeks old: placed where they already were, no move today (a history
    # import must not look like the whole shop moving; docs/segments.md).
    assert changed_at == []
