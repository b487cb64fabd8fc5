"""Message templates: Jinja2 in a sandbox, one file per message, optional per-locale variants.

`birthday.j2` is what a rule names; `birthday.fa.j2` and `birthday.en.j2`, when present, are
picked by the customer's locale, then the plain `birthday.j2`, then the shop's default locale.
SMS is plain text, so nothing is HTML-escaped; block tags do not leave blank lines, but the
line breaks a marketer typed are kept.

A `MessageTemplates` is one version of the template directory: every `*.j2` file is read
when it is made, and later edits on disk do not change it. The rulebook keeps the version
each rule was checked with, so a template broken on disk never reaches a customer. Every
render runs within a budget of time and size (`campaigner.messages.budget`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_context,
)
from jinja2.runtime import Context

from campaigner.config import Settings
from campaigner.errors import one_line
from campaigner.files import Unreadable, read_text_file
from campaigner.messages import filters
from campaigner.messages.budget import RenderLimits, TemplateLimit, render_budget
from campaigner.messages.context import TRIGGER_VARIABLES, VIEWS, sample_context
from campaigner.messages.names import fallback_for
from campaigner.messages.sandbox import BoundedEnvironment
from campaigner.messages.sms import measure

SUFFIX = ".j2"
RUNAWAY_SLOWDOWN = 10
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*$")


@dataclass(frozen=True)
class ChosenTemplate:
    """The compiled template for one customer's language, and the variables it reads."""

    template: Template
    locale: str  # the language of the text and of its opt-out footer
    variables: frozenset[str]


@dataclass(frozen=True)
class TemplateProblem:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.message}"


class MessageTemplates:
    """The template directory, with checks for `rules check` and rendering for the dispatcher."""

    def __init__(self, directory: Path, settings: Settings) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.sources, self.unreadable = read_templates(self.directory)
        messages = settings.messages
        self.limits = RenderLimits(messages.render_timeout_seconds, messages.render_max_chars)
        self.env = BoundedEnvironment(
            limits=self.limits,
            filters={
                **filters.FILTERS,
                "money": _money(settings.customers.currency, settings.customers.locale),
            },
            plain_data=VIEWS,
            loader=_Snapshot(self.directory, self.sources),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._variables: dict[str, frozenset[str]] = {}
        # The sources are a snapshot, so a name and locale always choose the same template:
        # looked up once, not by scanning every file name for each message.
        self._chosen: dict[tuple[str, str], ChosenTemplate] = {}
        # Templates that went over their budget once get a tenth of the time from then on:
        # enough for any honest message, and a batch (which holds the database's write
        # lock) full of runaways still ends soon.
        self.runaway: dict[str, str] = {}

    def variants(self, name: str) -> dict[str | None, Path]:
        """The files behind `name`: None for the plain file, else keyed by locale."""
        stem = _stem(name)
        found: dict[str | None, Path] = {}
        if f"{stem}{SUFFIX}" in self.sources:
            found[None] = self.directory / f"{stem}{SUFFIX}"
        for key in sorted(self.sources):
            if not key.startswith(f"{stem}.") or not key.endswith(SUFFIX):
                continue
            locale = key[len(stem) + 1 : -len(SUFFIX)]
            if _LOCALE.match(locale):
                found[locale] = self.directory / key
        return found

    def exists(self, name: str) -> bool:
        return bool(self.variants(name))

    def resolve(self, name: str, locale: str) -> Path | None:
        """The file for this locale: "fa_IR" tries fa_IR, fa, the plain file, the shop's locale."""
        return self._pick(name, locale)[1]

    def _pick(self, name: str, locale: str) -> tuple[str | None, Path | None]:
        variants = self.variants(name)
        locale = (locale or "").replace("-", "_")
        default = self.settings.customers.locale
        for key in (locale, locale.split("_")[0].lower(), None, default):
            if key in variants:
                return key, variants[key]
        return None, None

    def render(
        self, name: str, locale: str, context: dict[str, Any], *, transactional: bool
    ) -> str:
        """The message text; marketing messages end with the opt-out footer in its language."""
        return self.render_chosen(self.choose(name, locale), context, transactional=transactional)

    def choose(self, name: str, locale: str) -> ChosenTemplate:
        """The template for this customer's locale, so a message builds only what it shows."""
        chosen = self._chosen.get((name, locale))
        if chosen is None:
            chosen = self._chosen[name, locale] = self._choose(name, locale)
        return chosen

    def _choose(self, name: str, locale: str) -> ChosenTemplate:
        variant, path = self._pick(name, locale)
        if path is None:
            raise TemplateNotFound(f"{self.directory / name}: no such template")
        key = self._key(path)
        with render_budget(self.limits):  # compiling folds constants: bounded too
            template = self.env.get_template(key)
        # A customer whose language has no variant gets text and footer in the same language.
        return ChosenTemplate(template, variant or locale, self._variables_of(key, template))

    def render_chosen(
        self, chosen: ChosenTemplate, context: dict[str, Any], *, transactional: bool
    ) -> str:
        return self._render_template(
            chosen.template, chosen.locale, context, transactional=transactional
        )

    def _variables_of(self, key: str, template: Template) -> frozenset[str]:
        """What the template reads; everything when it includes, imports or extends another."""
        cached = self._variables.get(key)
        if cached is not None:
            return cached
        tree = self.env.parse(self.sources[key])
        if any(True for _ in tree.find_all(_OTHER_TEMPLATES)):
            variables = _ALL_VARIABLES
        else:
            variables = frozenset(meta.find_undeclared_variables(tree))
        self._variables[key] = variables
        return variables

    def _key(self, path: Path) -> str:
        return path.relative_to(self.directory).as_posix()

    def _render_file(
        self, path: Path, locale: str, context: dict[str, Any], *, transactional: bool
    ) -> str:
        with render_budget(self.limits):
            template = self.env.get_template(self._key(path))
        return self._render_template(template, locale, context, transactional=transactional)

    def _render_template(
        self, template: Template, locale: str, context: dict[str, Any], *, transactional: bool
    ) -> str:
        key = template.name or ""
        limits = self.limits
        if key in self.runaway:
            limits = replace(limits, seconds=limits.seconds / RUNAWAY_SLOWDOWN)
        with self._remember_runaway(key), render_budget(limits):
            text = template.render(context).strip()
        if not transactional:
            footer = self.footer(locale)
            if footer:
                text = f"{text}\n{footer}" if text else footer
        return text

    @contextmanager
    def _remember_runaway(self, key: str) -> Iterator[None]:
        try:
            yield
        except TemplateLimit as exc:
            self.runaway[key] = str(exc)
            raise

    def footer(self, locale: str) -> str:
        table = self.settings.messages.optout_footer
        return fallback_for(locale, table) or fallback_for(self.settings.customers.locale, table)

    def check(
        self,
        name: str,
        *,
        trigger: str,
        max_segments: int | None,
        transactional: bool,
        has_coupon: bool = True,
    ) -> list[TemplateProblem]:
        """Everything wrong with the template behind `name` for a rule with this trigger.

        Each variant is parsed (syntax errors with their line), its variables are compared with
        what the trigger provides, and it is rendered with a sample context to catch forbidden
        sandbox access and texts already longer than `max_segments`.
        """
        variants = self.variants(name)
        unreadable = [
            TemplateProblem(self.directory / key, None, f"cannot read: {problem}")
            for key, problem in self.unreadable.items()
            if key.startswith(f"{_stem(name)}.")
        ]
        if not variants:
            return unreadable or [
                TemplateProblem(self.directory / name, None, "template not found")
            ]
        if trigger not in TRIGGER_VARIABLES:
            known = ", ".join(sorted(TRIGGER_VARIABLES))
            return [
                TemplateProblem(
                    self.directory / name, None, f"unknown trigger {trigger!r} ({known})"
                )
            ]
        allowed = TRIGGER_VARIABLES[trigger] | set(self.env.globals)
        if not has_coupon:
            allowed = allowed - {"coupon"}
        problems: list[TemplateProblem] = list(unreadable)
        for locale, path in variants.items():
            problems += self._check_file(
                path,
                locale or self.settings.customers.locale,
                trigger=trigger,
                allowed=allowed,
                max_segments=max_segments,
                transactional=transactional,
                has_coupon=has_coupon,
            )
        return problems

    def _check_file(
        self,
        path: Path,
        locale: str,
        *,
        trigger: str,
        allowed: frozenset[str] | set[str],
        max_segments: int | None,
        transactional: bool,
        has_coupon: bool,
    ) -> list[TemplateProblem]:
        source = self.sources[self._key(path)]
        try:
            tree = self.env.parse(source, path.name, str(path))
        except TemplateSyntaxError as exc:
            return [TemplateProblem(path, exc.lineno, f"syntax error: {exc.message}")]
        except RecursionError:
            return [TemplateProblem(path, None, "nested too deeply")]
        problems = []
        for variable in sorted(meta.find_undeclared_variables(tree) - allowed):
            hint = ""
            if variable == "coupon":
                hint = " (the rule has no coupon)"
            elif variable in _ALL_VARIABLES:
                hint = f" (not available for {trigger})"
            problems.append(
                TemplateProblem(
                    path, _first_use(tree, variable), f"undefined variable {variable!r}{hint}"
                )
            )
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            attribute = _attribute_name(node)
            if isinstance(attribute, str) and attribute.startswith("_"):
                problems.append(
                    TemplateProblem(path, node.lineno, f"forbidden access to {attribute!r}")
                )
        if problems:
            return problems
        context = sample_context(trigger, locale, self.settings, with_coupon=has_coupon)
        try:
            text = self._render_file(path, locale, context, transactional=transactional)
        except TemplateLimit as exc:
            line = _template_line(exc.__traceback__, path)
            return [TemplateProblem(path, line, f"template_limit: {exc}")]
        except TemplateError as exc:
            return [TemplateProblem(path, _template_line(exc.__traceback__, path), str(exc))]
        except RecursionError:
            return [TemplateProblem(path, None, "includes or calls itself without end")]
        except Exception as exc:
            # Anything a template can raise (IndexError from '{0}'.format(), KeyError, ...)
            # is a problem with this file, never a traceback.
            return [TemplateProblem(path, _template_line(exc.__traceback__, path), one_line(exc))]
        size = measure(text)
        ceiling = self.settings.messages.max_segments
        limit = min(max_segments or ceiling, ceiling)
        if size.segments > limit:
            which = (
                f"max_segments {max_segments}"
                if max_segments is not None and max_segments <= ceiling
                else f"the ceiling of {ceiling} (messages.max_segments)"
            )
            return [
                TemplateProblem(
                    path,
                    None,
                    f"too long: a sample message takes {size.segments} segments "
                    f"({size.units} {size.encoding} units) > {which}",
                )
            ]
        return []


class _Snapshot(BaseLoader):
    """Templates from the sources read at start, under their real file names (so that
    errors and tracebacks point at the file and line)."""

    def __init__(self, directory: Path, sources: dict[str, str]) -> None:
        self.directory = directory
        self.sources = sources

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        if template not in self.sources:
            raise TemplateNotFound(template)
        return self.sources[template], str(self.directory / template), lambda: True


def read_templates(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Every `*.j2` under `directory` by its posix path, and those that cannot be read
    (not a regular file, a symlink out of `directory`, too large, not UTF-8) with the
    reason."""
    sources: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    if not directory.is_dir():
        return sources, unreadable
    for path in sorted(directory.rglob(f"*{SUFFIX}")):
        key = path.relative_to(directory).as_posix()
        try:
            sources[key] = read_text_file(path, "a template", inside=directory)
        except (OSError, UnicodeDecodeError, Unreadable) as exc:
            unreadable[key] = str(exc)
    return sources, unreadable


_ALL_VARIABLES = frozenset().union(*TRIGGER_VARIABLES.values())
# A template that uses another one may read anything through it.
_OTHER_TEMPLATES: tuple[type[nodes.Node], ...] = (
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Extends,
)


def _money(default_currency: str, default_locale: str) -> Any:
    """`money` in templates: currency from the argument or config, language from the customer."""

    @pass_context
    def money(context: Context, value: object, currency: str | None = None) -> str:
        customer = context.get("customer")
        locale = getattr(customer, "locale", "") or default_locale
        return filters.money(value, currency or default_currency, locale)

    return money


def _stem(name: str) -> str:
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def _first_use(tree: nodes.Template, variable: str) -> int | None:
    lines = [node.lineno for node in tree.find_all(nodes.Name) if node.name == variable]
    return min(lines) if lines else None


def _attribute_name(node: nodes.Node) -> object:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value
    return None


def _template_line(tb: TracebackType | None, path: Path) -> int | None:
    """Jinja rewrites tracebacks so that template frames carry the template's file and line."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
