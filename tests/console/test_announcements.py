"""Announcements in the console: what waits for approval, with audience, segments and cost;
only an approver may approve, and the approval is recorded and audited."""

from __future__ import annotations

from announcement_shop import add_customers
from console_site import ConsoleSite
from sqlalchemy import func, select

from campaigner.announcements import gate
from campaigner.db.models import AuditEntry, Message

SALE = (
    'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2026-03-21T10:00"\nspread = "3h"\n'
    'description = "<b>Yalda</b> sale"\n[audience]\ncities = ["Shiraz"]\n'
)


def write_sale(site: ConsoleSite) -> None:
    paths = site.project.settings.paths
    (paths.rules / "yalda_sale.toml").write_text(SALE, encoding="utf-8")
    (paths.templates / "sale.j2").write_text("{{ first_name }} جان، حراج یلدا", encoding="utf-8")


def test_only_an_approver_approves_and_the_daemon_then_queues_it(site: ConsoleSite) -> None:
    project = site.project
    write_sale(site)
    add_customers(project.sessions, 3, city="Shiraz")
    viewer = site.signed_in("viewer")
    page = viewer.get("/console/announcements").text
    assert 'id="announcement-yalda_sale"' in page and "&lt;b&gt;Yalda&lt;/b&gt; sale" in page
    assert '<dd class="n">۳</dd>' in page  # the audience, in Persian digits
    assert 'id="approve-yalda_sale"' not in page

    marketer = site.signed_in("marketer")
    refused = marketer.post(
        "/console/announcements/yalda_sale/approve", data={"csrf": site.csrf(marketer)}
    )
    assert refused.status_code == 403
    with project.sessions() as session:
        assert gate.record(session, "yalda_sale", "2026-03-21T10:00") is None

    approver = site.signed_in("approver")
    assert 'id="approve-yalda_sale"' in approver.get("/console/announcements").text
    answer = approver.post(
        "/console/announcements/yalda_sale/approve", data={"csrf": site.csrf(approver)}
    )
    assert answer.status_code == 303
    with project.sessions() as session:
        record = gate.record(session, "yalda_sale", "2026-03-21T10:00")
        assert record is not None and record.approved_by == "approver"
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "approve")).one()
        assert (entry.user_name, entry.target) == ("approver", "yalda_sale")
        assert entry.detail.startswith("3 customer(s)")
    assert 'id="no-pending"' in approver.get("/console/announcements").text

    runtime = project.runtime()
    runtime.plan()
    runtime.close()
    with project.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 3
