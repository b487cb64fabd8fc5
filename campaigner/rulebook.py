"""The rules a running engine uses: loaded with their templates checked, and reloaded safely.

A reload never makes things worse: when a rule file or its template turns out broken, the
last good version of that rule keeps running, with the template sources it was checked with,
and the problem is reported, until the file is fixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.customers.fields import BUILT_IN_DATES
from campaigner.db.models import CustomerDate
from campaigner.messages.templates import MessageTemplates
from campaigner.planner import check_plan
from campaigner.rules.loader import RuleProblem, RuleSet, load_rules
from campaigner.rules.models import NpsSurveyRule, PersonalDateRule, Rule

log = logging.getLogger("campaigner.rules")

# What the database says against rules that load fine (an announcement whose `at` moved
# after sending started): a rule named here is treated as broken.
Guard = Callable[[RuleSet], list[RuleProblem]]


def check_rules(
    settings: Settings, directory: Path | None = None, templates: MessageTemplates | None = None
) -> RuleSet:
    """Load every rule and check its template against what the engine provides (`templates`:
    one version of the template directory, read now when not given)."""
    checked = templates or MessageTemplates(settings.paths.templates, settings)
    return load_rules(
        directory or settings.paths.rules,
        templates=settings.paths.templates,
        template_checker=lambda rule: template_problems(checked, rule),
        region=settings.customers.region,
    )


def template_problems(templates: MessageTemplates, rule: Rule) -> list[str]:
    """What is wrong with `rule`'s template in this version of the template directory."""
    problems = templates.check(
        rule.template,
        trigger=rule.trigger,
        max_segments=rule.max_segments,
        transactional=rule.transactional,
        has_coupon=rule.coupon is not None,
    )
    return [str(problem) for problem in problems]


def check_planning(
    sessions: sessionmaker[Session], loaded: RuleSet, clock: Clock, settings: Settings
) -> list[RuleProblem]:
    """Each loaded rule's planning statements, run against the database with zero rows: the
    problems only the database finds (its limits, the values it refuses), before the daemon
    meets them. Nothing is written."""
    problems = []
    with sessions() as session:
        try:
            for name, rule in loaded.rules.items():
                error = check_plan(session, rule, clock, settings)
                if error:
                    message = f"its planning query fails on the database: {error}"
                    problems.append(RuleProblem(loaded.files[name], name, None, message))
        finally:
            session.rollback()
    return problems


def missing_dates(sessions: sessionmaker[Session], loaded: RuleSet) -> list[str]:
    """A note for each personal-date rule whose date no customer has: most likely a name
    spelled differently in the rule and the import, a rule that would silently do nothing."""
    notes = []
    with sessions() as session:
        for name, rule in loaded.rules.items():
            if not isinstance(rule, PersonalDateRule) or rule.date in BUILT_IN_DATES:
                continue
            if session.scalar(select(CustomerDate.id).where(CustomerDate.name == rule.date)):
                continue
            notes.append(
                f"note: rule {name!r}: no customer has a date named {rule.date!r} yet "
                f"(import it as the column date:{rule.date})"
            )
    return notes


@dataclass(frozen=True)
class Entry:
    """A rule as it runs: the version that passed its checks, with the template sources it
    passed them with, and the file it came from."""

    rule: Rule
    file: Path
    templates: MessageTemplates


class Rulebook:
    """Thread-safe current rules; `reload()` swaps them in keeping last good versions."""

    def __init__(
        self, settings: Settings, directory: Path | None = None, guard: Guard | None = None
    ) -> None:
        self.settings = settings
        self.directory = directory or settings.paths.rules
        self.guard = guard
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self.problems: list[RuleProblem] = []
        self._fingerprint = self._disk_state()
        self.reload()

    def reload(self) -> list[RuleProblem]:
        fingerprint = self._disk_state()
        templates = MessageTemplates(self.settings.paths.templates, self.settings)
        loaded = check_rules(self.settings, self.directory, templates)
        if self.guard is not None:
            refused = self.guard(loaded)
            loaded.problems.extend(refused)
            for problem in refused:
                loaded.rules.pop(problem.rule or "", None)
        entries = {
            name: Entry(rule, loaded.files[name], templates) for name, rule in loaded.rules.items()
        }
        broken_files = {problem.file for problem in loaded.problems}
        broken_names = {problem.rule for problem in loaded.problems if problem.rule}
        reported = {problem.rule for problem in loaded.problems if problem.field == "template"}
        for name, entry in self.entries().items():
            if name in entries or not (name in broken_names or entry.file in broken_files):
                continue
            # The last good rule, with the new templates if they are good for it; if not,
            # with its own, and the template's problems are reported too.
            problems = template_problems(templates, entry.rule)
            if not problems:
                entry = Entry(entry.rule, entry.file, templates)
            elif name not in reported:
                loaded.problems.extend(
                    RuleProblem(entry.file, name, "template", p) for p in problems
                )
            entries[name] = entry
            log.error("rule %r is broken on disk; keeping its last good version", name)
        with self._lock:
            self._entries = entries
            self.problems = list(loaded.problems)
            self._fingerprint = fingerprint
        for problem in loaded.problems:
            log.error("rule problem: %s", problem)
        log.info("rules loaded: %s", ", ".join(sorted(entries)) or "none")
        return self.problems

    def changed_on_disk(self) -> bool:
        return self._disk_state() != self._fingerprint

    def get(self, name: str) -> Rule | None:
        entry = self.entry(name)
        return entry.rule if entry else None

    def entry(self, name: str) -> Entry | None:
        with self._lock:
            return self._entries.get(name)

    def entries(self) -> dict[str, Entry]:
        with self._lock:
            return dict(self._entries)

    def enabled(self) -> list[Rule]:
        with self._lock:
            return [entry.rule for entry in self._entries.values() if entry.rule.enabled]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.enabled())

    def nps_windows(self) -> dict[str, timedelta]:
        """nps_survey rules and how long their replies count, for inbound handling."""
        with self._lock:
            return {
                name: entry.rule.response_window_td
                for name, entry in self._entries.items()
                if isinstance(entry.rule, NpsSurveyRule)
            }

    def attribution_days(self) -> dict[str, int]:
        with self._lock:
            return {name: entry.rule.attribution_days for name, entry in self._entries.items()}

    def _disk_state(self) -> tuple[tuple[str, int, int], ...]:
        # Everything under the rules folder: announcements' customers files live there too.
        paths = [*self.directory.rglob("*"), *self.settings.paths.templates.rglob("*.j2")]
        state = []
        for path in sorted(paths):
            try:
                stat = path.stat()
            except OSError:
                continue
            state.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(state)
