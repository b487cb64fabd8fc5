"""The hostile corpus (names.json, phones.json, csv/, templates/; see README.md) fed through
every way in — CSV import in four encodings, the ingest API, a real send — and every way out:
report in all formats, coupons export, history, status, rules, preview, simulate, opt-outs.

Whatever goes in, every command answers without a traceback; terminal output carries no
control character and no rich markup was obeyed (the names show as typed); no CSV cell starts
a formula; the HTML page escapes it all.
"""

from __future__ import annotations

import csv
import io
import json
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from markupsafe import escape
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from campaigner.cli import cli
from campaigner.clock import SystemClock
from campaigner.config import Settings
from campaigner.customers.records import plain_name
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Customer
from campaigner.display import shown
from campaigner.server.ingest import ingest_routes
from campaigner.spreadsheets import FORMULA_START

CORPUS = Path(__file__).parent
NAMES: list[str] = json.loads((CORPUS / "names.json").read_text(encoding="utf-8"))["names"]
PHONES: dict[str, Any] = json.loads((CORPUS / "phones.json").read_text(encoding="utf-8"))
TOKEN = "hostile-test-token"
HOSTILE_RULE = "=SUM(1)[/red]"  # rule names are checked: one line from `rules check`

pytestmark = pytest.mark.slow


def stored(name: str) -> str:
    """A name as the loader keeps it: runs of whitespace collapsed, direction overrides and
    isolates removed (the corpus's «\u202eevil\u202c» is kept as «evil»)."""
    return plain_name(name)


def assert_inert(output: str) -> None:
    """No traceback and no control character (other than line ends) reaches a terminal."""
    assert "Traceback" not in output, output
    controls = sorted({c for c in output if unicodedata.category(c) == "Cc" and c != "\n"})
    assert not controls, f"control characters {controls!r} in:\n{output}"


def assert_no_formulas(text: str) -> None:
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.startswith(FORMULA_START):
                float(cell)  # only a plain number may start with a sign


@dataclass
class Shop:
    root: Path
    config: Path
    db_url: str

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args], env=env)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        assert_inert(result.output)
        return result.output

    def refused(self, *args: str) -> str:
        """One line saying what is wrong, exit 1."""
        result = self.run(*args)
        assert result.exit_code == 1, result.output
        assert_inert(result.output)
        return result.output

    def ingest(self, path: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        engine = create_engine_for(self.db_url)
        settings = Settings.model_validate({"server": {"api_tokens": [SecretStr(TOKEN)]}})
        routes = ingest_routes(
            settings=settings, sessions=session_factory(engine), clock=SystemClock()
        )
        response = TestClient(Starlette(routes=routes)).post(
            f"/api/v1/{path}", json=items, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        engine.dispose()
        assert response.status_code in (200, 422), response.text
        body: dict[str, Any] = response.json()
        return body

    def referral_codes(self) -> dict[str, str]:
        engine = create_engine_for(self.db_url)
        with session_factory(engine)() as session:
            rows = session.execute(select(Customer.external_id, Customer.referral_code))
            codes = {external_id: code for external_id, code in rows if code}
        engine.dispose()
        return codes


RULE = """\
trigger = "post_purchase"
template = "thank_you.j2"
delay = "1m"
coupon = { percent = 10, valid_days = 7, prefix = "THX" }
"""


@pytest.fixture
def shop(tmp_path: Path, db_url: str) -> Shop:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "thank_you.toml").write_text(RULE, encoding="utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    source = (CORPUS / "templates" / "thank_you.j2").read_text(encoding="utf-8")
    (templates / "thank_you.j2").write_text(source, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""\
[database]
url = "{db_url}"
[paths]
rules = "{tmp_path / "rules"}"
templates = "{templates}"
[sending]
window = "00:00-24:00"
max_per_day = 0
max_per_week = 0
[gateway]
name = "file"
path = "{tmp_path / "sent.jsonl"}"
""",
        encoding="utf-8",
    )
    shop = Shop(tmp_path, config, db_url)
    assert shop.run("db", "upgrade").exit_code == 0
    return shop


def customers(prefix: str, phone_base: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{n}",
            "first_name": name,
            "last_name": name,
            "phone": f"0912{phone_base + n:07d}",
            "locale": "en",
            "consent": True,
        }
        for n, name in enumerate(NAMES)
    ]


def orders(prefix: str, paid_at: int, referral_codes: dict[str, str] | None = None) -> list[Any]:
    return [
        {
            "id": f"{name}#{prefix}",  # hostile order ids too
            "customer_id": f"{prefix}{n}",
            "total": 1000 + n,
            "currency": ["IRT", "AED", "CAD"][n % 3],
            "paid_at": paid_at,  # Unix seconds, as many shops send it
            "referral_code": (referral_codes or {}).get(f"h{n}"),
        }
        for n, name in enumerate(NAMES)
    ]


def test_every_command_shows_hostile_input_as_inert_text(shop: Shop) -> None:
    now = int(time.time())
    # In through the ingest API: customers h0.. with hostile names, each with a paid order.
    assert shop.ingest("customers", customers("h", 1000))["rejected"] == 0
    assert shop.ingest("orders", orders("h", now - 1800))["rejected"] == 0
    shop.ok("run", "--once")  # renders and sends the thank-yous (file gateway)
    # Customers r0.. (hostile too) were referred by h0..; their orders are not sent yet.
    codes = shop.referral_codes()
    assert len(codes) == len(NAMES)
    shop.ingest("customers", customers("r", 2000))
    assert shop.ingest("orders", orders("r", now - 600, codes))["rejected"] == 0
    full_names = [f"{stored(name)} {stored(name)}" for name in NAMES]

    # report: the table shows every referrer's name as typed, never markup.
    table = shop.ok("report")
    for name in full_names:
        assert shown(name) in table, name
    coloured = shop.run("report", env={"FORCE_COLOR": "1"})
    assert coloured.exit_code == 0 and "\x1b]" not in coloured.output  # no hyperlink or title
    data = json.loads(shop.ok("report", "--format", "json"))
    assert sorted(r["referrer"] for r in data["kpis"]["referrals"]) == sorted(full_names)
    assert len(data["kpis"]["revenue"]) == 3  # IRT, AED, CAD: never added up
    report_csv = shop.ok("report", "--format", "csv")
    assert_no_formulas(report_csv)
    page_path = shop.root / "report.html"
    shop.ok("report", "--html", str(page_path))
    page = page_path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page
    for name in full_names:
        assert str(escape(name)) in page, name

    # coupons export: hostile customer ids never start a formula.
    shop.ok("coupons", "export", str(shop.root / "coupons.csv"))
    assert_no_formulas((shop.root / "coupons.csv").read_text(encoding="utf-8"))

    # history: the sent text and the order id of each hostile customer, shown inert.
    for n, name in enumerate(NAMES):
        history = shop.ok("history", "--customer", f"h{n}")
        assert shown(stored(name)) in history, name
    for phone in PHONES["invalid"]:
        (line,) = shop.refused("history", "--phone", phone).splitlines()
        assert line.startswith("Error: invalid phone number")
    assert "thank_you" in shop.ok("status")
    assert "thank_you" in shop.ok("rules", "list")

    # preview and simulate render the referred customers' messages, not yet sent.
    for n, name in enumerate(NAMES):
        preview = shop.ok("preview", "thank_you", "--customer", f"r{n}")
        assert shown(stored(name)) in preview, name
    # Simulate counts days in the shop's zone (Tehran by default), which is a day ahead of
    # UTC from 20:30: yesterday is taken there, or the run misses tonight's orders.
    zone = ZoneInfo(Settings().customers.timezone)
    today = datetime.fromtimestamp(now - 86400, zone).date().isoformat()
    simulated = shop.ok("simulate", "--start", today, "--days", "2")
    for name in NAMES:
        assert shown(stored(name)) in simulated, name
    for line in shop.ok("simulate", "--start", today, "--days", "2", "--json").splitlines():
        json.loads(line)

    # opt-outs: a hostile reason and a file of hostile numbers.
    for name in NAMES:
        shop.ok("optout", "add", "09121230009", "--reason", name)
    assert shown(NAMES[0]) in shop.ok("optout", "list")
    numbers = shop.root / "numbers.txt"
    numbers.write_text("\n".join([*PHONES["valid"], *PHONES["invalid"]]), encoding="utf-8")
    imported = shop.ok("optout", "import", str(numbers))
    assert imported.startswith(f"{len(PHONES['valid'])} added")
    with_digits = [phone for phone in PHONES["invalid"] if any(c.isdigit() for c in phone)]
    assert imported.count("skipped invalid number: ") == len(with_digits)  # others: headers


@pytest.mark.parametrize(
    ("file", "options", "exit_code"),
    [
        ("customers-excel-utf8-bom.csv", [], 0),
        ("customers-shop-utf8.csv", [], 0),
        ("customers-excel-cp1256.csv", [], 0),
        ("customers-excel-cp1252-semicolon.csv", [], 1),  # asks for --encoding, imports nothing
        ("customers-excel-cp1252-semicolon.csv", ["--encoding", "cp1252"], 0),
    ],
)
def test_corpus_files_import_or_say_why(
    shop: Shop, file: str, options: list[str], exit_code: int
) -> None:
    copy = shop.root / file
    copy.write_bytes((CORPUS / "csv" / file).read_bytes())
    result = shop.run("customers", "import", str(copy), *options)
    assert result.exit_code == exit_code, result.output
    assert_inert(result.output)
    rejects = copy.with_suffix(".rejects.csv")
    if rejects.exists():
        assert_no_formulas(rejects.read_text(encoding="utf-8"))
    if exit_code:
        (line,) = result.output.splitlines()
        assert "--encoding" in line


def test_corpus_orders_import_and_reject_inertly(shop: Shop) -> None:
    for file in ("customers-excel-utf8-bom.csv", "orders.csv"):
        (shop.root / file).write_bytes((CORPUS / "csv" / file).read_bytes())
    shop.ok("customers", "import", str(shop.root / "customers-excel-utf8-bom.csv"))
    output = shop.ok("orders", "import", str(shop.root / "orders.csv"))
    assert "2 new" in output and "4 rejected" in output
    assert_no_formulas((shop.root / "orders.rejects.csv").read_text(encoding="utf-8"))


def test_hostile_templates_are_one_line_problems(shop: Shop) -> None:
    rules = shop.root / "hostile-rules"
    rules.mkdir()
    templates = CORPUS / "templates"
    for template in sorted(templates.glob("*.j2")):
        if template.name != "thank_you.j2":
            (shop.root / "templates" / template.name).write_bytes(template.read_bytes())
            rule = RULE.replace("thank_you.j2", template.name)
            (rules / f"{template.stem}.toml").write_text(rule, encoding="utf-8")
    (rules / "promo.toml").write_text(f"name = {json.dumps(HOSTILE_RULE)}\n{RULE}")
    result = shop.run("rules", "check", str(rules))
    assert result.exit_code == 1
    assert_inert(result.output)
    problems = [line for line in result.output.splitlines() if "problem(s) found" not in line]
    files = {str(path) for path in rules.glob("*.toml")}
    assert {line.split(": rule ")[0] for line in problems} == files  # each names its file
