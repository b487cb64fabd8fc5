"""Templates cannot run away: each hostile template fails its render with TemplateLimit,
within its time budget and without building more than a few megabytes; honest ones render."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import safe_range

from campaigner.config import Settings
from campaigner.messages.budget import RenderLimits, TemplateLimit
from campaigner.messages.context import sample_context
from campaigner.messages.sandbox import BoundedEnvironment
from campaigner.messages.templates import MessageTemplates

HOSTILE = {
    "nested range loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "nested loops over a text": (
        "{% set s = 'ab' * 5000 %}{% for a in s %}{% for b in s %}x{% endfor %}{% endfor %}"
    ),
    "a loop capturing output": (
        "{% set t %}{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
        "{% endfor %}{% endset %}{{ t|length }}"
    ),
    "a huge repetition": "{{ 'a' * 10**10 }}",
    "a long message": "{{ 'a' * 200000 }}",
    "a list repetition": "{{ [1] * 10**10 }}",
    "a huge power": "{{ 9 ** (9 ** 9) }}",
    "squaring in a loop": (
        "{% set ns = namespace(n=3) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}"
    ),
    "a wide % format": "{{ '%0999999999d' % 1 }}",
    "a '*' % width": "{{ '%*d' % (999999999, 1) }}",
    "the format filter": "{{ '%0999999999d'|format(1) }}",
    "a wide str.format": "{{ '{:>999999999}'.format(1) }}",
    "a nested str.format width": "{{ '{:>{}}'.format(1, 999999999) }}",
    "format_map": "{{ '{a:>999999999}'.format_map({'a': 1}) }}",
    "str.center": "{{ 'a'.center(999999999) }}",
    "str.zfill": "{{ '1'.zfill(999999999) }}",
    "str.expandtabs": "{{ ('\t' * 5000).expandtabs(999999) }}",
    "the center filter": "{{ 'a'|center(999999999) }}",
    "the indent filter": "{{ ('a\n' * 3000)|indent(99999) }}",
    "the wordwrap filter": "{{ ('a ' * 4000)|wordwrap(1, wrapstring='-' * 9000) }}",
    "str.replace": "{{ ('a' * 5000).replace('a', 'b' * 5000) }}",
    "the replace filter": "{{ ('a' * 5000)|replace('a', 'b' * 5000) }}",
    "str.translate": "{{ ('a' * 5000).translate({97: 'b' * 5000}) }}",
    "str.join": "{{ ('x' * 9000).join('y' * 9000) }}",
    "the join filter": "{{ range(90000)|map('string')|join('-' * 100) }}",
    "doubling with ~": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}"
    ),
    "doubling a list": (
        "{% set l = ['x' * 1000] %}{% for i in range(64) %}{{ l.extend(l) }}{% endfor %}"
    ),
    "appending in a loop": (
        "{% set l = [] %}{% for i in range(100000) %}{{ l.append('x' * 5000) }}{% endfor %}"
    ),
    "references in list literals": (
        "{% set a = ['x' * 9000] %}{% set b = [a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c, c] %}"
        "{% set e = [d, d, d, d, d, d, d, d, d] %}{% set f = [e, e, e, e, e, e, e, e, e] %}"
        "{{ f|tojson }}"
    ),
    "printing deep references": (
        "{% set a = ['x' * 9000] %}{% set b = [a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c, c] %}"
        "{% set e = [d, d, d, d, d, d, d, d, d] %}{% set f = [e, e, e, e, e, e, e, e, e] %}"
        "{{ f }}"
    ),
    "a macro doubling its output": (
        "{% macro grow(n) %}{% if n %}{{ grow(n - 1) }}{{ grow(n - 1) }}{% else %}x{% endif %}"
        "{% endmacro %}{{ grow(40) }}"
    ),
}


def finishes(seconds: float, work: Callable[[], Any]) -> BaseException | Any:
    """Runs `work` in a thread; what it returned or raised. A test that would hang fails."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still running after {seconds}s"
    return outcome[0]


def templates(folder: Path, source: str, **messages: object) -> MessageTemplates:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.j2").write_text(source, encoding="utf-8")
    return MessageTemplates(folder, Settings.model_validate({"messages": messages}))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_template_fails_within_its_budget(tmp_path: Path, name: str) -> None:
    t = templates(tmp_path, HOSTILE[name], render_timeout_seconds=0.5)
    context = sample_context("post_purchase", "en", t.settings)
    tracemalloc.start()
    try:
        outcome = finishes(20, lambda: t.render("t.j2", "en", context, transactional=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(outcome, TemplateLimit), outcome
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MB built before failing"


def test_the_limits_are_named_in_the_error(tmp_path: Path) -> None:
    t = templates(tmp_path, HOSTILE["nested range loops"], render_timeout_seconds=0.2)
    with pytest.raises(TemplateLimit, match=r"more than 100,000 loop iterations|0\.2s"):
        t.render("t.j2", "en", {}, transactional=True)
    long = templates(tmp_path / "b", "{{ 'a' * 20000 }}", render_max_chars=15000)
    with pytest.raises(
        TemplateLimit, match=r"20,000 .* limit is 15,000 \(messages.render_max_chars\)"
    ):
        long.render("t.j2", "en", {}, transactional=True)


def test_a_runaway_template_gets_a_tenth_of_the_time_from_then_on(tmp_path: Path) -> None:
    slow = (
        "{% set s = 'ab' * 5000 %}{% for i in range(90000) %}{% if s.count('a') > 5000 %}x"
        "{% endif %}{% endfor %}"
    )
    t = templates(tmp_path, slow, render_timeout_seconds=0.05)
    with pytest.raises(TemplateLimit, match=r"took longer than 0\.05s"):
        t.render("t.j2", "en", {}, transactional=True)
    with pytest.raises(TemplateLimit, match=r"took longer than 0\.005s"):
        t.render("t.j2", "en", {}, transactional=True)


def test_honest_templates_still_do_what_jinja_does(tmp_path: Path) -> None:
    source = (
        "{% set names = ['Sara', 'Ali'] %}{% for n in names %}{{ loop.index }}:{{ n|upper }} "
        "{% endfor %}{{ '%05.1f'|format(3.14159) }} {{ '{:>6}'.format('ab') }} "
        "{{ 'x' * 3 ~ '-' ~ 2 ** 10 }} {{ ('a b c'.split() * 2)|join(',') }} "
        "{{ 'tab\there'.expandtabs(2) }} {{ 'long text here'|wordwrap(4) }} "
        "{% for i in range(3) if i != 1 %}{{ i }}{% else %}none{% endfor %} "
        "{{ {'k': 'v'}.items()|list }} {{ '{a}'.format_map({'a': 1}) }}"
    )
    t = templates(tmp_path, source)
    assert t.render("t.j2", "en", {}, transactional=True) == (
        "1:SARA 2:ALI 003.1     ab xxx-1024 a,b,c,a,b,c tab here long\ntext\nhere 02 [('k', 'v')] 1"
    )


def test_loops_keep_what_jinja_loops_offer(tmp_path: Path) -> None:
    source = (
        "{% for x in ['a', 'b', 'c'] %}{{ x }}{{ loop.length }}{% if loop.last %}.{% endif %}"
        "{% endfor %} {% for k, v in {'x': 1}.items() %}{{ k }}={{ v }}{% endfor %} "
        "{% for n in [[1, [2]], [3]] recursive %}{% if n is iterable %}{{ loop(n) }}"
        "{% else %}{{ n }}{% endif %}{% endfor %} {% for x in [] %}x{% else %}empty{% endfor %}"
    )
    t = templates(tmp_path, source)
    assert t.render("t.j2", "en", {}, transactional=True) == "a3b3c3. x=1 123 empty"


@pytest.mark.parametrize(
    "source",
    [
        "{{ customer.__class__ }}",
        "{{ customer.__dataclass_fields__ }}",
        "{{ coupon.__init__ }}",
        "{{ order.items[0].__class__ }}",
        "{{ shop.__reduce_ex__(2) }}",
        "{{ customer.first_name.__class__ }}",
        "{{ coupon.expires_at.__class__ }}",
        "{{ '{0.__class__}'.format(customer) }}",
    ],
)
def test_the_views_read_without_checks_are_their_fields_only(tmp_path: Path, source: str) -> None:
    # Fields of the context's views skip the sandbox's checks; anything else on them (or on
    # what a field holds) still goes through them.
    t = templates(tmp_path, source)
    context = sample_context("post_purchase", "en", t.settings)
    with pytest.raises(SecurityError):
        t.render("t.j2", "en", context, transactional=True)


def test_the_views_fields_and_properties_still_render(tmp_path: Path) -> None:
    source = (
        "{{ customer.first_name }} {{ order.items[0].category }} {{ coupon.code }} "
        "{{ shop.name }} {{ customer.tags|join(',') }}"
    )
    t = templates(tmp_path, source)
    context = sample_context("post_purchase", "en", t.settings)
    assert t.render("t.j2", "en", context, transactional=True) == (
        f"Mary Ann tea THX-7K3M-9QPX {t.settings.shop.name} vip"
    )


@dataclass
class _Mutable:
    name: str


@dataclass(frozen=True)
class _Private:
    _secret: str


@pytest.mark.parametrize("kind", [_Mutable, _Private, Settings])
def test_only_frozen_dataclasses_without_private_fields_are_plain_data(kind: type) -> None:
    with pytest.raises(TypeError, match="plain data"):
        BoundedEnvironment(limits=RenderLimits(), filters={}, plain_data=[kind])


def test_templates_see_the_sandboxs_globals_and_no_others(tmp_path: Path) -> None:
    # A template's globals are copied from the environment's when it is loaded: the
    # sandbox's range and namespace, without lipsum (removed before any template loads).
    t = templates(tmp_path, "{{ lipsum is defined }} {{ range(3)|list }} {{ namespace(a=1).a }}")
    assert t.render("t.j2", "en", {}, transactional=True) == "False [0, 1, 2] 1"
    template = t.choose("t.j2", "en").template
    assert template.globals["range"] is t.env.globals["range"] is safe_range
