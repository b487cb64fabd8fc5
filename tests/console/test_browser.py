"""The console in a real Chromium (Selenium with Debian's chromium-driver): a marketer's
day, in Persian and in English. Screenshots of each screen go to .artifacts/console/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from console_site import PASSWORD, ConsoleSite
from sqlalchemy import select

from campaigner.db.models import Message, MessageStatus
from campaigner.server.serve import BackgroundServer

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "console"
FIXED_RULE = (
    'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\ntransactional = true\n'
)

SALE = 'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2026-03-21T10:00"\n'

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def _require_browser() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        reason = "chromium and chromium-driver are not installed (apt-get install chromium-driver)"
        if os.environ.get("CAMPAIGNER_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason + " and CAMPAIGNER_REQUIRE_CHROMIUM=1")
        pytest.skip(reason)
    return browser, driver


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--lang=fa",
    ):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(60)
    yield chrome
    chrome.quit()


class Marketer:
    """What a person does in the browser, in words a test can read."""

    def __init__(self, chrome: object, url: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.chrome = chrome
        self.url = url
        self.wait = WebDriverWait(chrome, 30)

    def open(self, path: str) -> None:
        self.chrome.get(self.url + path)  # type: ignore[attr-defined]

    def find(self, element_id: str) -> object:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.presence_of_element_located((By.ID, element_id)))

    def type_into(self, element_id: str, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        field = self.find(element_id)
        field.send_keys(Keys.CONTROL, "a")  # type: ignore[attr-defined]
        field.send_keys(Keys.DELETE)  # type: ignore[attr-defined]
        field.send_keys(text)  # type: ignore[attr-defined]

    def click(self, element_id: str) -> None:
        self.find(element_id).click()  # type: ignore[attr-defined]

    def sign_in(self, name: str) -> None:
        self.open("/console/login")
        self.type_into("user", name)
        self.type_into("password", PASSWORD)
        self.click("sign-in")
        self.find("sign-out")

    def sign_out(self) -> None:
        self.click("sign-out")
        self.find("sign-in")

    def pick_date(self, field: str, day: str, month: str, year: str) -> None:
        """Choose a date in the report's lists by what they show (Persian digits, month names)."""
        from selenium.webdriver.support.ui import Select

        for part, label in (("day", day), ("month", month), ("year", year)):
            Select(self.find(f"{field}-{part}")).select_by_visible_text(label)

    def text_of(self, element_id: str) -> str:
        return str(self.find(element_id).text)  # type: ignore[attr-defined]

    def html(self) -> str:
        return str(self.chrome.page_source)  # type: ignore[attr-defined]

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.chrome.save_screenshot(str(ARTIFACTS / f"{name}.png"))  # type: ignore[attr-defined]


def test_a_marketers_day_in_the_browser(site: ConsoleSite, browser: object) -> None:
    project = site.project
    project.write_template("thank_you.fa.j2", "{{ first_name }} جان، ممنون از خرید شما")
    project.paid_order("سارا")
    project.paid_order("Reza")
    with BackgroundServer(site.console.app()) as server:
        person = Marketer(browser, server.url)

        person.sign_in("marketer")
        html = person.html()
        assert 'dir="rtl"' in html and 'lang="fa"' in html
        assert "داشبورد" in html
        # 20 March 2026 + 5 h in Tehran is 29 Esfand 1404, in Persian digits.
        assert person.text_of("today") == "۱۴۰۴/۱۲/۲۹"
        person.shot("dashboard-fa")
        person.open("/console/rules")
        assert "thank_you" in person.text_of("rules")
        person.shot("rules-fa")

        person.open("/console/rules/thank_you")
        person.type_into("rule-text", FIXED_RULE.replace('"2h"', '"two hours"'))
        problem = person.text_of("problem-list")
        assert "thank_you.toml:3: delay" in problem
        person.shot("rule-broken-fa")
        assert '"2h"' in (project.settings.paths.rules / "thank_you.toml").read_text()

        person.type_into("rule-text", FIXED_RULE.replace('"2h"', '"1h"'))
        person.find("no-problems")
        person.type_into("template-fa", "{{ first_name }} عزیز، سفارش شما رسید؟")
        person.find("no-problems")
        person.type_into("preview-customer", "09120000001")
        person.click("preview")
        assert "سارا عزیز، سفارش شما رسید؟" in person.text_of("preview-result")
        person.shot("preview-fa")
        person.click("simulate-7")
        assert "thank_you" in person.text_of("simulation")
        person.shot("simulate-fa")
        person.type_into("commit-message", "A shorter wait")
        person.click("save")
        assert "thank_you.fa.j2" in person.text_of("saved")

        runtime = project.runtime()
        project.clock.advance(timedelta(hours=1))
        sent = project.send_due(runtime)
        assert "سارا عزیز، سفارش شما رسید؟" in sent

        project.paid_order("Mina")
        runtime.plan()
        person.sign_in("marketer")  # the hour on the clock ended the idle session
        person.open("/console/customers?q=Mina")
        person.find("found")
        person.open("/console/customers/3")
        person.type_into("opt-out-reason", "asked on the phone")
        person.click("opt-out")
        assert person.text_of("opted-out").startswith("بله")
        person.shot("customer-fa")
        project.clock.advance(timedelta(hours=3))
        project.send_due(runtime)
        runtime.close()
        with project.sessions() as session:
            mina = session.scalars(select(Message).where(Message.customer_id == 3)).one()
            assert (mina.status, mina.reason) == (MessageStatus.SKIPPED, "opted_out")

        paths = project.settings.paths
        (paths.rules / "yalda_sale.toml").write_text(SALE, encoding="utf-8")
        (paths.templates / "sale.j2").write_text("{{ first_name }} جان، حراج یلدا")
        person.sign_in("marketer")  # three idle hours ended the session
        person.open("/console/announcements")
        person.find("announcement-yalda_sale")
        assert "approve-yalda_sale" not in person.html()  # a marketer may not approve
        person.sign_in("approver")
        person.open("/console/announcements")
        person.shot("announcements-fa")
        person.click("approve-yalda_sale")
        person.find("no-pending")

        person.sign_in("admin")
        person.open("/console/reports")
        assert "thank_you" in person.text_of("report")
        person.pick_date("from", "۱", "بهمن", "۱۴۰۴")  # Bahman: before anything was sent
        person.pick_date("to", "۳۰", "بهمن", "۱۴۰۴")
        person.click("show-report")
        person.wait.until(lambda _: 'datetime="2026-01-21"' in person.html())
        assert "thank_you" not in person.text_of("report")
        person.pick_date("from", "۱", "اسفند", "۱۴۰۴")
        person.pick_date("to", "۲۹", "اسفند", "۱۴۰۴")
        person.click("show-report")
        person.wait.until(lambda _: 'datetime="2026-02-20"' in person.html())
        assert "۱۴۰۴/۱۲/۰۱" in person.text_of("period-shown")
        assert "thank_you" in person.text_of("report")
        person.shot("reports-fa")
        person.open("/console/audit")
        audit = person.text_of("audit")
        assert "edit_file" in audit and "opt_out" in audit and "marketer" in audit
        assert "approve" in audit and "yalda_sale" in audit
        person.shot("audit-fa")

        person.click("language")
        person.find("sign-out")
        assert 'dir="ltr"' in person.html()
        for path, name in (
            ("/console/", "dashboard-en"),
            ("/console/rules", "rules-en"),
            ("/console/rules/thank_you", "rule-en"),
            ("/console/customers/3", "customer-en"),
            ("/console/reports", "reports-en"),
            ("/console/announcements", "announcements-en"),
            ("/console/audit", "audit-en"),
        ):
            person.open(path)
            person.find("sign-out")
            person.shot(name)
        person.sign_out()
    for name in ("dashboard-fa", "rule-broken-fa", "preview-fa", "customer-en", "audit-en"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
