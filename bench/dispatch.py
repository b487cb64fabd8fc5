"""End-to-end dispatch throughput: ledger -> policy -> render -> HTTP gateway -> ledger.

The messages are the sample rules' (`campaigner init`), rendered from their real templates:
two thirds birthday wishes, each issuing a coupon, a third thank-yous, each loading its
order. The capture gateway is the loopback HTTP server from the test suite, in its own
process, which answers at once; beside it, where Kannel is installed, the same drain
through a real Kannel (bench/kannel.py compares that with Kannel's own rate). Rate
limiting is off. Each mode runs in a fresh process on a fresh database, so its peak RSS
is its own. The baseline is the naive design: one row per transaction, sent one by one,
rendered by the same renderer.

    .venv/bin/python bench/dispatch.py                       # SQLite in a temp dir
    .venv/bin/python bench/dispatch.py --messages 50000 --db-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bulk_ledger import plan_sample_messages, sample_project  # noqa: E402
from kannel_stack import PASSWORD, USERNAME, KannelStack, missing_binaries  # noqa: E402
from local_gateway import gateway_for  # noqa: E402

from campaigner.clock import SystemClock  # noqa: E402
from campaigner.config import GatewaySettings  # noqa: E402
from campaigner.db import create_engine_for, session_factory, upgrade  # noqa: E402
from campaigner.db.models import Base, Message  # noqa: E402
from campaigner.gateways.base import Gateway, OutgoingMessage  # noqa: E402
from campaigner.gateways.kannel import KannelGateway  # noqa: E402
from campaigner.runtime import RuleRenderer, Runtime  # noqa: E402

MODES = {
    # name: (max_batch, max_in_flight)
    "baseline": (1, 1),
    "single": (1, 8),
    "batched": (100, 4),
    "kannel": (1, 16),  # a real Kannel on loopback
}


def fresh_database(db_url: str | None, workdir: Path) -> str:
    if db_url is None:
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        url = db_url
        engine = create_engine(url)
        with engine.begin() as connection:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"DROP TABLE IF EXISTS {tables}, alembic_version CASCADE"))
        engine.dispose()
    engine = create_engine_for(url)
    upgrade(engine)
    engine.dispose()
    return url


def naive_loop(sessions: sessionmaker[Session], port: int, renderer: RuleRenderer) -> int:
    """One row per transaction, one request per message, nothing in parallel."""
    gateway = gateway_for(port, max_batch=1)
    clock = SystemClock()
    sent = 0
    while True:
        with sessions.begin() as session:
            message = session.scalars(
                select(Message).where(Message.status == "queued").order_by(Message.id).limit(1)
            ).first()
            if message is None:
                return sent
            message.status = "sending"
            message.lease_until = clock.now() + timedelta(minutes=2)
            rendered = renderer.render(session, message)
            outgoing = OutgoingMessage(message.id, message.phone or "", rendered.text)
        [result] = gateway.send([outgoing])
        with sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.id == outgoing.id)
                .values(status="sent", provider_id=result.provider_id, sent_at=clock.now())
            )
        sent += 1


def run_mode(
    mode: str, target: str, messages: int, db_url: str | None, batch_size: int
) -> dict[str, object]:
    """`target`: the loopback gateway's port, or Kannel's sendsms URL for the kannel mode."""
    max_batch, in_flight = MODES[mode]
    with tempfile.TemporaryDirectory() as workdir:
        url = fresh_database(db_url, Path(workdir))
        gateway: Gateway
        if mode == "kannel":
            gateway = KannelGateway(
                GatewaySettings(
                    name="kannel",
                    url=target,
                    username=USERNAME,
                    password=PASSWORD,
                    sender="98100",
                    max_in_flight=in_flight,
                )
            )
        else:
            gateway = gateway_for(int(target), max_batch=max_batch, max_in_flight=in_flight)
        settings = sample_project(Path(workdir) / "shop", gateway.settings, url)
        settings = settings.model_copy(
            update={"sending": settings.sending.model_copy(update={"batch_size": batch_size})}
        )
        engine = create_engine_for(url)
        sessions = session_factory(engine)
        plan_sample_messages(sessions, messages)
        if engine.dialect.name == "postgresql":
            # A live database has statistics (autovacuum); a table filled a second ago has none.
            with engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
        runtime = Runtime.build(settings, clock=SystemClock(), sessions=sessions, gateway=gateway)
        started = time.perf_counter()
        if mode == "baseline":
            sent = naive_loop(sessions, int(target), runtime.dispatcher.renderer)  # type: ignore[arg-type]
        else:
            sent = runtime.drain().sent
        elapsed = time.perf_counter() - started
        runtime.close()
        engine.dispose()
    assert sent == messages, f"{mode}: sent {sent} of {messages}"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "messages": sent, "seconds": elapsed, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--baseline-messages", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=500, help="sending.batch_size")
    parser.add_argument("--db-url", help="a scratch database (its tables are dropped!)")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        result = run_mode(args.mode, args.target, args.messages, args.db_url, args.batch_size)
        print(json.dumps(result))
        return

    server = subprocess.Popen(
        [sys.executable, str(HERE.parent / "tests" / "local_gateway.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        kannel = None if missing_binaries() else KannelStack(Path(tmp))
        try:
            assert server.stdout is not None
            port = server.stdout.readline().strip()
            if kannel is not None:
                kannel.start("http://127.0.0.1:9/inbound")  # no inbound messages here
            header = ("mode", "batch", "in flight", "messages", "msgs/s", "peak RSS")
            print("{:<10} {:>5} {:>9} {:>9} {:>9} {:>9}".format(*header))
            for mode, (max_batch, in_flight) in MODES.items():
                if mode == "kannel" and kannel is None:
                    print("kannel     (not installed: apt-get install kannel kannel-extras)")
                    continue
                target = kannel.sendsms_url if kannel is not None and mode == "kannel" else port
                count = args.baseline_messages if mode == "baseline" else args.messages
                command = [sys.executable, __file__, "--mode", mode, "--target", target]
                command += ["--messages", str(count), "--batch-size", str(args.batch_size)]
                if args.db_url:
                    command += ["--db-url", args.db_url]
                result = json.loads(
                    subprocess.run(command, check=True, capture_output=True, text=True).stdout
                )
                rate = result["messages"] / result["seconds"]
                print(
                    f"{mode:<10} {max_batch:>5} {in_flight:>9} {result['messages']:>9} "
                    f"{rate:>9,.0f} {result['peak_rss_mb']:>6.0f} MB",
                    flush=True,
                )
        finally:
            if kannel is not None:
                kannel.stop()
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
