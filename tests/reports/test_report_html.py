import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_scenario import empty_report, scenario_report, scenario_settings
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.reports import render_html

DESCRIPTIONS = {"win_back": "دلمان برایت تنگ شده: ۹۰ روز بدون خرید"}
CHART_TITLES = (
    "Messages sent per day, by rule",
    "Delivery and conversion funnel per rule",
    "Revenue attributed per rule (IRT)",
    "Conversion rate: messaged versus held out",
    "Customers per value segment",
    "Conversion rate per value segment, by the segment customers were in when planned",
    "NPS per week",
)


def scenario_html(sessions: sessionmaker[Session], settings: Settings) -> str:
    report = scenario_report(sessions, settings)
    shop_name = scenario_settings(settings).shop.name
    return render_html(report, shop_name=shop_name, descriptions=DESCRIPTIONS)


def test_html_is_self_contained_with_every_chart(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    page = scenario_html(sessions, settings)
    assert page.startswith("<!DOCTYPE html>") and '<html dir="auto"' in page
    assert page.count("<svg ") == 7
    for title in CHART_TITLES:
        assert f"<title>{title}</title>" in page
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * 7
    assert '<h1 dir="auto">فروشگاه نمونه</h1>' in page
    assert DESCRIPTIONS["win_back"] in page
    assert "unicode-bidi: plaintext" in page


def test_html_escapes_what_it_shows(sessions: sessionmaker[Session], settings: Settings) -> None:
    report = empty_report(sessions, settings)
    page = render_html(report, shop_name="<b>Shop</b>")
    assert "<b>Shop</b>" not in page and "&lt;b&gt;Shop&lt;/b&gt;" in page
    assert page.count("No data in this period") == 7


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CAMPAIGNER_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason + " and CAMPAIGNER_REQUIRE_CHROMIUM=1")
        pytest.skip(reason)
    return found


def headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_chromium_renders_the_charts_without_errors(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    binary = chromium()
    page = tmp_path / "report.html"
    page.write_text(scenario_html(sessions, settings), encoding="utf-8")
    screenshot = tmp_path / "report.png"

    shot = headless(
        binary,
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
        page.as_uri(),
    )
    assert screenshot.exists(), shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 20_000  # a blank page compresses to a few kilobytes

    dom = headless(binary, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg ") == 7
    assert dom.stdout.count('class="bar"') >= 10 and "<polyline" in dom.stdout
    for title in CHART_TITLES:
        assert title in dom.stdout
    for output in (shot.stderr, dom.stderr):
        console = [line for line in output.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert console == []
