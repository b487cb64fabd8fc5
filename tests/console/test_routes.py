"""Every console route, walked with every role, without a session, and without or with a
wrong CSRF token: the server enforces the role and the token, whatever the page shows."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from console_site import ConsoleSite
from sqlalchemy import select
from starlette.routing import Route
from starlette.testclient import TestClient

from campaigner.console.roles import Role
from campaigner.console.web import CONTENT_SECURITY_POLICY
from campaigner.db.models import Customer
from campaigner.server.serve import BackgroundServer

# The least role of each route, written out here (not read from the code under test).
NEEDS: dict[tuple[str, str], Role] = {
    ("GET", "/console/"): Role.viewer,
    ("POST", "/console/logout"): Role.viewer,
    ("POST", "/console/language"): Role.viewer,
    ("GET", "/console/rules"): Role.viewer,
    ("POST", "/console/rules/new"): Role.marketer,
    ("GET", "/console/rules/{name}"): Role.viewer,
    ("POST", "/console/rules/{name}/check"): Role.marketer,
    ("POST", "/console/rules/{name}/preview"): Role.marketer,
    ("POST", "/console/rules/{name}/simulate"): Role.marketer,
    ("POST", "/console/rules/{name}/save"): Role.marketer,
    ("POST", "/console/rules/{name}/toggle"): Role.marketer,
    ("GET", "/console/customers"): Role.viewer,
    ("GET", "/console/customers/{id:int}"): Role.viewer,
    ("POST", "/console/customers/{id:int}/opt-out"): Role.marketer,
    ("POST", "/console/customers/{id:int}/consent"): Role.marketer,
    ("GET", "/console/reports"): Role.viewer,
    ("GET", "/console/reports/download"): Role.viewer,
    ("GET", "/console/announcements"): Role.viewer,
    ("POST", "/console/announcements/{name}/approve"): Role.approver,
    ("GET", "/console/audit"): Role.admin,
}
OPEN = {
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("GET", "/console/static/{file}"),
    ("GET", "/console"),
}


def routes(site: ConsoleSite) -> list[tuple[str, str]]:
    found = []
    for route in site.console.routes():
        assert isinstance(route, Route)
        if route.path == "/console/{rest:path}":
            continue  # the 404/405 answer for everything else
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def test_every_route_is_in_the_table(site: ConsoleSite) -> None:
    assert set(routes(site)) == set(NEEDS) | OPEN


def _request(
    site: ConsoleSite, client: TestClient, method: str, path: str, csrf: str | None
) -> Any:
    with site.project.sessions() as session:
        customer_id = session.scalar(select(Customer.id).order_by(Customer.id))
    concrete = path.replace("{name}", "thank_you").replace("{id:int}", str(customer_id))
    if method == "GET":
        return client.get(concrete)
    rule = (site.project.settings.paths.rules / "thank_you.toml").read_text()
    form = {
        "rule": rule,
        "template:": "Thanks {{ first_name }}",
        "customer": "c1",
        "days": "7",
        "name": f"new_{abs(hash(client))}",
        "trigger": "post_purchase",
        "action": "out",
        "consent": "no",
        "reason": "asked by phone",
        "enabled": "true",
    }
    if csrf is not None:
        form["csrf"] = csrf
    return client.post(concrete, data=form)


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.name)
def test_each_role_reaches_exactly_its_routes(site: ConsoleSite, role: Role) -> None:
    site.project.paid_order("Sara")
    client = site.signed_in(role.name)
    csrf = site.csrf(client)
    for method, path in sorted(NEEDS, key=lambda key: key[1] == "/console/logout"):
        answer = _request(site, client, method, path, csrf)
        allowed = role >= NEEDS[(method, path)]
        assert (answer.status_code == 403) != allowed, (role, method, path, answer.status_code)
        assert answer.status_code < 500, (method, path, answer.text)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-frame-options"] == "DENY"


def test_without_a_session_nothing_but_sign_in_answers(site: ConsoleSite) -> None:
    site.project.paid_order("Sara")
    client = site.client()
    for method, path in NEEDS:
        answer = _request(site, client, method, path, "anything")
        if method == "GET":
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/console/login?next=")
        else:
            assert answer.status_code == 401


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_every_change_needs_the_session_csrf_token(site: ConsoleSite, csrf: str | None) -> None:
    site.project.paid_order("Sara")
    client = site.signed_in("admin")
    rule_file = site.project.settings.paths.rules / "thank_you.toml"
    before = rule_file.read_text()
    for method, path in NEEDS:
        if method == "POST":
            answer = _request(site, client, method, path, csrf)
            assert answer.status_code == 403, (path, answer.status_code)
    assert rule_file.read_text() == before
    assert client.get("/console/").status_code == 200  # logout without a token did nothing


def test_the_csrf_token_may_come_as_the_htmx_header(site: ConsoleSite) -> None:
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    rule = (site.project.settings.paths.rules / "thank_you.toml").read_text()
    answer = client.post(
        "/console/rules/thank_you/check", data={"rule": rule}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200 and 'id="no-problems"' in answer.text


def test_assets_are_served_by_content_hash_and_cached_for_good(site: ConsoleSite) -> None:
    client = site.client()
    page = client.get("/console/login").text
    for url in site.console.assets.urls.values():
        assert url in page
        answer = client.get(url)
        assert answer.status_code == 200
        assert "immutable" in answer.headers["cache-control"]
    assert client.get("/console/static/htmx.min.js").status_code == 404


def test_a_stranger_is_answered_before_the_body_is_read(site: ConsoleSite) -> None:
    """No session, no body read: a stranger cannot make the console hold 300 KB."""
    with (
        BackgroundServer(site.console.app()) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /console/rules/thank_you/save HTTP/1.1\r\nHost: console\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 299000\r\n\r\n" + b"a" * 1000
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 401")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/console/no-such-page", 404),
        ("GET", "/console/static/../config.toml", 404),
        ("GET", "/console/logout", 405),
        ("POST", "/console/rules", 405),
    ],
)
def test_errors_under_the_console_carry_the_security_headers(
    site: ConsoleSite, method: str, path: str, status: int
) -> None:
    """A 404 or 405 page can be framed or sniffed like any other: same headers."""
    answer = site.client().request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_form_with_too_many_fields_is_refused_not_a_crash(site: ConsoleSite) -> None:
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    body = "&".join(f"f{number}=1" for number in range(500))
    answer = client.post(
        "/console/rules/thank_you/check",
        content=f"csrf={csrf}&{body}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
