"""The dashboard: each daemon's health as its own /healthz judges it, with the reasons."""

from __future__ import annotations

from console_site import ConsoleSite
from sqlalchemy import select

from campaigner.daemon.runner import Service
from campaigner.db.models import SyncState


def test_an_unhealthy_daemon_is_shown_with_its_reasons(site: ConsoleSite) -> None:
    project = site.project
    daemon = Service(
        project.settings,
        engine=project.sessions.kw["bind"],
        sessions=project.sessions,
        clock=project.clock,
        gateway=project.gateway,
    )
    for _ in range(project.settings.daemon.unhealthy_after_failures):
        daemon.health.failed("dispatch", "the gateway <b>refused</b>")
    daemon.heartbeat()
    with project.sessions() as session:
        beat = session.scalars(select(SyncState.cursor).where(SyncState.name == daemon.name)).one()
    assert beat["health"] == "unhealthy" and beat["health_reasons"]
    page = site.signed_in("viewer").get("/console/").text
    assert 'id="health">ناسالم' in page
    assert "dispatch" in page and "<b>refused" not in page
