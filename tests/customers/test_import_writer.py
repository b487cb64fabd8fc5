"""A customer import on PostgreSQL writes its batches on a thread of its own
(`customers.writer`; SQLite's are written in turn): what an import promised before still
holds on both when a write fails, or the process is killed while it writes.

Faults are real database faults: a trigger that refuses one row of the third batch, or a
row of the third batch held by another transaction while the importer is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from daemon_helpers import wait_for
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.config import CustomerDefaults
from campaigner.customers.importer import BATCH_SIZE, ImportStopped, import_csv
from campaigner.customers.loader import load_customers
from campaigner.customers.writer import BatchWriter
from campaigner.db.models import Customer

DEFAULTS = CustomerDefaults()
POISONED = f"k{2 * BATCH_SIZE + 7}"  # a row of the third batch
POISON_SQLITE = f"""
CREATE TRIGGER campaigner_test_poison BEFORE INSERT ON customers
WHEN NEW.external_id = '{POISONED}' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END
"""
POISON_PG = (
    f"""
CREATE FUNCTION campaigner_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.external_id = '{POISONED}' THEN RAISE EXCEPTION 'poisoned row'; END IF;
    RETURN NEW;
END $$
""",
    """
CREATE TRIGGER campaigner_test_poison BEFORE INSERT ON customers
FOR EACH ROW EXECUTE FUNCTION campaigner_test_poison()
""",
)


def customers_file(tmp_path: Path, batches: int) -> Path:
    path = tmp_path / "customers.csv"
    lines = ["id,first_name,phone"]
    lines += [f"k{i},N{i},0912{i:07d}" for i in range(batches * BATCH_SIZE)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored_ids(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Customer.external_id)))


def first_batches(count: int) -> set[str]:
    return {f"k{i}" for i in range(count * BATCH_SIZE)}


@pytest.fixture
def poisoned(engine: Engine) -> Iterator[None]:
    """A trigger refusing the row POISONED; dropped after the test (the PostgreSQL test
    database is shared by the session's tests)."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(POISON_SQLITE)
        else:
            for statement in POISON_PG:
                connection.exec_driver_sql(statement)
    yield
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER campaigner_test_poison")
        else:
            connection.exec_driver_sql("DROP TRIGGER campaigner_test_poison ON customers")
            connection.exec_driver_sql("DROP FUNCTION campaigner_test_poison()")


def writers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "import-writer"]


def test_a_failed_write_raises_the_databases_own_error_and_keeps_whole_batches(
    tmp_path: Path, sessions: sessionmaker[Session], poisoned: None
) -> None:
    path = customers_file(tmp_path, 4)
    threaded: list[bool] = []

    def progress(_: int) -> None:
        threaded.append(bool(writers()))

    with pytest.raises(ImportStopped, match="poisoned row") as stopped:
        import_csv(sessions, "customers", path, DEFAULTS, progress=progress)
    # A writer thread on PostgreSQL only; SQLite's batches are written in turn.
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    assert threaded and all(alive == postgres for alive in threaded)
    # Named: the file, the batch's lines, and what was committed before it.
    assert str(stopped.value).startswith(
        f"{path}: lines {2 * BATCH_SIZE + 2}–{3 * BATCH_SIZE + 1} were not written ("
    )
    assert f"2 batches were committed whole: {2 * BATCH_SIZE} rows, lines 2–" in str(stopped.value)
    # The error written in turn (the loader in the caller's transaction) is the same one.
    failure = stopped.value.__cause__
    with pytest.raises(DBAPIError) as direct, sessions.begin() as session:
        load_customers(session, [{"external_id": POISONED}], DEFAULTS, now=datetime.now(UTC))
    assert isinstance(failure, DBAPIError)
    assert type(failure) is type(direct.value)
    assert type(failure.orig) is type(direct.value.orig)
    # The batches before the failed one, each whole; nothing of the failed one or after it.
    assert stored_ids(sessions) == first_batches(2)
    assert writers() == []


@pytest.mark.parametrize("writer_thread", [True, False])
def test_the_writer_thread_can_be_chosen_and_writes_the_same(
    tmp_path: Path, sessions: sessionmaker[Session], writer_thread: bool
) -> None:
    threaded: list[bool] = []

    def progress(_: int) -> None:
        threaded.append(bool(writers()))

    path = customers_file(tmp_path, 3)
    report = import_csv(
        sessions, "customers", path, DEFAULTS, progress=progress, writer_thread=writer_thread
    )
    assert (report.inserted, report.rejected) == (3 * BATCH_SIZE, 0)
    *during, _ = threaded  # the last, after the final batch, comes when the writer is done
    assert during and all(alive == writer_thread for alive in during)
    assert stored_ids(sessions) == first_batches(3)


def test_a_writer_that_fails_first_stops_the_reader_instead_of_hanging(
    tmp_path: Path, sessions: sessionmaker[Session], poisoned: None
) -> None:
    """The writer fails on the third batch of forty: the reader hears of it at its next
    hand-off and reads no further, rather than filling a queue nobody empties."""
    path = customers_file(tmp_path, 40)
    progress: list[int] = []
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            import_csv(sessions, "customers", path, DEFAULTS, progress=progress.append)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=run)
    reader.start()
    reader.join(timeout=120)  # a deadline for a hang, not a wait for something to happen
    assert not reader.is_alive(), "the import hung after its writer failed"
    (error,) = outcome
    assert isinstance(error, ImportStopped) and isinstance(error.__cause__, DBAPIError)
    assert "poisoned row" in str(error)
    # Batches handed over: the failed third, at most one queued, one prepared meanwhile.
    assert len(progress) <= 5
    assert stored_ids(sessions) == first_batches(2)
    assert writers() == []


def test_the_import_command_names_the_database_error_of_a_failed_write(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], poisoned: None
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    path = customers_file(tmp_path, 3)
    result = CliRunner().invoke(cli, ["--config", str(config), "customers", "import", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert "poisoned row" in line
    # Which file, which lines were not written, and what the batches before hold.
    assert line.startswith(f"Error: {path}: lines {2 * BATCH_SIZE + 2}–{3 * BATCH_SIZE + 1} ")
    assert f"{2 * BATCH_SIZE} rows, lines 2–{2 * BATCH_SIZE + 1}" in line
    assert stored_ids(sessions) == first_batches(2)


@pytest.mark.slow
def test_sigkill_while_a_batch_is_written_leaves_only_whole_batches(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    """PostgreSQL: a row of the third batch is held by an open transaction of the test's, so
    the importer's writer waits inside that batch's transaction while its reader has the next
    ones queued; then the importer is killed. Only the two batches before are stored, and
    importing the file again completes it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: the importer would wait before its first batch")
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    path = customers_file(tmp_path, 6)
    command = [sys.executable, "-m", "campaigner", "--config", str(config)]
    command += ["customers", "import", str(path)]

    def backends(condition: str, **params: object) -> list[int]:
        """Server processes on the database meeting `condition`; a transaction per look,
        since one sees pg_stat_activity as it was when it first read it."""
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
        with sessions() as session:
            return list(session.execute(text(query + condition), params).scalars())

    with sessions() as holder:
        load_customers(holder, [{"external_id": POISONED}], DEFAULTS, now=datetime.now(UTC))
        importer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            blocked = wait_for(lambda: backends("wait_event_type = 'Lock'"), "the importer to wait")
        finally:
            os.kill(importer.pid, signal.SIGKILL)
            importer.wait()
        holder.rollback()  # the orphaned backend goes on, finds its client gone, and ends
    wait_for(
        lambda: not backends("pid = ANY(:pids)", pids=blocked), "the killed importer's backend"
    )
    assert stored_ids(sessions) == first_batches(2)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{2 * BATCH_SIZE} unchanged" in again.stdout
    assert stored_ids(sessions) == first_batches(6)


def test_batches_are_written_in_order_and_none_after_a_failure() -> None:
    written: list[int] = []

    def write(batch: int) -> None:
        if batch == 3:
            raise ValueError("batch 3 refused")
        written.append(batch)

    with pytest.raises(ValueError, match="batch 3 refused"), BatchWriter(write) as writer:
        for batch in range(1, 50):
            writer.put(batch)
    assert written == [1, 2]
    assert writers() == []


def test_a_reader_failure_still_writes_what_it_handed_over() -> None:
    """As before the writer had a thread: the batches read before the reader's error are
    written, and the reader's own error is the one raised."""
    written: list[int] = []
    with pytest.raises(KeyError), BatchWriter(written.append) as writer:
        writer.put(1)
        writer.put(2)
        raise KeyError("the reader's own failure")
    assert written == [1, 2]
    assert writers() == []


def test_progress_moves_as_batches_commit_not_as_they_are_read(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Regression: on PostgreSQL the progress bar counted a batch when it was handed to the
    writer thread, two batches ahead of what was committed. A row of the third of six
    batches is held by the test's open transaction: while the writer waits there, the
    progress must not have passed the second batch (a third of the file)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite writes each batch in turn, before the progress moves")
    path = customers_file(tmp_path, 6)
    size = path.stat().st_size
    progress: list[int] = []

    def backends() -> list[int]:
        query = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        with sessions() as session:
            return list(session.execute(text(query)).scalars())

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            import_csv(sessions, "customers", path, DEFAULTS, progress=progress.append)
        except BaseException as exc:
            outcome.append(exc)

    with sessions() as holder:
        load_customers(holder, [{"external_id": POISONED}], DEFAULTS, now=datetime.now(UTC))
        reader = threading.Thread(target=run)
        reader.start()
        wait_for(backends, "the importer's writer to wait on the held row")
        assert stored_ids(sessions) == first_batches(2)
        assert progress and max(progress) <= size // 3
        holder.rollback()
    reader.join(timeout=120)
    assert not reader.is_alive() and outcome == []
    assert progress[-1] == size
    assert stored_ids(sessions) == first_batches(6)


def test_cancel_lets_the_batch_being_written_end_and_begins_no_other() -> None:
    """Ctrl-C in the reader: the batch the writer is in ends (whole), the one queued behind
    it is dropped, and leaving the block waits for nothing more."""
    started, release = threading.Event(), threading.Event()
    written: list[int] = []

    def write(batch: int) -> None:
        if batch == 1:
            started.set()
            release.wait(timeout=60)
        written.append(batch)

    with pytest.raises(KeyboardInterrupt), BatchWriter(write) as writer:
        writer.put(1)
        assert started.wait(timeout=60)
        writer.put(2)  # queued while the first is written
        writer.cancel()
        release.set()
        raise KeyboardInterrupt
    assert written == [1]
    assert writers() == []
