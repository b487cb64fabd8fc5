"""The reports page with periods a hand (or an attacker) types: refused by name, never a 500."""

from __future__ import annotations

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
