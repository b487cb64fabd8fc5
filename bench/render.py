"""Rendering throughput: the dispatcher with the real renderer against a fixed text.

The demo shop (`campaigner init --demo` and its synthetic customers) is planned once at a
fixed clock into a SQLite file; each variant then drains a fresh copy of that file to a
capturing gateway, so both see exactly the same due messages. The baseline renders a fixed
text, which is what `bench/dispatch.py` measures; the difference is the cost of rendering.

    .venv/bin/python bench/render.py                      # 18,000 customers, ~500 messages
    .venv/bin/python bench/render.py --customers 30000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy.orm import Session

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings, load_settings
from campaigner.customers.demo import generate_demo
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Message
from campaigner.dispatch import Rendered
from campaigner.gateways.base import Gateway, OutgoingMessage, SendResult
from campaigner.project import create_project
from campaigner.runtime import Runtime

# 10:30 in Tehran: birthdays (10:00 local), thank-yous and referral requests are due.
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


class CaptureGateway(Gateway):
    """Accepts everything at once, so the figures are the ledger's and the renderer's."""

    name: ClassVar[str] = "capture"
    max_batch: ClassVar[int] = 50

    def __init__(self) -> None:
        super().__init__(GatewaySettings(name="capture"), webhook_url="")
        self.sent: list[OutgoingMessage] = []

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.sent.extend(batch)
        return [SendResult.accepted(m.id, f"cap-{m.id}") for m in batch]


class FixedTextRenderer:
    def render(self, session: Session, message: Message) -> Rendered:
        return Rendered(f"Hello from {message.rule} ({message.occurrence_key})", "gsm7", 1)


def build_shop(directory: Path, customers: int) -> tuple[Settings, int]:
    """The demo project with its database planned at NOW; returns settings and rows due."""
    create_project(directory, demo=True)
    settings = load_settings(directory / "config.toml")
    engine = create_engine_for(settings.database.url)
    sessions = session_factory(engine)
    clock = FixedClock(NOW)
    generate_demo(sessions, settings.customers, clock, customers=customers)
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=CaptureGateway())
    report = runtime.plan()
    runtime.close()
    engine.dispose()
    return settings, sum(result.planned for result in report.rules.values())


def drain(settings: Settings, database: Path, *, real: bool, profile: bool) -> tuple[int, float]:
    """Drain a copy of the planned database; returns messages sent and seconds taken."""
    url = f"sqlite:///{database}"
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    settings = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": url})}
    )
    runtime = Runtime.build(
        settings, clock=FixedClock(NOW), sessions=sessions, gateway=CaptureGateway()
    )
    if not real:
        runtime.dispatcher.renderer = FixedTextRenderer()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = runtime.drain()
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - started
    runtime.close()
    engine.dispose()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    assert report.failed == 0, f"{report.failed} messages failed to render"
    return report.sent, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=18_000)
    parser.add_argument("--runs", type=int, default=5, help="best of this many drains each")
    parser.add_argument("--profile", action="store_true", help="cProfile one real-render drain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings, due = build_shop(workdir / "shop", args.customers)
        planned = Path(settings.database.url.removeprefix("sqlite:///"))
        print(f"demo shop: {args.customers:,} customers, {due:,} messages due")
        results: dict[str, list[float]] = {"fixed text (baseline)": [], "real rendering": []}
        for run in range(args.runs):
            for label, real in (("fixed text (baseline)", False), ("real rendering", True)):
                copy = workdir / f"run-{run}-{real}.db"
                shutil.copyfile(planned, copy)
                sent, seconds = drain(settings, copy, real=real, profile=False)
                results[label].append(sent / seconds)
        print(f"{'renderer':<22} {'best msgs/s':>12} {'worst msgs/s':>13}")
        for label, rates in results.items():
            print(f"{label:<22} {max(rates):>12,.0f} {min(rates):>13,.0f}")
        if args.profile:
            copy = workdir / "profile.db"
            shutil.copyfile(planned, copy)
            drain(settings, copy, real=True, profile=True)


if __name__ == "__main__":
    main()
