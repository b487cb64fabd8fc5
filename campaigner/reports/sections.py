"""The report's independent queries, shared out between the sessions that read one snapshot:
each session takes the next query when it is done with the last, the largest first, so the
two finish about together whichever database makes which query the slow one."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session

from campaigner.reports.sql import tune_for_aggregates

Section = Callable[[Session], Any]


def run_sections(sessions: Sequence[Session], sections: dict[str, Section]) -> dict[str, Any]:
    """Each section's result by name; `sections` in the order to start them (largest first).
    The first session works in the calling thread, each other one in a thread of its own."""
    pending = deque(sections.items())
    taking = threading.Lock()
    results: dict[str, Any] = {}

    def work(session: Session) -> None:
        tune_for_aggregates(session)
        while True:
            with taking:
                if not pending:
                    return
                name, section = pending.popleft()
            try:
                results[name] = section(session)
            except BaseException:
                with taking:
                    pending.clear()  # the others stop after their current query
                raise

    first, *others = sessions
    with ThreadPoolExecutor(max_workers=max(len(others), 1)) as pool:
        helpers = [pool.submit(work, session) for session in others]
        work(first)
        for helper in helpers:
            helper.result()
    return results
