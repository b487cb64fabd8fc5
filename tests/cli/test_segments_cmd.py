"""`campaigner segments` in its three formats on a hand-computed shop; shop text (a currency
code that looks like a formula) stays inert in the CSV and the terminal."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigner.cli import cli
from campaigner.customers.loader import refresh_customer_stats
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Customer, Order
from campaigner.segments import SegmentMap, recompute

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text('[customers]\ncurrency = "IRT"\n', encoding="utf-8")
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    engine = create_engine_for(f"sqlite:///{tmp_path / 'campaigner.db'}")
    orders = {  # customer: [(days ago, total, refunded, currency)]
        "a": [(30, 100, 0, "IRT"), (1, 300, 0, "IRT")],
        "b": [(10, 200, 50, "IRT")],
        "c": [(5, 10, 0, "@SUM(1)")],
        "d": [],
    }
    with session_factory(engine).begin() as session:
        for name, placed in orders.items():
            customer = Customer(external_id=name)
            session.add(customer)
            session.flush()
            for n, (days, total, refunded, currency) in enumerate(placed):
                session.add(
                    Order(
                        external_id=f"{name}{n}",
                        customer_id=customer.id,
                        total=Decimal(total),
                        refunded=Decimal(refunded),
                        currency=currency,
                        paid_at=NOW - timedelta(days=days),
                    )
                )
        session.flush()
        refresh_customer_stats(session, [1, 2, 3, 4], main_currency="IRT")
        recompute(session, SegmentMap.standard(), NOW, "IRT")
    engine.dispose()
    return config


def run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "segments", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_json_gives_size_revenue_share_average_order_and_clv_per_currency(shop: Path) -> None:
    # Three paying customers: NTILE(5) gives tiles 1, 2, 3. Last purchase: b oldest, then c,
    # then a (R 1, 2, 3); orders: b and c one (F 1), a two (F 3). a: R3 F3 needs_attention,
    # b: R1 F1 lost, c: R2 F1 hibernating. IRT revenue 400 + 150 (200 less a 50 refund).
    data = {line["segment"]: line for line in json.loads(run(shop, "--format", "json"))}
    assert data["needs_attention"] == {
        "segment": "needs_attention",
        "customers": 1,
        "customer_share_percent": "25.0",
        "currencies": [
            {
                "currency": "IRT",
                "buyers": 1,
                "orders": 2,
                "revenue": "400.00",
                "revenue_share_percent": "72.7",
                "average_order_value": "200.00",
                "average_clv": "400.00",
            }
        ],
    }
    assert data["lost"]["currencies"][0]["revenue_share_percent"] == "27.3"
    assert data["hibernating"]["currencies"][0]["currency"] == "@SUM(1)"
    assert data["hibernating"]["currencies"][0]["revenue_share_percent"] == "100.0"
    assert data["none"]["customers"] == 1 and data["none"]["currencies"] == []
    assert data["champions"]["customers"] == 0
    assert list(data)[:2] == ["champions", "loyal"]  # map order


def test_csv_is_formula_safe_and_table_shows_every_segment(shop: Path) -> None:
    rows = list(csv.reader(io.StringIO(run(shop, "--format", "csv"))))
    assert rows[0][:4] == ["segment", "customers", "customer_share_percent", "currency"]
    hibernating = next(row for row in rows if row[0] == "hibernating")
    assert hibernating[3] == "'@SUM(1)"
    table = run(shop)
    for name in ("champions", "needs_attention", "lost", "none", "@SUM(1)"):
        assert name in table
