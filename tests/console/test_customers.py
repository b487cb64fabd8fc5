"""Customers in the console: found by phone in any written form, by name or id; opting
out from the profile stops the next message, and is recorded with who and why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_site import ConsoleSite
from shop_builders import put_segment
from sqlalchemy import select

from campaigner.console.web import CONTENT_SECURITY_POLICY
from campaigner.db.models import AuditEntry, Customer, Message, MessageStatus, OptOut


def test_search_by_phone_in_any_written_form_name_or_id(site: ConsoleSite) -> None:
    site.project.paid_order("سارا")
    client = site.signed_in("viewer")
    for query in ("۰۹۱۲ ۰۰۰ ۰۰۰۱", "+989120000001", "00989120000001", "سار", "c1"):
        page = client.get("/console/customers", params={"q": query}).text
        assert "/console/customers/1" in page, query
    assert "/console/customers/1" not in client.get("/console/customers?q=%25").text


def test_opting_out_from_the_profile_skips_the_next_message(site: ConsoleSite) -> None:
    project = site.project
    project.paid_order("Sara")
    runtime = project.runtime()
    runtime.plan()
    with project.sessions() as session:
        customer = session.scalars(select(Customer)).one()
        assert session.scalars(select(Message.status)).one() == MessageStatus.QUEUED
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    answer = client.post(
        f"/console/customers/{customer.id}/opt-out",
        data={"csrf": csrf, "action": "out", "reason": "called the shop"},
    )
    assert answer.status_code == 303
    project.clock.advance(timedelta(hours=3))
    assert project.send_due(runtime) == []
    runtime.close()
    with project.sessions() as session:
        message = session.scalars(select(Message)).one()
        assert (message.status, message.reason) == (MessageStatus.SKIPPED, "opted_out")
        opt_out = session.get(OptOut, customer.phone)
        assert opt_out is not None and opt_out.source == "console:marketer"
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "opt_out")).one()
        assert (entry.user_name, entry.target, entry.detail) == (
            "marketer",
            "customer c1",
            "called the shop",
        )
    client = site.signed_in("viewer")  # three idle hours ended the marketer's session
    profile = client.get(f"/console/customers/{customer.id}").text
    assert "called the shop" not in profile  # the reason is in the audit log, not public
    assert 'id="opted-out">بله' in profile


def test_consent_changes_are_recorded(site: ConsoleSite) -> None:
    site.project.paid_order("Sara")
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    client.post(
        "/console/customers/1/consent", data={"csrf": csrf, "consent": "no", "reason": "asked"}
    )
    with site.project.sessions() as session:
        assert session.get(Customer, 1).marketing_consent is False  # type: ignore[union-attr]
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "consent_withdrawn" in actions


@pytest.mark.parametrize("customer_id", ["2147483648", "99999999999999999999", "0"])
def test_a_customer_id_past_the_key_is_nobody_not_a_crash(
    site: ConsoleSite, customer_id: str
) -> None:
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    answers = [
        client.get(f"/console/customers/{customer_id}"),
        client.post(
            f"/console/customers/{customer_id}/opt-out", data={"csrf": csrf, "action": "out"}
        ),
        client.post(
            f"/console/customers/{customer_id}/consent", data={"csrf": csrf, "consent": "no"}
        ),
    ]
    for answer in answers:
        assert answer.status_code == 400
        assert f"no customer #{int(customer_id)}" in answer.text
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_profile_shows_the_value_segment_from_the_scores(site: ConsoleSite) -> None:
    site.project.paid_order("Sara")
    client = site.signed_in("marketer")
    assert 'id="segment">none<' in client.get("/console/customers/1").text
    with site.project.sessions.begin() as session:
        put_segment(session, 1, "champions")
    assert 'id="segment">champions<' in client.get("/console/customers/1").text
