"""The reports page with periods a hand (or an attacker) types: refused by name, never a 500."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from console_site import ConsoleSite

from campaigner.console.web import CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "query",
    [
        "from=0001-01-01&to=9999-12-31",
        "to=9999-12-31",
        "from=0001-01-01",
        "from=1900-01-01",
        "from=9999-12-30&to=9999-12-31",
    ],
)
@pytest.mark.parametrize("page", ["/console/reports", "/console/reports/download"])
def test_a_period_out_of_range_is_refused_by_name(site: ConsoleSite, page: str, query: str) -> None:
    client = site.signed_in("viewer")
    answer = client.get(f"{page}?{query}")
    assert answer.status_code == 400
    assert "the period" in answer.text
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_a_ten_year_period_is_still_a_report(site: ConsoleSite) -> None:
    client = site.signed_in("viewer")
    answer = client.get("/console/reports/download?format=csv&from=2017-01-01&to=2026-12-31")
    assert answer.status_code == 200


@pytest.mark.parametrize("kind", ["csv", "html"])
def test_a_downloaded_report_is_named_by_its_period(site: ConsoleSite, kind: str) -> None:
    """The CSV has no dates in it: two downloads were both "report.csv" (review 1)."""
    client = site.signed_in("viewer")
    answer = client.get(
        f"/console/reports/download?format={kind}&calendar=jalali"
        "&from_day=1&from_month=12&from_year=1404&to_day=29&to_month=12&to_year=1404"
    )
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="report-2026-02-20-to-2026-03-20.{kind}"'
    )


def _selected(page: str, select_id: str) -> str:
    """The value chosen in the `<select>` with this id."""
    found = re.search(rf'<select[^>]* id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert found, select_id
    (value,) = re.findall(r'<option value="(\d+)" selected>', found.group(1))
    return value


def _esfand_and_bahman(site: ConsoleSite) -> None:
    """A thank-you sent on 29 Esfand 1404 (20 March 2026), nothing in Bahman."""
    project = site.project
    project.paid_order("Sara")
    runtime = project.runtime()
    project.clock.advance(timedelta(hours=2))
    assert project.send_due(runtime)
    runtime.close()


def test_the_lists_default_to_the_last_30_days_in_jalali_for_a_persian_user(
    site: ConsoleSite,
) -> None:
    page = site.signed_in("viewer").get("/console/reports").text
    # 29 Esfand 1404 is the fixed clock's day; 30 days from 30 Bahman 1404.
    chosen = {
        name: _selected(page, name)
        for name in ("from-day", "from-month", "from-year", "to-day", "to-month", "to-year")
    }
    assert chosen == {
        "from-day": "30",
        "from-month": "11",
        "from-year": "1404",
        "to-day": "29",
        "to-month": "12",
        "to-year": "1404",
    }
    assert '<input type="hidden" name="calendar" value="jalali">' in page
    assert '<option value="12" selected>اسفند</option>' in page
    assert '<option value="1404" selected>۱۴۰۴</option>' in page


def test_an_english_user_gets_gregorian_lists(site: ConsoleSite) -> None:
    client = site.signed_in("viewer")
    client.post("/console/language", data={"csrf": site.csrf(client)})
    page = client.get("/console/reports").text
    assert '<input type="hidden" name="calendar" value="gregorian">' in page
    assert '<option value="3" selected>March</option>' in page
    assert _selected(page, "to-day") == "20" and _selected(page, "to-year") == "2026"


def test_a_jalali_range_picked_in_the_lists_is_the_reports_period(site: ConsoleSite) -> None:
    _esfand_and_bahman(site)
    client = site.signed_in("viewer")

    def period(month: int, last_day: int) -> str:
        return client.get(
            "/console/reports",
            params={
                "calendar": "jalali",
                "from_day": "1",
                "from_month": str(month),
                "from_year": "۱۴۰۴",
                "to_day": str(last_day),
                "to_month": str(month),
                "to_year": "1404",
                "from": "",
                "to": "",
            },
        ).text

    esfand = period(12, 29)
    shown = re.search(r'<p id="period-shown">(.*?)</p>', esfand, re.S)
    assert shown
    assert 'datetime="2026-02-20"' in shown.group(1) and 'datetime="2026-03-20"' in shown.group(1)
    assert "from=2026-02-20&amp;to=2026-03-20" in esfand  # the downloads are of that period
    assert "thank_you" in esfand.split('id="report"')[1]
    assert _selected(esfand, "from-day") == "1" and _selected(esfand, "from-month") == "12"
    bahman = period(11, 30)
    assert 'datetime="2026-01-21"' in bahman
    assert "thank_you" not in bahman.split('id="report"')[1]


def test_a_typed_date_still_wins_over_the_lists(site: ConsoleSite) -> None:
    client = site.signed_in("viewer")
    answer = client.get(
        "/console/reports",
        params={"calendar": "jalali", "from_day": "1", "from_month": "1", "from_year": "1404"}
        | {"from": "1404/12/01"},
    )
    assert 'datetime="2026-02-20"' in answer.text


@pytest.mark.parametrize("page", ["/console/reports", "/console/reports/download"])
def test_an_impossible_day_picked_is_refused_by_name(site: ConsoleSite, page: str) -> None:
    client = site.signed_in("viewer")
    answer = client.get(
        page,
        params={"calendar": "jalali", "to_day": "30", "to_month": "12", "to_year": "1404"},
    )
    assert answer.status_code == 400
    assert "۳۰ اسفند ۱۴۰۴ وجود ندارد: سال ۱۴۰۴ کبیسه نیست" in answer.text
    mehr = client.get(
        page,
        params={"calendar": "jalali", "from_day": "31", "from_month": "7", "from_year": "1404"},
    )
    assert mehr.status_code == 400 and "۳۱ مهر ۱۴۰۴ وجود ندارد" in mehr.text
