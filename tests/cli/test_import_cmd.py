"""`campaigner customers import` as an operator meets it: a summary that stays readable
whatever the number of bad rows, and an import stopped part-way (the database connection
lost, Ctrl-C) that says which file and lines were not written and what was committed.

The faults are real: the importer's PostgreSQL backend ended with `pg_terminate_backend`
from another connection, and SIGINT sent to a `campaigner` process.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from daemon_helpers import wait_for
from sqlalchemy import Connection, Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.cli.context import AppContext
from campaigner.cli.import_cmd import run_import, run_imports
from campaigner.clock import SystemClock
from campaigner.config import CustomerDefaults
from campaigner.customers.importer import BATCH_SIZE, ImportStopped
from campaigner.customers.loader import load_customers
from campaigner.db.models import Customer, Order, OrderItem
from campaigner.segments import SegmentMap
from campaigner.segments.daily import daily, rescore_loaded

POSTGRESQL = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def config_for(tmp_path: Path, db_url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return config


def segments(session: Session) -> dict[str, str]:
    rows = session.execute(select(Customer.external_id, Customer.segment))
    return {key: segment for key, segment in rows}


def customers_file(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "customers.csv"
    lines = ["id,first_name,phone"] + [f"k{i},N{i},0912{i:07d}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Customer.external_id)))


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0


def first_rows(rows: int) -> set[str]:
    return {f"k{i}" for i in range(rows)}


def importer(config: Path, path: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "campaigner", "--config", str(config)]
    return subprocess.Popen(
        [*command, "customers", "import", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def backends(sessions: sessionmaker[Session], condition: str) -> list[int]:
    """Other server processes on the database meeting `condition`; a transaction per look,
    since one sees pg_stat_activity as it was when it first read it."""
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND "
    )
    with sessions() as session:
        return list(session.execute(text(query + condition)).scalars())


def test_the_summary_counts_rejections_by_kind_with_their_first_lines(
    tmp_path: Path, db_url: str
) -> None:
    """Regression: one summary line per distinct bad value (the value is in the reason), so
    a file of bad phones printed a line per row. The reject file keeps each row's reason."""
    path = tmp_path / "customers.csv"
    lines = ["id,first_name,phone"] + [f"p{i},N,09{i:05d}" for i in range(2000)]
    path.write_text("\n".join(lines) + "\nok,N,09121234567\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(config_for(tmp_path, db_url)), "customers", "import", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{path}: 2001 rows: 1 new, 0 updated, 0 unchanged, 2000 rejected "
        f"(see {path.with_suffix('.rejects.csv')})",
        "     2000 × invalid phone number … (lines 2, 3, 4, …)",
    ]
    rejects = path.with_suffix(".rejects.csv").read_text(encoding="utf-8").splitlines()
    assert len(rejects) == 1 + 2000
    assert "'0901999'" in rejects[-1]


@pytest.mark.parametrize("command", [["customers", "import"], ["orders", "import"]])
def test_an_empty_file_is_one_line_saying_so(
    tmp_path: Path, db_url: str, command: list[str]
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf")  # what Excel's "CSV UTF-8" saves of an empty sheet
    config = str(config_for(tmp_path, db_url))
    result = CliRunner().invoke(cli, ["--config", config, *command, str(path)])
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: {path}: the file is empty; expected a header line")


def test_ctrl_c_while_segments_are_recomputed_says_the_rows_are_in_and_what_updates_them(
    tmp_path: Path,
    db_url: str,
    sessions: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: Ctrl-C after the last batch, while value segments were recomputed, printed
    click's bare "Aborted!": the operator could not tell that the orders were in, nor that the
    segments were not. The interrupt is raised from inside the recomputation, after its
    statements ran, as a real Ctrl-C there would; they roll back."""
    customers = tmp_path / "customers.csv"
    customers.write_text("external_id,phone\na,09120000001\nb,09120000002\n", "utf-8")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "external_id,customer_id,total,paid_at\n"
        "o1,a,100,2025-01-01T10:00:00Z\n"
        "o2,b,200,2026-03-01T10:00:00Z\n"
        "o3,b,300,2026-03-10T10:00:00Z\n",
        "utf-8",
    )

    def interrupted(session: Session, segment_map: SegmentMap, now: datetime, main: str) -> None:
        rescore_loaded(session, segment_map, now, main)
        raise KeyboardInterrupt

    app = AppContext(config_path=str(config_for(tmp_path, db_url)))
    try:
        run_import(app, "customers", customers, (), None)
        capsys.readouterr()
        try:
            run_import(app, "orders", orders, (), None, rescore_segments=interrupted)
        except click.exceptions.Exit as stopped:
            exit_code = stopped.exit_code
        except KeyboardInterrupt:  # uncaught, it would stop the whole test run
            pytest.fail("the interrupt escaped: click's bare 'Aborted!'")
    finally:
        app.close()
    assert exit_code == 130
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{orders}: 3 rows: 3 new, 0 updated, 0 unchanged, 0 rejected"]
    assert err.splitlines() == [
        f"{orders}: interrupted after the import, while value segments were recomputed. The "
        "import itself finished: 1 batch was committed whole: 3 rows, lines 2–4. The segments "
        "of the customers it touched were not updated; `campaigner run` updates them in its "
        "segments pass (when it starts, then every [segments] daily_interval)."
    ]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 3
        assert segments(session) == {"a": "none", "b": "none"}
    # What the message promises: the daemon's segments pass brings them up to date.
    with sessions.begin() as session:
        daily(session, SegmentMap.standard(), SystemClock().now(), "IRT")
    with sessions() as session:
        assert segments(session) == {"a": "lost", "b": "hibernating"}


def test_a_failed_segments_pass_after_the_import_says_the_rows_are_in(
    tmp_path: Path,
    db_url: str,
    sessions: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: on a shop without a first pass the import runs it (a long pass over
    everybody); a database error in it (a lock timeout, a full disk) escaped as a bare
    error without the summary, and the operator could not tell that every row was in and
    only the segments were not."""
    orders_file = tmp_path / "orders.csv"
    orders_file.write_text(
        "external_id,customer_id,total,paid_at\n"
        "o1,a,100,2025-01-01T10:00:00Z\n"
        "o2,b,200,2026-03-01T10:00:00Z\n",
        "utf-8",
    )

    def failing(session: Session, segment_map: SegmentMap, now: datetime, main: str) -> None:
        rescore_loaded(session, segment_map, now, main)
        session.execute(text("SELECT no_such_column FROM customer_scores"))

    app = AppContext(config_path=str(config_for(tmp_path, db_url)))
    try:
        with sessions.begin() as session:
            load_customers(
                session,
                [{"external_id": "a", "first_name": "مریم"}, {"external_id": "b"}],
                CustomerDefaults(),
                now=SystemClock().now(),
            )
        try:
            run_import(app, "orders", orders_file, (), None, rescore_segments=failing)
        except click.exceptions.Exit as stopped:
            exit_code = stopped.exit_code
    finally:
        app.close()
    assert exit_code == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{orders_file}: 2 rows: 2 new, 0 updated, 0 unchanged, 0 rejected"]
    assert err.startswith(
        f"{orders_file}: value segments could not be recomputed after the import ("
    )
    assert "The import itself finished: 1 batch was committed whole: 2 rows, lines 2–3." in err
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 2
        assert segments(session) == {"a": "none", "b": "none"}


def two_batches_of_orders(tmp_path: Path, sessions: sessionmaker[Session]) -> tuple[Path, Path]:
    """An orders file of two batches, the last order alone in the second, and a file of
    line items for an order of the first."""
    with sessions.begin() as session:
        load_customers(session, [{"external_id": "a"}], CustomerDefaults(), now=SystemClock().now())
    orders = tmp_path / "orders.csv"
    rows = [f"o{i},a,100,2026-03-01T10:00:00Z" for i in range(BATCH_SIZE + 1)]
    orders.write_text("external_id,customer_id,total,paid_at\n" + "\n".join(rows) + "\n", "utf-8")
    items = tmp_path / "order items.csv"
    items.write_text("order_id,name,quantity\no0,چای ماسالا,1\n", "utf-8")
    return orders, items


def on_the_second_batch(engine: Engine, act: Callable[[str], str]) -> None:
    """Runs what `act` makes of the statement that writes the second batch of orders instead
    of it: the first to insert orders once a transaction that inserted some has committed."""
    inserted = committed = False

    def commit(_connection: Connection) -> None:
        nonlocal committed
        committed = committed or inserted

    def execute(
        _connection: Connection, _cursor: object, statement: str, parameters: object, *_: object
    ) -> tuple[str, object]:
        nonlocal inserted
        if statement.startswith("INSERT INTO orders"):
            inserted = True
            if committed:
                statement = act(statement)
        return statement, parameters

    event.listen(engine, "commit", commit)
    event.listen(engine, "before_cursor_execute", execute, retval=True)


def items_not_imported(tmp_path: Path, items: Path) -> str:
    """What a stop in the orders part says of the items file after them."""
    config = str(tmp_path / "config.toml")
    alone = shlex.join(
        ["campaigner", "--config", config, "orders", "import", "--items", str(items)]
    )
    return (
        f"The line items in {items} were not imported; `{alone}` imports them alone, once their "
        "orders are in."
    )


def import_items_alone(message: str) -> None:
    """Run the command at the end of `message` that imports the items file alone."""
    command = shlex.split(message.rsplit("`", 2)[-2])
    assert command[0] == "campaigner"
    result = CliRunner().invoke(cli, command[1:])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("where", ["writing the second batch", "recomputing segments"])
def test_ctrl_c_in_the_orders_part_says_the_orders_are_in_and_the_items_file_was_not_imported(
    tmp_path: Path,
    db_url: str,
    sessions: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """Regression: Ctrl-C while `orders import FILE --items ITEMS` imported the orders said
    what of the orders was in, and nothing of the items file, which was never read. The
    interrupt is raised as a real Ctrl-C would be: by the database driver's call writing the
    second batch's orders, or from inside the recomputation after the last batch."""
    orders, items = two_batches_of_orders(tmp_path, sessions)

    def ctrl_c(_statement: str) -> str:
        raise KeyboardInterrupt

    def interrupted(session: Session, segment_map: SegmentMap, now: datetime, main: str) -> None:
        rescore_loaded(session, segment_map, now, main)
        raise KeyboardInterrupt

    app = AppContext(config_path=str(config_for(tmp_path, db_url)))
    try:
        if where == "writing the second batch":
            on_the_second_batch(app.engine, ctrl_c)
        with pytest.raises(click.exceptions.Exit) as stopped:
            run_imports(app, "orders", orders, items, (), None, rescore_segments=interrupted)
    finally:
        app.close()
    assert stopped.value.exit_code == 130
    out, err = capsys.readouterr()
    orders_in = BATCH_SIZE if where == "writing the second batch" else BATCH_SIZE + 1
    if where == "writing the second batch":
        assert out == ""
        in_so_far = (
            f"{orders}: interrupted; 1 batch was committed whole: {BATCH_SIZE} rows, lines "
            f"2–{BATCH_SIZE + 1}. Importing the file again completes it."
        )
    else:
        assert out.splitlines() == [
            f"{orders}: {BATCH_SIZE + 1} rows: {BATCH_SIZE + 1} new, 0 updated, 0 unchanged, "
            "0 rejected"
        ]
        in_so_far = (
            f"{orders}: interrupted after the import, while value segments were recomputed. "
            f"The import itself finished: 2 batches were committed whole: {BATCH_SIZE + 1} "
            f"rows, lines 2–{BATCH_SIZE + 2}. The segments of the customers it touched were "
            "not updated; `campaigner run` updates them in its segments pass (when it starts, "
            "then every [segments] daily_interval)."
        )
    (line,) = err.splitlines()
    assert line == f"{in_so_far} {items_not_imported(tmp_path, items)}"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == orders_in
        assert session.scalar(select(func.count()).select_from(OrderItem)) == 0
    # What the message promises: its command imports the items file alone.
    import_items_alone(line)
    with sessions() as session:
        assert session.scalars(select(OrderItem.name)).all() == ["چای ماسالا"]


@pytest.mark.parametrize("where", ["writing the second batch", "recomputing segments"])
def test_a_database_error_in_the_orders_part_says_the_orders_are_in_and_the_items_were_not(
    tmp_path: Path,
    db_url: str,
    sessions: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """Regression: the database refusing the orders of `orders import FILE --items ITEMS`
    (a full disk, a lock timeout) said what of the orders was in, and nothing of the items
    file, which was never read. The database refuses for real: the second batch's statement
    names a table it does not have, or so does one after the recomputation's."""
    orders, items = two_batches_of_orders(tmp_path, sessions)
    orders_in = BATCH_SIZE if where == "writing the second batch" else BATCH_SIZE + 1

    def refused(statement: str) -> str:
        return statement.replace("INSERT INTO orders", "INSERT INTO no_such_table", 1)

    def failing(session: Session, segment_map: SegmentMap, now: datetime, main: str) -> None:
        rescore_loaded(session, segment_map, now, main)
        session.execute(text("SELECT no_such_column FROM customer_scores"))

    app = AppContext(config_path=str(config_for(tmp_path, db_url)))
    try:
        if where == "writing the second batch":
            on_the_second_batch(app.engine, refused)
            with pytest.raises(ImportStopped) as error:
                run_imports(app, "orders", orders, items, (), None)
            message = str(error.value)
            assert message.startswith(
                f"{orders}: lines {BATCH_SIZE + 2}–{BATCH_SIZE + 2} were not written ("
            )
            in_so_far = (
                f"before them, 1 batch was committed whole: {BATCH_SIZE} rows, lines "
                f"2–{BATCH_SIZE + 1}. Importing the file again completes it."
            )
        else:
            with pytest.raises(click.exceptions.Exit) as stopped:
                run_imports(app, "orders", orders, items, (), None, rescore_segments=failing)
            assert stopped.value.exit_code == 1
            (message,) = capsys.readouterr().err.splitlines()
            assert message.startswith(
                f"{orders}: value segments could not be recomputed after the import ("
            )
            in_so_far = (
                f"The import itself finished: 2 batches were committed whole: {BATCH_SIZE + 1} "
                f"rows, lines 2–{BATCH_SIZE + 2}. The segments of the customers it touched "
                "were not updated; `campaigner run` updates them in its segments pass (when it "
                "starts, then every [segments] daily_interval)."
            )
    finally:
        app.close()
    assert message.endswith(f"{in_so_far} {items_not_imported(tmp_path, items)}")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == orders_in
        assert session.scalar(select(func.count()).select_from(OrderItem)) == 0
    import_items_alone(message)
    with sessions() as session:
        assert session.scalars(select(OrderItem.name)).all() == ["چای ماسالا"]


@POSTGRESQL
@pytest.mark.slow
def test_a_connection_lost_mid_file_names_the_file_the_lines_and_what_was_committed(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Regression: the error named the database's complaint only. A row of the third batch
    is held by the test's open transaction, so the importer's writer waits inside that
    batch; its backend is then ended with pg_terminate_backend from another connection."""
    path = customers_file(tmp_path, 6 * BATCH_SIZE)
    held = f"k{2 * BATCH_SIZE + 7}"
    with sessions() as holder:
        load_customers(holder, [{"external_id": held}], CustomerDefaults(), now=SystemClock().now())
        process = importer(config_for(tmp_path, db_url), path)
        try:
            blocked = wait_for(
                lambda: backends(sessions, "wait_event_type = 'Lock'"), "the importer to wait"
            )
            with sessions() as admin:
                for pid in blocked:
                    admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            _, err = process.communicate(timeout=120)
        finally:
            process.kill()
        holder.rollback()
    assert process.returncode == 1, err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("Error: ")]
    first, last = 2 * BATCH_SIZE + 2, 3 * BATCH_SIZE + 1
    assert line.startswith(f"Error: {path}: lines {first}–{last} were not written (")
    assert "terminating connection due to administrator command" in line
    assert line.endswith(
        f"before them, 2 batches were committed whole: {2 * BATCH_SIZE} rows, lines "
        f"2–{2 * BATCH_SIZE + 1}. Importing the file again completes it."
    )
    assert stored(sessions) == first_rows(2 * BATCH_SIZE)


@pytest.mark.slow
def test_ctrl_c_stops_promptly_saying_what_was_committed_and_leaves_whole_batches(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Regression: Ctrl-C printed click's "Aborted!" and no word of what was imported, after
    the writer thread had written every batch queued. SIGINT goes to a real `campaigner`
    process once a batch has committed, while it reads and writes the rest (on PostgreSQL
    with its writer thread, on SQLite in turn)."""
    path = customers_file(tmp_path, 40 * BATCH_SIZE)
    process = importer(config_for(tmp_path, db_url), path)
    try:
        wait_for(lambda: count(sessions) >= BATCH_SIZE, "a first batch to commit", every=0.02)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)  # a deadline for a hang, not a wait
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert took < 10, f"{took:.1f} s from Ctrl-C to exit"
    assert "Traceback" not in err and "Aborted" not in err
    rows = count(sessions)
    batches = rows // BATCH_SIZE
    assert rows == batches * BATCH_SIZE < 40 * BATCH_SIZE  # whole batches, not the file
    assert stored(sessions) == first_rows(rows)
    assert err.strip().splitlines()[-1] == (
        f"{path}: interrupted; {batches} batch{'es were' if batches > 1 else ' was'} "
        f"committed whole: {rows} rows, lines 2–{rows + 1}. Importing the file again "
        "completes it."
    )
    assert out == ""


@POSTGRESQL
@pytest.mark.slow
def test_ctrl_c_while_the_writer_waits_on_a_lock_stops_at_once_and_rolls_that_batch_back(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Regression: the writer thread waiting on a row another transaction holds kept the
    process waiting after Ctrl-C for as long as that transaction lasted. The test holds a
    row of the third batch and never lets go before the importer has exited."""
    path = customers_file(tmp_path, 6 * BATCH_SIZE)
    held = f"k{2 * BATCH_SIZE + 7}"
    with sessions() as holder:
        load_customers(holder, [{"external_id": held}], CustomerDefaults(), now=SystemClock().now())
        process = importer(config_for(tmp_path, db_url), path)
        try:
            wait_for(lambda: backends(sessions, "wait_event_type = 'Lock'"), "the importer to wait")
            process.send_signal(signal.SIGINT)
            try:
                _, err = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail("the importer still waited on the held row 30 s after Ctrl-C")
        finally:
            process.kill()
        holder.rollback()
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        f"{path}: interrupted; 2 batches were committed whole: {2 * BATCH_SIZE} rows, lines "
        f"2–{2 * BATCH_SIZE + 1}. Importing the file again completes it."
    )
    assert stored(sessions) == first_rows(2 * BATCH_SIZE)
