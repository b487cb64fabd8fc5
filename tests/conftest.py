"""Shared fixtures: both database backends, a fixed clock, settings, a capturing gateway.

Every test that takes `engine` or `sessions` runs twice: on SQLite and on the PostgreSQL at
127.0.0.1:5432. PostgreSQL tests skip (with the reason shown) only where no server answers;
with CAMPAIGNER_REQUIRE_POSTGRES=1 (set by CI) an unreachable server is a failure instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
import respx
from console_site import ConsoleSite
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.customers.loader import refresh_customer_stats
from campaigner.db import create_engine_for, session_factory, upgrade
from campaigner.db.models import Base, Customer, Order
from campaigner.gateways.base import Gateway, OutgoingMessage, SendResult
from campaigner.logs import NOISY_LOGGERS
from campaigner.masking import registry
from campaigner.rules.loader import RuleProblem
from campaigner.rules.models import Rule
from campaigner.runtime import Runtime

# The daemon tests' helpers (a shop on disk, `campaigner run` in its own process) also serve
# the chaos suite in tests/chaos; the shops' documented webhook payloads (tests/server) also
# serve the connector's tests.
sys.path.insert(0, str(Path(__file__).parent / "daemon"))
sys.path.insert(0, str(Path(__file__).parent / "server"))

PG_ADMIN_URL = os.environ.get(
    "CAMPAIGNER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("CAMPAIGNER_REQUIRE_POSTGRES") == "1"
MARIADB_ADMIN_URL = os.environ.get(
    "CAMPAIGNER_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
)
REQUIRE_MARIADB = os.environ.get("CAMPAIGNER_REQUIRE_MARIADB") == "1"


def _unreachable(url: str, server: str) -> str | None:
    """Why `server` at `url` cannot be used, or None when it answers."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"{server} not reachable at {url}: {type(exc).__name__}"
    return None


def _require(unavailable: str | None, strict: bool, variable: str) -> None:
    """Skip (with the reason shown) without the server, unless CI says it must be there."""
    if unavailable:
        if strict:
            pytest.fail(f"{unavailable} ({variable}=1)")
        pytest.skip(unavailable)


PG_UNAVAILABLE = _unreachable(PG_ADMIN_URL, "PostgreSQL")


def create_pg_database(name: str | None = None) -> str:
    """A new, empty PostgreSQL database; returns its URL. Parallel runs never collide.
    `name` recreates one a test dropped."""
    name = name or f"campaigner_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def alter_pg_database(url: str, clause: str) -> None:
    """`ALTER DATABASE <its name> <clause>`, then end every other session on it so that the
    change reaches the clients at once (they reconnect): a PostgreSQL fault, as a daemon sees it."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" {clause}'))
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    admin.dispose()


def require_postgres() -> None:
    _require(PG_UNAVAILABLE, REQUIRE_PG, "CAMPAIGNER_REQUIRE_POSTGRES")


MARIADB_UNAVAILABLE = _unreachable(MARIADB_ADMIN_URL, "MariaDB")


def require_mariadb() -> None:
    _require(MARIADB_UNAVAILABLE, REQUIRE_MARIADB, "CAMPAIGNER_REQUIRE_MARIADB")


def create_mariadb_database(name: str | None = None) -> str:
    """A new, empty MariaDB database (utf8mb4); returns its URL. `name` recreates one a test
    dropped."""
    name = name or f"campaigner_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(MARIADB_ADMIN_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    return MARIADB_ADMIN_URL.rsplit("/", 1)[0] + "/" + name + "?charset=utf8mb4"


def drop_mariadb_database(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = create_engine(MARIADB_ADMIN_URL)
    with admin.begin() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A new, empty MariaDB database for one test, dropped after it."""
    require_mariadb()
    url = create_mariadb_database()
    yield url
    drop_mariadb_database(url)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the whole run, emptied before each test."""
    require_postgres()
    url = create_pg_database()
    engine = create_engine_for(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_engine_for(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "campaigner.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def impatient_sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """PostgreSQL sessions that give up a lock wait after 2 s (LockNotAvailable) instead of
    waiting: a test of code that must not wait fails there instead of hanging."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): no lock to wait on alone")
    url = make_url(db_url).update_query_dict({"options": "-c lock_timeout=2000"})
    engine = create_engine_for(url.render_as_string(hide_password=False))
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    # 06:30 in Tehran on the last day of 1404 (Esfand 29): a useful place for calendar tests.
    return FixedClock(datetime(2026, 3, 20, 3, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "paths": {"rules": str(tmp_path / "rules"), "templates": str(tmp_path / "templates")},
        }
    )


class CaptureGateway(Gateway):
    """Accepts everything and remembers it, like a phone that never misses a message."""

    name: ClassVar[str] = "capture"
    max_batch: ClassVar[int] = 50

    def __init__(self, settings: GatewaySettings | None = None, *, webhook_url: str = "") -> None:
        super().__init__(settings or GatewaySettings(name="capture"), webhook_url=webhook_url)
        self.sent: list[OutgoingMessage] = []

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.sent.extend(batch)
        return [SendResult.accepted(m.id, f"cap-{m.id}") for m in batch]


class FixedRules:
    """What the runtime's planning asks of a rulebook, holding rules as given: also rules
    the rule file checks would refuse, to show what the engine does if one slips through."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.problems: list[RuleProblem] = []

    def enabled(self) -> list[Rule]:
        return [rule for rule in self.rules.values() if rule.enabled]

    def names(self) -> list[str]:
        return list(self.rules)

    def get(self, name: str) -> Rule | None:
        return self.rules.get(name)


@pytest.fixture
def capture_gateway() -> CaptureGateway:
    return CaptureGateway()


THANK_YOU_RULE = (
    'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\ntransactional = true\n'
)


def add_paid_order(
    sessions: sessionmaker[Session], clock: FixedClock, n: int, *, first_name: str = ""
) -> None:
    """Customer `c<n>` (consenting, locale fa) with order `o<n>`, paid three hours ago."""
    with sessions.begin() as session:
        customer = Customer(
            external_id=f"c{n}",
            first_name=first_name,
            phone=f"+98912{n:07d}",
            locale="fa",
            marketing_consent=True,
        )
        session.add(customer)
        session.flush()
        paid_at = clock.now() - timedelta(hours=3)
        session.add(
            Order(external_id=f"o{n}", customer_id=customer.id, total=Decimal(1), paid_at=paid_at)
        )
        session.flush()
        refresh_customer_stats(session, [customer.id])


class Project:
    """rules/, templates/ and a shop in the test database, run by a real Runtime (real
    rulebook, capturing gateway) at the fixed clock moved into the send window."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], clock: FixedClock):
        self.settings, self.sessions, self.clock = settings, sessions, clock
        clock.advance(timedelta(hours=5))  # 11:30 in Tehran: inside the send window
        settings.paths.rules.mkdir()
        settings.paths.templates.mkdir()
        self.write_rule(THANK_YOU_RULE)
        self.write_template("thank_you.j2", "Thanks {{ first_name }}")
        self.gateway = CaptureGateway()
        self.orders = 0

    def write_rule(self, text: str) -> None:
        (self.settings.paths.rules / "thank_you.toml").write_text(text, encoding="utf-8")

    def write_template(self, name: str, text: str) -> None:
        (self.settings.paths.templates / name).write_text(text, encoding="utf-8")

    def runtime(self) -> Runtime:
        return Runtime.build(
            self.settings, clock=self.clock, sessions=self.sessions, gateway=self.gateway
        )

    def paid_order(self, first_name: str) -> None:
        self.orders += 1
        add_paid_order(self.sessions, self.clock, self.orders, first_name=first_name)

    def send_due(self, runtime: Runtime) -> list[str]:
        before = len(self.gateway.sent)
        runtime.plan()
        runtime.drain()
        return [message.text for message in self.gateway.sent[before:]]


@pytest.fixture
def project(settings: Settings, sessions: sessionmaker[Session], clock: FixedClock) -> Project:
    return Project(settings, sessions, clock)


@pytest.fixture
def site(project: Project) -> ConsoleSite:
    """The web console over `project`, with a user of every role (named after the role)."""
    return ConsoleSite(project)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """CLI tests configure logging for the whole process (`simulate` quiets "campaigner");
    undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {name: logging.getLogger(name).level for name in (*NOISY_LOGGERS, "campaigner")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in named.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture(autouse=True)
def _restore_secrets() -> Iterator[None]:
    """Secrets registered by a test (gateways, CLI settings) are forgotten after it."""
    saved = registry.snapshot()
    yield
    registry.restore(saved)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A local port where connections are refused: bound (so nothing else takes it) but not
    listening. A database or source "that cannot be reached", without waiting for a timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never says a word: a database server that
    hangs (overloaded, or behind a network that drops its answers) rather than refuses."""
    accepted: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def accept() -> None:
            with suppress(OSError):  # the listening socket closed: the test is over
                while True:
                    accepted.append(server.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        yield int(server.getsockname()[1])
    for connection in accepted:
        connection.close()


@pytest.fixture
def router() -> respx.MockRouter:
    """A fake HTTP provider: give gateways `httpx.MockTransport(router.handler)`."""
    return respx.MockRouter(assert_all_called=False)
