import os
import threading
from pathlib import Path

import pytest
from jinja2 import TemplateNotFound
from jinja2.exceptions import SecurityError, UndefinedError

from campaigner.config import Settings
from campaigner.messages.context import sample_context
from campaigner.messages.templates import MessageTemplates, TemplateProblem


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "templates" / "messages"
    path.mkdir(parents=True)
    return path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def templates(folder: Path, **config: object) -> MessageTemplates:
    return MessageTemplates(folder, Settings.model_validate(config))


def test_locale_variant_is_picked_then_plain_then_shop_locale(folder: Path) -> None:
    write(folder, "hello.fa.j2", "سلام {{ first_name }}")
    write(folder, "hello.j2", "Hello {{ first_name }}")
    write(folder, "only.fa.j2", "فقط فارسی")
    t = templates(folder)
    context = {"first_name": "Sara"}
    assert t.render("hello.j2", "fa", context, transactional=True) == "سلام Sara"
    assert t.render("hello.j2", "fa_IR", context, transactional=True) == "سلام Sara"
    assert t.render("hello.j2", "en", context, transactional=True) == "Hello Sara"
    assert t.render("hello.j2", "de", context, transactional=True) == "Hello Sara"
    assert t.render("only.j2", "en", {}, transactional=True) == "فقط فارسی"
    assert t.exists("hello.j2") and t.exists("only.j2")
    assert not t.exists("missing.j2")
    (folder / "vip").mkdir()
    write(folder, "vip/hello.en.j2", "Hello VIP")
    assert not t.exists("vip/hello.j2"), "a MessageTemplates is the directory as it was read"
    t = templates(folder)
    assert t.render("vip/hello.j2", "en", {}, transactional=True) == "Hello VIP"
    with pytest.raises(TemplateNotFound):
        t.render("missing.j2", "fa", {}, transactional=True)


def test_marketing_messages_get_the_locale_footer(folder: Path) -> None:
    write(folder, "promo.j2", "Sale today!\n")
    t = templates(folder)
    assert t.render("promo.j2", "fa", {}, transactional=False) == "Sale today!\nلغو۱۱"
    assert t.render("promo.j2", "en", {}, transactional=False) == (
        "Sale today!\nReply STOP to opt out"
    )
    assert t.render("promo.j2", "en", {}, transactional=True) == "Sale today!"
    write(folder, "persian_only.fa.j2", "حراج امروز")
    t = templates(folder)
    # Text and footer in the same language, even for a customer without a variant of their own.
    assert t.render("persian_only.j2", "de", {}, transactional=False) == "حراج امروز\nلغو۱۱"
    custom = templates(folder, messages={"optout_footer": {"fa": "لغو ۱۱"}})
    assert custom.render("promo.j2", "en", {}, transactional=False) == "Sale today!\nلغو ۱۱"


def test_whitespace_trimmed_but_line_breaks_kept(folder: Path) -> None:
    write(
        folder,
        "lines.j2",
        "  \n{% if vip %}\nDear VIP,\n{% endif %}\nLine one\nLine two\n\n",
    )
    t = templates(folder)
    assert t.render("lines.j2", "en", {"vip": True}, transactional=True) == (
        "Dear VIP,\nLine one\nLine two"
    )


def test_no_html_escaping(folder: Path) -> None:
    write(folder, "amp.j2", "{{ shop }}")
    t = templates(folder)
    assert t.render("amp.j2", "en", {"shop": "Tom & Jerry <3"}, transactional=True) == (
        "Tom & Jerry <3"
    )


def test_undefined_variable_and_sandbox_fail_at_render(folder: Path) -> None:
    write(folder, "typo.j2", "Hi {{ frist_name }}")
    write(folder, "evil.j2", "{{ customer.__class__.__mro__ }}")
    t = templates(folder)
    with pytest.raises(UndefinedError):
        t.render("typo.j2", "en", {"first_name": "A"}, transactional=True)
    context = sample_context("birthday", "en", t.settings)
    with pytest.raises(SecurityError):
        t.render("evil.j2", "en", context, transactional=True)


def check(t: MessageTemplates, name: str, **options: object) -> list[TemplateProblem]:
    defaults: dict[str, object] = {
        "trigger": "birthday",
        "max_segments": None,
        "transactional": False,
    }
    return t.check(name, **{**defaults, **options})  # type: ignore[arg-type]


def test_check_passes_the_samples_shipped_with_campaigner() -> None:
    samples = Path(__file__).parents[2] / "campaigner" / "samples" / "templates" / "messages"
    t = MessageTemplates(samples, Settings())
    for name, trigger in [
        ("birthday.j2", "birthday"),
        ("thank_you.j2", "post_purchase"),
        ("win_back.j2", "win_back"),
        ("referral_request.j2", "referral_request"),
    ]:
        assert check(t, name, trigger=trigger, max_segments=3) == []


def test_check_reports_syntax_error_with_line(folder: Path) -> None:
    write(folder, "birthday.fa.j2", "سلام {{ first_name }}\nتولدت مبارک {{ shop.name }\n")
    problems = check(templates(folder), "birthday.j2")
    assert len(problems) == 1
    assert problems[0].line == 2
    assert str(problems[0]).startswith(f"{folder / 'birthday.fa.j2'}:2: syntax error")


def test_check_reports_undefined_variable_with_line(folder: Path) -> None:
    write(folder, "birthday.fa.j2", "سلام\n{{ frist_name }}\n")
    write(folder, "birthday.en.j2", "Hi {{ first_name }}, order {{ order.id }}\n")
    problems = check(templates(folder), "birthday.j2")
    messages = sorted(str(p) for p in problems)
    assert messages == [
        f"{folder / 'birthday.en.j2'}:1: undefined variable 'order' (not available for birthday)",
        f"{folder / 'birthday.fa.j2'}:2: undefined variable 'frist_name'",
    ]
    # The same `order` is fine for a trigger about an order.
    assert check(templates(folder), "birthday.en.j2", trigger="post_purchase") == []


def test_check_reports_coupon_when_the_rule_has_none(folder: Path) -> None:
    write(folder, "promo.j2", "Code {{ coupon.code }}")
    t = templates(folder)
    assert check(t, "promo.j2") == []
    problems = check(t, "promo.j2", has_coupon=False)
    assert [p.message for p in problems] == ["undefined variable 'coupon' (the rule has no coupon)"]


def test_check_reports_forbidden_sandbox_access(folder: Path) -> None:
    write(folder, "evil.j2", "Hi\n{{ customer.__class__ }}\n")
    write(folder, "evil2.j2", "{{ customer['_sa_instance_state'] }}")
    write(folder, "evil3.j2", "Hi\n\n{{ first_name.format.__globals__ }}")
    t = templates(folder)
    problem = check(t, "evil.j2")[0]
    assert (problem.line, problem.message) == (2, "forbidden access to '__class__'")
    assert check(t, "evil2.j2")[0].message == "forbidden access to '_sa_instance_state'"
    assert check(t, "evil3.j2")[0].line == 3


def test_check_finds_unsafe_calls_when_rendering_the_sample(folder: Path) -> None:
    write(folder, "call.j2", "Hi\n{{ '{0.__class__}'.format(customer) }}")
    problem = check(templates(folder), "call.j2")[0]
    assert problem.line == 2
    assert "unsafe" in problem.message


def test_check_reports_a_template_over_max_segments(folder: Path) -> None:
    # 65 UCS-2 units with the sample name «محمد علی»; the footer «لغو۱۱» on its line adds 6.
    write(folder, "long.fa.j2", "سلام {{ first_name }}، " + "ت" * 50)
    write(folder, "long.en.j2", "Hi {{ first_name }} " + "x" * 100)
    t = templates(folder)
    problems = check(t, "long.j2", max_segments=1)
    assert len(problems) == 1
    assert problems[0].path.name == "long.fa.j2"
    assert problems[0].message.startswith("too long: a sample message takes 2 segments")
    assert "> max_segments 1" in problems[0].message
    # Without the footer (transactional) the Persian text fits in one part.
    assert check(t, "long.j2", max_segments=1, transactional=True) == []
    assert check(t, "long.j2", max_segments=2) == []


def test_check_reports_a_missing_template_and_bad_filter_call(folder: Path) -> None:
    write(folder, "bad_filter.j2", "{{ today | jalali('%Q') }}")
    t = templates(folder)
    assert check(t, "nope.j2")[0].message == "template not found"
    problem = check(t, "bad_filter.j2")[0]
    assert problem.line == 1
    assert "%Q" in problem.message


def checks_within(seconds: float, t: MessageTemplates, name: str) -> list[TemplateProblem]:
    """`check` in a thread: a check that never ends fails the test instead of hanging it."""
    result: list[list[TemplateProblem]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(check(t, name, trigger="post_purchase"))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not errors, f"check raised instead of naming a problem: {errors[0]!r}"
    assert result, f"check did not finish within {seconds}s"
    return result[0]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "template_limit: more than 100,000 loop iterations",
        ),
        ("{{ 'a' * 10**10 }}", "template_limit: a repetition of 10,000,000,000 characters"),
        ("{{ 'a' * 200000 }}", "template_limit: a repetition of 200,000 characters"),
        ("Hi {{ first_name }}\n{{ '{0}'.format() }}", "IndexError: "),
        ("{{ {}.pop('missing') }}", "KeyError: 'missing'"),
        ('{% include "hostile.j2" %}', "includes or calls itself without end"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nested too deeply"),
    ],
)
def test_check_names_every_hostile_template_within_seconds(
    folder: Path, source: str, message: str
) -> None:
    write(folder, "hostile.j2", source)
    problems = checks_within(20, templates(folder), "hostile.j2")
    assert [p.message[: len(message)] for p in problems] == [message]


def test_check_applies_the_segment_ceiling_without_max_segments(folder: Path) -> None:
    write(folder, "long.j2", "{{ 'a' * 2000 }}")
    problems = check(templates(folder), "long.j2", max_segments=None, transactional=True)
    assert [p.message for p in problems] == [
        "too long: a sample message takes 14 segments (2000 gsm7 units) > the ceiling of 10 "
        "(messages.max_segments)"
    ]
    raised = templates(folder, messages={"max_segments": 20})
    assert check(raised, "long.j2", max_segments=None, transactional=True) == []


def test_a_template_file_that_is_not_a_regular_file_is_named(folder: Path) -> None:
    os.mkfifo(folder / "pipe.j2")
    write(folder, "big.j2", "x" * 70_000)
    t = templates(folder)
    assert [p.message for p in check(t, "pipe.j2")] == [
        "cannot read: not a regular file (a FIFO): a template must be a plain file"
    ]
    assert [p.message for p in check(t, "big.j2")] == [
        "cannot read: too large (70000 bytes): a template file is at most 65536 bytes"
    ]


def test_max_segments_counts_the_part_an_escape_pair_moves_to(folder: Path) -> None:
    # "Hi Mary Ann " is 12 septets: 140 more fill a part to 152, and "€" (ESC + e) moves whole
    # to the second part, which then runs over into a third.
    write(folder, "euro.en.j2", "Hi {{ first_name }} " + "a" * 140 + "€" + "a" * 152)
    t = templates(folder, customers={"locale": "en"})
    problems = check(t, "euro.j2", max_segments=2, transactional=True)
    assert [p.message.split(" (")[0] for p in problems] == [
        "too long: a sample message takes 3 segments"
    ]
