"""Orders per second through the ingest API, in batches of 1,000 and one per request.

Runs in-process over httpx's ASGI transport (no network), on a fresh SQLite database or on
the database given with --db-url (it must be empty; it is migrated first).

    .venv/bin/python bench/ingest.py --orders 20000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from campaigner.clock import SystemClock
from campaigner.config import ServerSettings, Settings
from campaigner.db import create_engine_for, session_factory, upgrade
from campaigner.server.ingest import ingest_routes

TOKEN = "bench-token"
CUSTOMERS = 5000


def orders(start: int, count: int) -> list[dict[str, object]]:
    paid = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "id": f"o{n}",
            "customer_id": f"c{n % CUSTOMERS}",
            "total": 100000 + n,
            "paid_at": (paid + timedelta(minutes=n)).isoformat(),
        }
        for n in range(start, start + count)
    ]


async def run(db_url: str, total: int, single: int) -> None:
    engine = create_engine_for(db_url)
    upgrade(engine)
    settings = Settings(
        database={"url": db_url},
        server=ServerSettings(api_tokens=[SecretStr(TOKEN)], max_body_bytes=10_000_000),
    )
    app = Starlette(
        routes=ingest_routes(
            settings=settings, sessions=session_factory(engine), clock=SystemClock()
        )
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        people = [{"id": f"c{n}", "phone": f"0912{n:07d}"} for n in range(CUSTOMERS)]
        for start in range(0, CUSTOMERS, 1000):
            answer = await client.post(
                "/api/v1/customers", json=people[start : start + 1000], headers=headers
            )
            answer.raise_for_status()

        began = time.perf_counter()
        for start in range(0, total, 1000):
            answer = await client.post(
                "/api/v1/orders", json=orders(start, min(1000, total - start)), headers=headers
            )
            answer.raise_for_status()
        batched = total / (time.perf_counter() - began)

        began = time.perf_counter()
        for order in orders(total, single):
            (await client.post("/api/v1/orders", json=order, headers=headers)).raise_for_status()
        one_by_one = single / (time.perf_counter() - began)
    engine.dispose()
    print(f"database: {engine.dialect.name}")
    print(f"batches of 1,000: {total} orders, {batched:,.0f} orders/s")
    print(f"one per request:  {single} orders, {one_by_one:,.0f} orders/s (baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=500, help="orders sent one by one")
    parser.add_argument("--db-url", default="", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.db_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        asyncio.run(run(url, args.orders, args.single))


if __name__ == "__main__":
    main()
