"""`campaigner announce` and the announcement lines of `rules check`: audience, segments,
encoding and cost before anything goes; --confirm records who approved it and when."""

from __future__ import annotations

from pathlib import Path

from announcement_shop import add_customers, ledger
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements import gate
from campaigner.cli import cli
from campaigner.db.models import Customer

SALE = (
    'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2099-12-20T10:00"\nspread = "3h"\n'
    '[audience]\ncities = ["Shiraz"]\n'
)


def project(tmp_path: Path, db_url: str, rule: str = SALE) -> Path:
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    (rules / "yalda_sale.toml").write_text(rule, encoding="utf-8")
    (templates / "sale.j2").write_text(
        "{{ first_name }} جان، حراج شب یلدا از فردا صبح در فروشگاه ما شروع می‌شود؛ "
        "تا پنجاه درصد تخفیف روی همه‌ی محصولات زمستانی.",
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[paths]\nrules = "{rules}"\ntemplates = "{templates}"\n'
        '[pricing]\nucs2 = 250\ncurrency = "IRR"\n',
        encoding="utf-8",
    )
    return config


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_rules_check_shows_the_audience_cost_and_that_it_is_not_approved(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    add_customers(sessions, 4, city="Shiraz")
    add_customers_elsewhere(sessions)
    result = run(project(tmp_path, db_url), "rules", "check")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ok  yalda_sale: announcement, once at 2099-12-20T10:00" in out
    assert "    audience: 4 customer(s)" in out
    # 4 Persian texts (over 70 characters) of 2 UCS-2 segments each, at 250 a segment.
    assert "texts (a sample of 4): 4 of 2 segment(s); UCS-2 4" in out
    assert "estimated: 8 segment(s), 2,000.00 IRR (from [pricing])" in out
    assert "NOT APPROVED: nothing is queued until `campaigner announce yalda_sale --confirm`" in out


def add_customers_elsewhere(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(
            Customer(external_id="t1", phone="+989350000001", city="Tehran", marketing_consent=True)
        )


def test_announce_without_confirm_shows_and_queues_nothing_then_confirm_records_who(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    add_customers(sessions, 3, city="shiraz ")
    config = project(tmp_path, db_url)
    shown = run(config, "announce", "yalda_sale")
    assert shown.exit_code == 0, shown.output
    assert "audience: 3 customer(s)" in shown.stdout
    assert "Would queue 3 message(s)" in shown.stdout
    with sessions() as session:
        assert gate.record(session, "yalda_sale", "2099-12-20T10:00") is None
    confirmed = run(config, "announce", "yalda_sale", "--confirm", "--by", "maryam")
    assert confirmed.exit_code == 0, confirmed.output
    assert "Approved by maryam at " in confirmed.stdout
    with sessions() as session:
        found = gate.record(session, "yalda_sale", "2099-12-20T10:00")
        assert found is not None and found.approved_by == "maryam"
        assert found.approved_at is not None and found.queued_at is None
    assert ledger(sessions) == []  # the daemon queues it, on its next planning pass
    again = run(config, "rules", "check")
    assert "approved by maryam at " in again.stdout


def test_announce_refuses_a_rule_that_is_no_announcement(tmp_path: Path, db_url: str) -> None:
    config = project(tmp_path, db_url)
    (tmp_path / "rules" / "thanks.toml").write_text(
        'trigger = "post_purchase"\ntemplate = "sale.j2"\ndelay = "2h"\n', encoding="utf-8"
    )
    result = run(config, "announce", "thanks", "--confirm")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: rule 'thanks' is a post_purchase rule, not an announcement"
    )
