"""Signing in and out: lockout, rate limit, session fixation, timeouts, redirects."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import pytest
from console_site import PASSWORD, ConsoleSite
from sqlalchemy import select

from campaigner.console import users
from campaigner.console.sessions import COOKIE
from campaigner.console.web import Console
from campaigner.db.models import ConsoleLoginFailure
from campaigner.server.serve import BackgroundServer


def test_signing_in_lands_on_the_page_asked_for(site: ConsoleSite) -> None:
    client = site.client()
    assert client.get("/console/rules").headers["location"] == "/console/login?next=/console/rules"
    answer = site.sign_in(client, "viewer", next="/console/rules")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/rules"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert client.get("/console/rules").status_code == 200


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    site: ConsoleSite,
) -> None:
    client = site.client()
    for name in ("viewer", "nobody"):
        answer = site.sign_in(client, name, "wrong password!")
        assert answer.status_code == 401
        assert "نام کاربری یا گذرواژه نادرست است" in answer.text
    assert COOKIE not in client.cookies


def test_repeated_failures_lock_the_user_for_a_while(site: ConsoleSite) -> None:
    client = site.client()
    for _ in range(site.project.settings.console.max_failed_logins):
        assert site.sign_in(client, "marketer", "guess guess guess").status_code == 401
    locked = site.sign_in(client, "marketer")
    assert locked.status_code == 401 and "قفل" in locked.text
    site.project.clock.advance(timedelta(minutes=16))
    assert site.sign_in(client, "marketer").status_code == 303


def test_one_address_trying_many_users_is_slowed_down(site: ConsoleSite) -> None:
    client = site.client()
    limit = site.project.settings.console.max_failed_logins_per_ip
    for n in range(limit):
        site.sign_in(client, f"user{n}", "guess guess guess")
    refused = site.sign_in(client, "admin")
    assert refused.status_code == 401 and "تلاش‌های ناموفق زیادی" in refused.text


def test_a_session_cookie_from_before_sign_in_is_worth_nothing_after_it(
    site: ConsoleSite,
) -> None:
    """Session fixation: an attacker plants a cookie, the victim signs in; the planted
    value must not become a signed-in session."""
    attacker = site.signed_in("viewer")
    planted = attacker.cookies[COOKIE]
    victim = site.client()
    victim.cookies.set(COOKIE, planted, domain="testserver.local", path="/console")
    site.sign_in(victim, "admin")
    assert [c.value for c in victim.cookies.jar if c.name == COOKIE] != [planted]
    assert victim.get("/console/").status_code == 200
    # The victim's sign-in ended the planted session too.
    assert attacker.get("/console/").status_code == 303


def test_signing_out_ends_the_session_on_the_server(site: ConsoleSite) -> None:
    client = site.signed_in("viewer")
    stolen = client.cookies[COOKIE]
    csrf = site.csrf(client)
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    replay = site.client()
    replay.cookies.set(COOKIE, stolen, domain="testserver.local", path="/console")
    assert replay.get("/console/").headers["location"].startswith("/console/login")


def test_idle_and_old_sessions_end(site: ConsoleSite) -> None:
    clock, console = site.project.clock, site.project.settings.console
    client = site.signed_in("viewer")
    clock.advance(timedelta(minutes=console.session_idle_minutes + 1))
    assert client.get("/console/").status_code == 303
    client = site.signed_in("viewer")
    for _ in range(int(console.session_max_hours * 60 / 20) + 1):
        clock.advance(timedelta(minutes=20))
        client.get("/console/")
    assert client.get("/console/").status_code == 303


def test_a_forged_cookie_signs_no_one_in(site: ConsoleSite) -> None:
    client = site.signed_in("admin")
    token, _, _ = client.cookies[COOKIE].partition(".")
    forged = site.client()
    forged.cookies.set(COOKIE, token + "." + "0" * 64, domain="testserver.local", path="/console")
    assert forged.get("/console/").status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/console/",
        "/\\evil.example",
        "/elsewhere",
        "/console/../webhooks/shop",
        "/console/%2e%2e/%2e%2e/elsewhere",
        "/console/.%2E/elsewhere",
    ],
)
def test_sign_in_never_redirects_off_the_console(site: ConsoleSite, target: str) -> None:
    answer = site.sign_in(site.client(), "viewer", next=target)
    assert answer.headers["location"] == "/console/"


def test_the_sign_in_form_needs_its_own_token(site: ConsoleSite) -> None:
    client = site.client()
    answer = client.post("/console/login", data={"user": "admin", "password": PASSWORD})
    assert answer.status_code == 403
    assert COOKIE not in client.cookies


@pytest.mark.parametrize(
    ("accept", "lang", "dir_"),
    [("en-US,en;q=0.9", "en", "ltr"), ("fa-IR,fa;q=0.9,en;q=0.8", "fa", "rtl"), ("", "fa", "rtl")],
)
def test_the_sign_in_page_speaks_the_browsers_language(
    site: ConsoleSite, accept: str, lang: str, dir_: str
) -> None:
    """A new English-speaking user is not met by a Persian-only form and Persian errors."""
    client = site.client()
    client.headers["accept-language"] = accept
    page = client.get("/console/login")
    assert f'lang="{lang}" dir="{dir_}"' in page.text
    refused = site.sign_in(client, "viewer", "wrong password!")
    assert f'lang="{lang}"' in refused.text
    if lang == "en":
        assert re.search(r"[\u0600-\u06ff]", refused.text.split("<body", 1)[1]) is None


def _problem(answer: httpx.Response) -> str:
    found = re.search(r'<p class="problem" id="problem">(.*?)</p>', answer.text, re.S)
    assert found, answer.text
    return found.group(1)


def test_an_unknown_user_a_wrong_password_and_a_locked_user_get_the_same_answer(
    site: ConsoleSite,
) -> None:
    """Saying "locked" would tell that the name exists: only real users are ever locked."""
    client = site.client()
    for _ in range(site.project.settings.console.max_failed_logins):
        site.sign_in(client, "marketer", "guess guess guess")
    answers = [
        site.sign_in(client, "nobody", "guess guess guess"),  # no such user
        site.sign_in(client, "viewer", "guess guess guess"),  # wrong password
        site.sign_in(client, "marketer"),  # locked, even with the right password
    ]
    assert {answer.status_code for answer in answers} == {401}
    assert len({_problem(answer) for answer in answers}) == 1
    assert COOKIE not in client.cookies


def test_every_failure_verifies_one_password_hash_so_time_tells_nothing(
    site: ConsoleSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 is what takes the time: a path that skips it (a locked user) answers in a
    fraction of the time and tells that the user exists."""
    settings = site.project.settings.console
    now = site.project.clock.now()
    verified: list[str] = []
    real_verified = users._verified

    def counted(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verified(password_hash, password)

    monkeypatch.setattr(users, "_verified", counted)
    with site.project.sessions.begin() as session:
        for _ in range(settings.max_failed_logins):
            users.sign_in(session, settings, "marketer", "guess guess guess", "10.0.0.1", now)

    problems: set[str] = set()

    def elapsed(name: str, password: str) -> float:
        verified.clear()
        started = time.thread_time()  # CPU time: the work done, not the machine's load
        with site.project.sessions.begin() as session:
            result = users.sign_in(session, settings, name, password, "10.0.0.2", now)
        took = time.thread_time() - started
        assert result.user is None
        problems.add(result.problem)
        assert len(verified) == 1, name
        return took

    cases = [("nobody", "guess guess guess"), ("viewer", "guess guess"), ("marketer", PASSWORD)]
    times = {name: sorted(elapsed(name, password) for _ in range(3))[1] for name, password in cases}
    assert problems == {users.SIGN_IN_FAILED}
    # one argon2 verification each (tens of milliseconds); without it, a few milliseconds
    assert max(times.values()) < 2.5 * min(times.values()), times


def test_a_forged_forwarded_for_does_not_reset_the_address_limit(site: ConsoleSite) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to: a local client
    could then pose as a new address for every guess. Over a real server and socket."""
    site.project.settings.console.max_failed_logins_per_ip = 3
    console = Console(site.project.settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        answers = []
        for n in range(4):
            page = client.get("/console/login")
            pre = re.search(r'name="pre" value="([^"]+)"', page.text)
            assert pre
            answers.append(
                client.post(
                    "/console/login",
                    data={"pre": pre.group(1), "user": "admin", "password": "guess guess"},
                    headers={"x-forwarded-for": f"203.0.113.{n}"},
                )
            )
    assert "تلاش‌های ناموفق زیادی" in answers[-1].text
    with site.project.sessions() as session:
        counted = set(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == {"127.0.0.1", "127.0.0.0/24"}


def test_a_configured_proxy_is_believed_about_the_address(site: ConsoleSite) -> None:
    """Behind a named reverse proxy, each browser's address counts, not the proxy's."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        for address in ("203.0.113.7", "203.0.113.7", "203.0.113.8"):
            page = client.get("/console/login")
            pre = re.search(r'name="pre" value="([^"]+)"', page.text)
            assert pre
            answer = client.post(
                "/console/login",
                data={"pre": pre.group(1), "user": "admin", "password": "guess guess"},
                headers={"x-forwarded-for": f"198.51.100.1, {address}"},
            )
            assert "تلاش‌های ناموفق زیادی" not in answer.text
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == ["203.0.113.0/24"] * 3 + ["203.0.113.7", "203.0.113.7", "203.0.113.8"]


def test_a_proxy_that_adds_its_own_forwarded_for_line_is_believed_not_the_client(
    site: ConsoleSite,
) -> None:
    """HAProxy's `option forwardfor` adds its own `X-Forwarded-For` line after any the client
    sent (http_header_add_tail2 in haproxy's src/proto_http.c, seen in the 1.5 patch
    majek/dump haproxy-1.5-x-forwarded-for.patch): the two lines are one list (RFC 9110
    5.3), and reading only the first let the client pick its address (review 1)."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        for forged in ("198.51.100.1", "198.51.100.2"):
            page = client.get("/console/login")
            pre = re.search(r'name="pre" value="([^"]+)"', page.text)
            assert pre
            client.post(
                "/console/login",
                data={"pre": pre.group(1), "user": "admin", "password": "guess guess"},
                headers=[("x-forwarded-for", forged), ("x-forwarded-for", "203.0.113.7")],
            )
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == ["203.0.113.0/24"] * 2 + ["203.0.113.7", "203.0.113.7"]


def _guess_through(client: httpx.Client, forwarded_for: str) -> bool:
    """One wrong password for admin, said by the proxy to come from `forwarded_for`:
    whether it was refused for too many attempts from there."""
    page = client.get("/console/login")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre
    answer = client.post(
        "/console/login",
        data={"pre": pre.group(1), "user": "admin", "password": "guess guess"},
        headers={"x-forwarded-for": forwarded_for},
    )
    assert answer.status_code == 401
    return "تلاش‌های ناموفق زیادی" in answer.text


def test_the_addresses_of_one_ipv6_64_share_one_limit_and_another_64_has_its_own(
    site: ConsoleSite,
) -> None:
    """An IPv6 host is given a whole /64 and picks its own addresses in it (SLAAC, RFC 4862
    5.5.3; temporary addresses, RFC 8981): counted per address, one client had 2^64 of
    limits. 2^3 addresses spread across one /64's interface identifiers here."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 4
    rotating = [f"2001:db8:1:2:{1 << (2 * n):x}::{n + 1:x}" for n in range(8)]
    assert len(set(rotating)) == 8
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        refused = [_guess_through(client, address) for address in rotating]
        neighbour = _guess_through(client, "2001:db8:1:3::1")
    assert refused == [False] * 4 + [True] * 4
    assert not neighbour
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    # each failure counted for its /64 and its /48 (the wider limit's, not met here)
    assert counted == sorted(
        ["2001:db8:1:2::/64"] * 4 + ["2001:db8:1:3::/64"] + ["2001:db8:1::/48"] * 5
    )


def test_the_64s_of_one_ipv6_48_share_a_wider_limit(site: ConsoleSite) -> None:
    """Regression: counted per /64 only, whoever holds a /48 (a site's usual assignment)
    had 65,536 limits, one per /64. Its /64s now share the /48's allowance too (5 here):
    six /64s of one /48 guessing once each, the sixth is refused; a /64 of another /48 is
    not; and a /64 still has its own, smaller limit (2) within the /48's."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    settings.console.max_failed_logins_per_network = 5
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        one_64 = [_guess_through(client, "2001:db8:7:1::1") for _ in range(3)]
        spread = [_guess_through(client, f"2001:db8:7:{n:x}::1") for n in range(2, 6)]
        other_48 = _guess_through(client, "2001:db8:8:1::1")
    assert one_64 == [False, False, True]
    assert spread == [False, False, False, True]  # 2 + 3 failures: the /48 is full
    assert not other_48
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted.count("2001:db8:7::/48") == 5
    assert counted.count("2001:db8:8::/48") == 1


def test_the_addresses_of_one_ipv4_24_share_a_wider_limit(site: ConsoleSite) -> None:
    """Regression: counted per address only, whoever holds a /24 had 256 limits. Its
    addresses now share the /24's allowance too (5 here), as the /64s of an IPv6 /48 do:
    an address is refused after its own 2, five addresses of one /24 (one NAT64-carried)
    are refused at the sixth failure, and an address of the next /24 is not."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    settings.console.max_failed_logins_per_network = 5
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        one_address = [_guess_through(client, "198.51.100.1") for _ in range(3)]
        spread = [_guess_through(client, f"198.51.100.{n}") for n in (2, 3)]
        nat64 = _guess_through(client, "64:ff9b::198.51.100.4")
        refused = _guess_through(client, "198.51.100.5")
        next_24 = _guess_through(client, "198.51.101.1")
        site.project.clock.advance(timedelta(minutes=16))
        later = _guess_through(client, "198.51.100.5")
    assert one_address == [False, False, True]
    assert spread == [False, False]
    assert not nat64  # the fifth failure of the /24
    assert refused  # the /24 is full, though this address never failed
    assert not next_24
    assert not later  # the failures are older than lockout_minutes
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == ["198.51.100.0/24", "198.51.100.5"]  # the older ones deleted


def test_ipv4_clients_behind_the_local_use_nat64_prefix_have_limits_of_their_own(
    site: ConsoleSite,
) -> None:
    """Regression: a NAT64 translator using the local-use 64:ff9b:1::/96 (RFC 8215) shows
    every IPv4 client in one /64, so one client's failures refused every other: each is now
    counted as the IPv4 address it carries, and in that address's /24."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        one_client = [_guess_through(client, "64:ff9b:1::203.0.113.9") for _ in range(3)]
        neighbour = _guess_through(client, "64:ff9b:1::198.51.100.4")
    assert one_client == [False, False, True]
    assert not neighbour
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == sorted(
        ["203.0.113.9", "203.0.113.0/24"] * 2 + ["198.51.100.4", "198.51.100.0/24"]
    )


def test_ipv4_mapped_addresses_are_limited_per_ipv4_address(site: ConsoleSite) -> None:
    """A dual-stack listener (or proxy) reports IPv4 clients as ::ffff:a.b.c.d, all in one
    /64: they are counted per IPv4 address, as IPv4 clients are."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        refused = [_guess_through(client, f"::ffff:203.0.113.{n}") for n in (1, 2, 3, 1, 1)]
    assert refused == [False, False, False, False, True]
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == ["203.0.113.0/24"] * 4 + ["203.0.113.1"] * 2 + ["203.0.113.2", "203.0.113.3"]


def test_an_address_longer_than_its_column_is_still_counted(site: ConsoleSite) -> None:
    """A proxy passes on whatever the hop before it wrote; stored cut to the column's 64
    characters but looked up whole, such an "address" was never counted."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        refused = [_guess_through(client, "unknown-" + "h" * 80) for _ in range(3)]
    assert refused == [False, False, True]


def test_a_proxy_that_writes_the_clients_port_does_not_give_each_port_a_limit(
    site: ConsoleSite,
) -> None:
    """Azure Application Gateway writes X-Forwarded-For as "IP:port" (see
    tests/server/test_forwarded.py): counted as written, each connection from a new source
    port had a limit of its own, and the limit was never met."""
    settings = site.project.settings
    settings.console.trusted_proxies = ["127.0.0.0/8"]
    settings.console.max_failed_logins_per_ip = 2
    console = Console(settings, site.project.sessions, site.project.clock)
    with BackgroundServer(console.app()) as server, httpx.Client(base_url=server.url) as client:
        refused = [_guess_through(client, f"203.0.113.7:{port}") for port in (5001, 5002, 5003)]
        ipv6 = [_guess_through(client, f"[2001:db8:1:2::{n}]:{n}") for n in (1, 2, 3)]
    assert refused == [False, False, True]
    assert ipv6 == [False, False, True]
    with site.project.sessions() as session:
        counted = sorted(session.scalars(select(ConsoleLoginFailure.address)))
    assert counted == sorted(
        ["2001:db8:1:2::/64"] * 2
        + ["2001:db8:1::/48"] * 2
        + ["203.0.113.7"] * 2
        + ["203.0.113.0/24"] * 2
    )
