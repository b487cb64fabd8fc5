"""Nothing a customer sent (names, ids, replies) nor a rule's text can put markup in a
console page: every such string is shown escaped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_site import ConsoleSite
from sqlalchemy import select

from campaigner.db.models import Customer, InboundMessage, Message

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "</textarea><script>alert(4)</script>",
    "{{ 7*7 }}<b>bold</b>",
    "\u202eevil\u202c<iframe src=//evil.example>",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_customer_text_is_escaped_on_every_page(site: ConsoleSite, payload: str) -> None:
    project = site.project
    project.paid_order(payload)
    with project.sessions.begin() as session:
        customer = session.scalars(select(Customer)).one()
        customer.last_name = payload
        customer.city = payload
        customer.external_id = payload[:100]
        session.add(InboundMessage(phone=customer.phone or "", text=payload, gateway="capture"))
    runtime = project.runtime()
    project.clock.advance(timedelta(hours=3))
    project.send_due(runtime)
    runtime.close()
    with project.sessions.begin() as session:
        message = session.scalars(select(Message)).one()
        message.reason = payload[:64]
        message.rule = payload[:128]
        customer_id = message.customer_id
    client = site.signed_in("admin")
    pages = [
        "/console/",
        "/console/rules",
        f"/console/customers?q={customer_id and 'Sara'}",
        "/console/customers?q=" + payload,
        f"/console/customers/{customer_id}",
        "/console/reports",
        "/console/audit",
    ]
    for page in pages:
        body = client.get(page).text
        for raw in ("<script>alert", "<img src=x", "<svg onload", "<iframe", "<b>bold</b>"):
            assert raw not in body, (page, raw)
    profile = client.get(f"/console/customers/{customer_id}").text
    assert "&lt;" in profile or "&#34;" in profile or "&#39;" in profile


def test_a_rule_file_cannot_inject_markup_into_the_editor(site: ConsoleSite) -> None:
    project = site.project
    project.write_rule(
        'trigger = "post_purchase"\ntemplate = "thank_you.j2"\n'
        'description = "</textarea><script>alert(5)</script>"\n'
    )
    project.write_template("thank_you.j2", "</textarea><img src=x onerror=alert(6)>")
    client = site.signed_in("marketer")
    for page in ("/console/rules", "/console/rules/thank_you"):
        body = client.get(page).text
        assert "<script>alert(5)" not in body and "<img src=x" not in body
    assert "&lt;/textarea&gt;&lt;script&gt;" in client.get("/console/rules/thank_you").text
