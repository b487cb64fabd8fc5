"""`rules check` and the daemon's reload refuse an announcement whose `at` moved after its
sending started: the new `at` is a new occurrence, so everyone would get it twice."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements.gate import moved_after_start
from campaigner.errors import one_line
from campaigner.rules.loader import RuleProblem, RuleSet
from campaigner.rules.models import AnnouncementRule

log = logging.getLogger("campaigner.rules")


def moved_announcements(sessions: sessionmaker[Session], loaded: RuleSet) -> list[RuleProblem]:
    """One problem (field `at`) per loaded announcement whose `at` moved after sending
    started; none when the database cannot be asked (said in the log)."""
    announcements = {
        name: rule for name, rule in loaded.rules.items() if isinstance(rule, AnnouncementRule)
    }
    if not announcements:
        return []
    problems = []
    try:
        with sessions() as session:
            for name, rule in announcements.items():
                moved = moved_after_start(session, rule)
                if moved:
                    problems.append(RuleProblem(loaded.files[name], name, "at", moved))
    except DBAPIError as exc:
        log.warning("announcements not checked against the ledger: %s", one_line(exc))
    return problems
