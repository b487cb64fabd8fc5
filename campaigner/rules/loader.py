"""Load every rule file in a directory and report every problem, each naming file, rule, field.

A marketer should see all mistakes in one `rules check`, not one per run, so nothing here
stops at the first problem.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from campaigner.announcements.listing import read_listing
from campaigner.errors import CampaignerError
from campaigner.files import Unreadable, read_text_file
from campaigner.rules.models import TRIGGERS, AnnouncementRule, Rule

TemplateChecker = Callable[[Rule], list[str]]
_RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


@dataclass(frozen=True)
class RuleProblem:
    file: Path
    rule: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [str(self.file)]
        if self.rule:
            parts.append(f"rule {self.rule!r}")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


@dataclass
class RuleSet:
    rules: dict[str, Rule] = field(default_factory=dict)
    problems: list[RuleProblem] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_rules(
    directory: Path,
    *,
    templates: Path | None = None,
    template_checker: TemplateChecker | None = None,
    region: str = "IR",
) -> RuleSet:
    """Every `*.toml` in `directory`, validated.

    With `templates` (the message templates directory) each rule's template must exist there;
    `template_checker` may add deeper template problems (undefined variables, ...), reported on
    the rule's `template` field. An announcement's customers file is read (its phones in
    `region`), and its bad lines are problems of `audience.customers_file`.
    """
    if not directory.is_dir():
        raise CampaignerError(f"{directory}: rules directory not found")
    result = RuleSet()
    for path in sorted(directory.glob("*.toml")):
        rule = _load_file(path, result.problems)
        if rule is None:
            continue
        if rule.name in result.files:
            first = result.files[rule.name]
            result.problems.append(
                RuleProblem(path, rule.name, "name", f"duplicate rule name (also in {first})")
            )
            continue
        result.files[rule.name] = path
        listed = _listing_problems(rule, directory, region)
        result.problems.extend(
            RuleProblem(path, rule.name, "audience.customers_file", p) for p in listed
        )
        problems = _template_problems(rule, templates, template_checker)
        result.problems.extend(RuleProblem(path, rule.name, "template", p) for p in problems)
        if not problems and not listed:
            result.rules[rule.name] = rule
    return result


def _load_file(path: Path, problems: list[RuleProblem]) -> Rule | None:
    try:
        data: dict[str, Any] = tomllib.loads(read_text_file(path, "a rule"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(RuleProblem(path, None, None, f"TOML syntax error: {exc}"))
        return None
    except RecursionError:
        problems.append(RuleProblem(path, None, None, "TOML nested too deeply"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(RuleProblem(path, None, None, f"cannot read: {exc}"))
        return None
    except Unreadable as exc:
        problems.append(RuleProblem(path, None, None, str(exc)))
        return None
    data.setdefault("name", path.stem)
    name = data["name"] if isinstance(data["name"], str) else path.stem
    trigger = data.get("trigger")
    if trigger not in TRIGGERS:
        message = (
            "required"
            if trigger is None
            else f"unknown trigger {trigger!r} (expected one of: {', '.join(TRIGGERS)})"
        )
        problems.append(RuleProblem(path, name, "trigger", message[:300]))
        return None
    try:
        return _RULE.validate_python(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(RuleProblem(path, name, _field(error, trigger), _message(error)))
        return None
    except RecursionError:
        problems.append(RuleProblem(path, name, None, "TOML nested too deeply"))
        return None


def _field(error: ErrorDetails, trigger: str) -> str:
    loc = list(error["loc"])
    if loc and loc[0] == trigger:
        loc = loc[1:]
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(rule)"


def _message(error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    bounds = {
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {op} {bound}"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def _listing_problems(rule: Rule, directory: Path, region: str) -> list[str]:
    """Reads an announcement's customers file into the rule; the file's problems."""
    if not isinstance(rule, AnnouncementRule) or rule.audience.customers_file is None:
        return []
    listing = read_listing(directory / rule.audience.customers_file, region)
    if not listing.problems and not listing.ids:
        listing.problems.append(f"{rule.audience.customers_file}: names no customer")
    rule.set_listed(frozenset(listing.ids), frozenset(listing.phones))
    return listing.problems


def _template_problems(
    rule: Rule, templates: Path | None, checker: TemplateChecker | None
) -> list[str]:
    problems: list[str] = []
    if templates is not None and not template_exists(templates, rule.template_stem):
        problems.append(
            f"template {rule.template!r} not found: expected {templates}/{rule.template_stem}.j2 "
            f"or {templates}/{rule.template_stem}.<locale>.j2"
        )
    elif checker is not None:
        problems.extend(checker(rule))
    return problems


def template_exists(templates: Path, stem: str) -> bool:
    """A template exists as `<stem>.j2` or in at least one locale, `<stem>.<locale>.j2`.

    Whatever is there counts, a FIFO or a dangling symlink too: the template checker then
    says what is wrong with it, instead of "not found" for a file the marketer can see.
    """
    if _present(templates / f"{stem}.j2"):
        return True
    return any(_present(path) for path in templates.glob(f"{stem}.*.j2"))


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()
