"""The rules a running engine uses: loaded with their templates checked, and reloaded safely.

A reload never makes things worse: when a rule file turns out broken, the last good version
of that rule keeps running and the problem is reported, until the file is fixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from campaigner.config import Settings
from campaigner.messages.templates import MessageTemplates
from campaigner.rules.loader import RuleProblem, RuleSet, load_rules
from campaigner.rules.models import NpsSurveyRule, Rule

log = logging.getLogger("campaigner.rules")


def check_rules(settings: Settings, directory: Path | None = None) -> RuleSet:
    """Load every rule and check its template against what the engine provides."""
    templates = MessageTemplates(settings.paths.templates, settings)

    def check_template(rule: Rule) -> list[str]:
        problems = templates.check(
            rule.template,
            trigger=rule.trigger,
            max_segments=rule.max_segments,
            transactional=rule.transactional,
            has_coupon=rule.coupon is not None,
        )
        return [str(problem) for problem in problems]

    return load_rules(
        directory or settings.paths.rules,
        templates=settings.paths.templates,
        template_checker=check_template,
    )


class Rulebook:
    """Thread-safe current rules; `reload()` swaps them in keeping last good versions."""

    def __init__(self, settings: Settings, directory: Path | None = None) -> None:
        self.settings = settings
        self.directory = directory or settings.paths.rules
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._files: dict[str, Path] = {}
        self.problems: list[RuleProblem] = []
        self._fingerprint = self._disk_state()
        self.reload()

    def reload(self) -> list[RuleProblem]:
        loaded = check_rules(self.settings, self.directory)
        fingerprint = self._disk_state()
        rules, files = dict(loaded.rules), dict(loaded.files)
        with self._lock:
            broken_files = {problem.file for problem in loaded.problems}
            broken_names = {problem.rule for problem in loaded.problems if problem.rule}
            for name, rule in self._rules.items():
                if name in rules:
                    continue
                if name in broken_names or self._files.get(name) in broken_files:
                    rules[name] = rule
                    files[name] = self._files[name]
                    log.error("rule %r is broken on disk; keeping its last good version", name)
            self._rules, self._files = rules, files
            self.problems = list(loaded.problems)
            self._fingerprint = fingerprint
        for problem in loaded.problems:
            log.error("rule problem: %s", problem)
        log.info("rules loaded: %s", ", ".join(sorted(rules)) or "none")
        return self.problems

    def changed_on_disk(self) -> bool:
        return self._disk_state() != self._fingerprint

    def get(self, name: str) -> Rule | None:
        with self._lock:
            return self._rules.get(name)

    def enabled(self) -> list[Rule]:
        with self._lock:
            return [rule for rule in self._rules.values() if rule.enabled]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.enabled())

    def nps_windows(self) -> dict[str, timedelta]:
        """nps_survey rules and how long their replies count, for inbound handling."""
        with self._lock:
            return {
                name: rule.response_window_td
                for name, rule in self._rules.items()
                if isinstance(rule, NpsSurveyRule)
            }

    def attribution_days(self) -> dict[str, int]:
        with self._lock:
            return {name: rule.attribution_days for name, rule in self._rules.items()}

    def _disk_state(self) -> tuple[tuple[str, int, int], ...]:
        paths = [*self.directory.glob("*.toml"), *self.settings.paths.templates.rglob("*.j2")]
        state = []
        for path in sorted(paths):
            try:
                stat = path.stat()
            except OSError:
                continue
            state.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(state)
