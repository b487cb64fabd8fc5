"""rules check, rules list, simulate and report on a shop with a Nowruz greeting and a
wedding anniversary rule: the commands a marketer uses work with both new kinds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CaptureGateway

from campaigner.cli import cli
from campaigner.clock import FixedClock
from campaigner.config import load_settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Customer, CustomerDate
from campaigner.runtime import Runtime

NOWRUZ_1406 = datetime(2027, 3, 21, 7, 0, tzinfo=UTC)  # 10:30 in Tehran


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        '[shop]\nname = "گل‌فروشی"\n'
        '[occasions.overrides]\n"hijri:10-01" = { 2027 = "2027-03-10" }\n',
        encoding="utf-8",
    )
    rules, templates = tmp_path / "rules", tmp_path / "templates" / "messages"
    rules.mkdir()
    templates.mkdir(parents=True)
    (rules / "nowruz.toml").write_text(
        'trigger = "occasion"\ntemplate = "nowruz.j2"\ndate = "jalali:01-01"\noccasion = "نوروز"\n',
        encoding="utf-8",
    )
    (rules / "eid.toml").write_text(
        'trigger = "occasion"\ntemplate = "nowruz.j2"\ndate = "hijri:10-01"\nenabled = false\n',
        encoding="utf-8",
    )
    (rules / "anniversary.toml").write_text(
        'trigger = "personal_date"\ntemplate = "anniversary.j2"\ndate = "anniversary"\n'
        "years = [1, 5, 10]\n",
        encoding="utf-8",
    )
    (templates / "nowruz.j2").write_text(
        "{{ first_name }}، {{ occasion.name }} {{ occasion.date | jalali }} مبارک", encoding="utf-8"
    )
    (templates / "anniversary.j2").write_text(
        "{{ first_name }}، {{ years | fa_digits }} سالگی پیوندتان مبارک", encoding="utf-8"
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    engine = create_engine_for(f"sqlite:///{tmp_path / 'campaigner.db'}")
    with session_factory(engine).begin() as session:
        for n, name in enumerate(("مریم", "Sara", "علی")):
            customer = Customer(
                external_id=f"c{n}",
                first_name=name,
                phone=f"+98912000000{n}",
                marketing_consent=True,
            )
            session.add(customer)
            session.flush()
            married = date(2022 - 4 * n, 3, 21)  # 5, 9 and 13 years before 2027
            session.add(
                CustomerDate(
                    customer_id=customer.id, name="anniversary", date=married, calendar="gregorian"
                )
            )
    engine.dispose()
    return config


def invoke(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_rules_check_notes_a_personal_date_no_customer_has(shop: Path) -> None:
    rules = shop.parent / "rules"
    (rules / "kids.toml").write_text(
        'trigger = "personal_date"\ntemplate = "anniversary.j2"\ndate = "child_brithday"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(shop), "rules", "check"])
    assert result.exit_code == 0, result.output
    assert (
        "note: rule 'kids': no customer has a date named 'child_brithday' yet "
        "(import it as the column date:child_brithday)"
    ) in result.stderr
    assert "'anniversary'" not in result.stderr


def test_rules_check_and_list_with_occasions_and_personal_dates(shop: Path) -> None:
    checked = invoke(shop, "rules", "check")
    assert (
        "ok  anniversary: personal_date, anniversary at 10:00 (customer calendar, years 1, 5, 10)"
        in checked
    )
    assert "ok  nowruz: occasion, jalali:01-01 at 10:00, next " in checked
    [eid] = [line for line in checked.splitlines() if line.startswith("ok  eid")]
    assert eid.endswith("[disabled]")
    _, *rows = invoke(shop, "rules", "list").splitlines()
    assert sorted(row.split()[:3] for row in rows) == [
        ["anniversary", "personal_date", "yes"],
        ["eid", "occasion", "no"],
        ["nowruz", "occasion", "yes"],
    ]


def test_simulate_then_send_then_report(shop: Path) -> None:
    lines = invoke(shop, "simulate", "--start", "2027-03-21", "--days", "1", "--json").splitlines()
    messages = [json.loads(line) for line in lines]
    sent = sorted((m["rule"], m["customer_id"], m["text"]) for m in messages if m["text"])
    assert sent == [
        ("anniversary", "c0", "مریم، ۵ سالگی پیوندتان مبارک\nلغو۱۱"),
        ("nowruz", "c1", "Sara، نوروز ۱۴۰۶/۰۱/۰۱ مبارک\nلغو۱۱"),
        ("nowruz", "c2", "علی، نوروز ۱۴۰۶/۰۱/۰۱ مبارک\nلغو۱۱"),
    ]
    # Mariam's anniversary took her one message of the day: Nowruz is skipped for her.
    unsent = [(m["rule"], m["customer_id"], m["status"]) for m in messages if not m["text"]]
    assert unsent == [("nowruz", "c0", "skipped")]
    settings = load_settings(shop)
    engine = create_engine_for(settings.database.url)
    gateway = CaptureGateway()
    runtime = Runtime.build(
        settings, clock=FixedClock(NOWRUZ_1406), sessions=session_factory(engine), gateway=gateway
    )
    try:
        runtime.plan()
        runtime.drain()
    finally:
        runtime.close()
        engine.dispose()
    assert sorted(m.text for m in gateway.sent) == sorted(text for *_, text in sent)
    report = json.loads(
        invoke(shop, "report", "--since", "2027-03-01", "--until", "2027-03-31", "--format", "json")
    )
    assert {rule["rule"]: rule["sent"] for rule in report["rules"]} == {
        "anniversary": 1,
        "nowruz": 2,
    }
