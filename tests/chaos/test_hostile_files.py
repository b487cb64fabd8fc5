"""Hostile rules and templates beside a healthy rule, in a real `campaigner run` (issue 12).

Every rule file and template that hung, crashed or silenced the daemon sits in rules/ while
the thank-you rule keeps sending; `rules check` names each one within seconds; a template
broken or runaway on disk while the daemon runs never reaches a customer; SIGTERM is
honoured within `stop_timeout` while a runaway template is being rendered.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import create_pg_database, drop_pg_database, require_postgres
from daemon_helpers import THANK_YOU_RULE, Shop, daemons, wait_for
from sqlalchemy import select

from campaigner.db.models import Message

pytestmark = pytest.mark.slow

NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
# Slow within every limit but time: 99,000 iterations of ten scans of 10,000 characters.
SLOW_LOOP = (
    "{% for i in range(99000) %}{% if s.count('a') + s.count('b') + s.count('c') + "
    "s.count('d') + s.count('e') + s.count('f') + s.count('g') + s.count('h') + s.count('i') + "
    "s.count('j') > 99999 %}x{% endif %}{% endfor %}"
)
SLOW = "{% set s = 'ab' * 5000 %}" + SLOW_LOOP

# File name in rules/ -> (its text, what `rules check` must say about it).
HOSTILE_RULES = {
    "birthday_400d.toml": (
        'trigger = "birthday"\ntemplate = "thank_you.j2"\nmax_lateness = "400d"\n',
        "max_lateness: must be at most 366d",
    ),
    "orders_abc.toml": (
        THANK_YOU_RULE
        + '[audience]\nwhere = [{ field = "orders_count", op = ">", value = "abc" }]\n',
        "orders_count takes a number",
    ),
    "delay_999999999d.toml": (
        THANK_YOU_RULE.replace('"2h"', '"999999999d"'),
        "delay: too long: at most 3650d",
    ),
    "delay_9999999999d.toml": (
        THANK_YOU_RULE.replace('"2h"', '"9999999999d"'),
        "delay: too long: at most 3650d",
    ),
    "priority_2_70.toml": (
        THANK_YOU_RULE + f"priority = {2**70}\n",
        "priority: must be <= 1000000",
    ),
    "inactive_days.toml": (
        'trigger = "win_back"\ntemplate = "thank_you.j2"\ninactive_days = 999999999999\n',
        "inactive_days: must be <= 3650",
    ),
    "deep.toml": ("a = " + "[" * 5000 + "]" * 5000 + "\n", "TOML nested too deeply"),
}

# Rule name -> (its template, what `rules check` must say about it).
HOSTILE_TEMPLATES = {
    "loops": (NESTED_LOOPS, "template_limit: more than 100,000 loop iterations"),
    "index": ("{{ '{0}'.format() }}", "IndexError"),
    "self_include": ('{% include "self_include.j2" %}', "includes or calls itself without end"),
    "memory": ("{{ 'a' * 10**10 }}", "template_limit: a repetition of 10,000,000,000"),
    "huge_sms": ("{{ 'a' * 200000 }}", "template_limit: a repetition of 200,000"),
    "pop": ("{{ {}.pop('missing') }}", "KeyError"),
}


def file_shop(tmp_path: Path, db_url: str, **messages: object) -> tuple[Shop, Path]:
    """The thank-you rule, messages written to sent.jsonl.

    Files are watched every 0.2 s, so a task's health bound (5 intervals: 1 s) would be
    shorter than a reload that checks the hostile templates on a loaded machine (load 20 on
    2 cores in CI). The bounds are 100 intervals here; a task that fails is still unhealthy
    after 3 failures in a row, which is what these tests watch for."""
    sent = tmp_path / "sent.jsonl"
    shop = Shop(
        tmp_path,
        db_url,
        {"name": "file", "path": str(sent)},
        daemon={"watch_interval": 0.2, "stop_timeout": 5, "unhealthy_after_intervals": 100},
        messages=messages,
    ).write()
    return shop, sent


def hostile_shop(tmp_path: Path, db_url: str) -> tuple[Shop, Path]:
    """The thank-you rule beside every hostile rule file and template."""
    shop, sent = file_shop(tmp_path, db_url)
    templates = tmp_path / "templates" / "messages"
    for name, (text, _) in HOSTILE_RULES.items():
        (shop.rules / name).write_text(text)
    for name, (text, _) in HOSTILE_TEMPLATES.items():
        (shop.rules / f"{name}.toml").write_text(
            THANK_YOU_RULE.replace("thank_you.j2", f"{name}.j2")
        )
        (templates / f"{name}.j2").write_text(text)
    os.mkfifo(shop.rules / "fifo.toml")
    (shop.rules / "zero.toml").symlink_to("/dev/zero")
    return shop, sent


def sent_texts(sent: Path) -> list[str]:
    if not sent.exists():
        return []
    return [json.loads(line)["text"] for line in sent.read_text().splitlines()]


def thanks(first: int, last: int) -> list[str]:
    return [f"Thanks Sara{n} for order o{n}" for n in range(first, last + 1)]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'campaigner.db'}"
        return
    require_postgres()
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_rules_check_names_every_hostile_file_within_seconds(tmp_path: Path, db_url: str) -> None:
    # Seconds of CPU, not of the wall clock, which a loaded machine (CI) stretches: a runaway
    # template burns CPU, and a read that blocks (a FIFO) is caught by the run's timeout.
    shop, _ = hostile_shop(tmp_path, db_url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = shop.run("rules", "check", timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name, (_, message) in HOSTILE_RULES.items():
        assert any(name in line and message in line for line in lines), (name, lines)
    for name, (_, message) in HOSTILE_TEMPLATES.items():
        assert any(f"{name}.j2" in line and message in line for line in lines), (name, lines)
    for name, kind in (("fifo.toml", "a FIFO"), ("zero.toml", "a device")):
        assert any(name in line and f"not a regular file ({kind})" in line for line in lines)
    assert not any("thank_you" in line for line in lines), lines
    assert elapsed < 30, f"rules check took {elapsed:.0f}s of CPU"


def test_the_daemon_keeps_sending_beside_hostile_rules_and_templates(
    tmp_path: Path, db_url: str
) -> None:
    shop, sent = hostile_shop(tmp_path, db_url)
    template = tmp_path / "templates" / "messages" / "thank_you.j2"
    shop.add_paid_orders(3)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        body = daemon.wait_healthy()
        wait_for(lambda: sent_texts(sent) == thanks(1, 3), "the first thank-yous")
        errors = "\n".join(body["rule_errors"])
        for name in [*HOSTILE_RULES, *(f"{n}.j2" for n in HOSTILE_TEMPLATES)]:
            assert name in errors, name
        status = shop.run("status")
        assert status.returncode == 0, status.stderr
        assert "rule error" in status.stdout

        # A thank_you.j2 broken while the daemon runs: kept, reported, never used.
        template.write_text("Thanks {{ first_name }")
        wait_for(
            lambda: any("thank_you.j2" in e for e in daemon.healthz()[1]["rule_errors"]),
            "the broken template to be reported",
        )
        shop.add_paid_orders(2)
        wait_for(lambda: sent_texts(sent) == thanks(1, 5), "thank-yous from the kept template")

        # A runaway one, reloaded by SIGHUP in the daemon's main thread: bounded, kept.
        template.write_text(NESTED_LOOPS)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "template_limit" in daemon.log(), "the runaway template to be named")
        shop.add_paid_orders(1)
        wait_for(lambda: sent_texts(sent) == thanks(1, 6), "thank-yous from the kept template")
        assert daemon.healthz()[0] == 200
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
    with shop.sessions() as sessions, sessions() as session:
        assert set(session.scalars(select(Message.status))) == {"sent"}


def reload_and_stop(shop: Shop, tmp_path: Path, template_text: str) -> float:
    """SIGHUP with `template_text` in thank_you.j2, SIGTERM while it is being checked;
    seconds from SIGTERM to exit."""
    template = tmp_path / "templates" / "messages" / "thank_you.j2"
    with daemons(shop, tmp_path) as start:
        daemon = start(CAMPAIGNER_DAEMON__WATCH_INTERVAL="3600")  # only SIGHUP reloads
        daemon.wait_healthy()
        template.write_text(template_text)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloading" in daemon.log(), "the reload to start")
        time.sleep(1)  # the reload is now rendering the template's sample
        stopped = time.monotonic()
        assert daemon.stop(timeout=60) == 0
        return time.monotonic() - stopped


def test_sigterm_is_honoured_after_a_runaway_template_is_reloaded(tmp_path: Path) -> None:
    shop, _ = file_shop(tmp_path, f"sqlite:///{tmp_path / 'campaigner.db'}")
    assert reload_and_stop(shop, tmp_path, NESTED_LOOPS) < 5 + 3


def test_sigterm_is_honoured_within_stop_timeout_during_a_long_render(tmp_path: Path) -> None:
    shop, _ = file_shop(
        tmp_path, f"sqlite:///{tmp_path / 'campaigner.db'}", render_timeout_seconds=20
    )
    # The render may take 20 s; stop waits at most stop_timeout (5 s) for it.
    assert reload_and_stop(shop, tmp_path, SLOW) < 5 + 3


def test_a_runaway_render_fails_its_messages_and_locks_nothing(tmp_path: Path) -> None:
    shop, sent = file_shop(tmp_path, f"sqlite:///{tmp_path / 'campaigner.db'}")
    # Fine for the sample customer of `rules check`: runs away for real customers Sara2 and 4.
    (tmp_path / "templates" / "messages" / "thank_you.j2").write_text(
        "{% set s = 'ab' * 5000 %}Thanks {{ first_name }} for order {{ order.id }}"
        "{% if first_name in ('Sara2', 'Sara4') %}" + SLOW_LOOP + "{% endif %}"
    )
    shop.add_paid_orders(5)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        wait_for(lambda: len(sent_texts(sent)) == 3, "the three honest thank-yous")
        assert sorted(sent_texts(sent)) == [thanks(1, 5)[n] for n in (0, 2, 4)]
        status = shop.run("status", timeout=20)
        assert status.returncode == 0, status.stderr
        assert daemon.stop() == 0
    with shop.sessions() as sessions, sessions() as session:
        failed = (
            session.execute(select(Message.reason).where(Message.status == "failed"))
            .scalars()
            .all()
        )
    assert failed == ["template_limit", "template_limit"]
