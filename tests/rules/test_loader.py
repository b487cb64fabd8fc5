import os
import threading
from datetime import time, timedelta
from pathlib import Path

import pytest

from campaigner.errors import CampaignerError
from campaigner.project import SAMPLES
from campaigner.rules.loader import RuleProblem, RuleSet, load_rules
from campaigner.rules.models import (
    BirthdayRule,
    NpsSurveyRule,
    PostPurchaseRule,
    ReferralRequestRule,
    Rule,
    WinBackRule,
)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    for name in ("thanks.j2", "birthday.fa.j2", "birthday.en.j2"):
        (directory / name).write_text("Hi {{ first_name }}", encoding="utf-8")
    return directory


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_rules_load_with_their_templates() -> None:
    rules = load_rules(SAMPLES / "rules", templates=SAMPLES / "templates" / "messages")
    assert [str(p) for p in rules.problems] == []
    assert sorted(rules.rules) == [
        "birthday",
        "nowruz",
        "nps_survey",
        "referral_request",
        "thank_you",
        "win_back",
        "yalda",
    ]
    nps = rules.rules["nps_survey"]
    assert isinstance(nps, NpsSurveyRule) and not nps.enabled
    assert nps.response_window_td == timedelta(days=3)
    birthday = rules.rules["birthday"]
    assert isinstance(birthday, BirthdayRule)
    assert birthday.send_time == time(10, 0) and birthday.lateness == timedelta(hours=12)
    assert birthday.coupon is not None and birthday.coupon.percent == 15
    thanks = rules.rules["thank_you"]
    assert isinstance(thanks, PostPurchaseRule) and thanks.delay_td == timedelta(hours=2)
    assert isinstance(rules.rules["win_back"], WinBackRule)
    assert isinstance(rules.rules["referral_request"], ReferralRequestRule)


def test_a_good_rule_per_trigger_with_defaults(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(rules_dir, "a.toml", 'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n')
    write(rules_dir, "b.toml", 'trigger = "birthday"\ntemplate = "birthday.j2"\n')
    write(rules_dir, "c.toml", 'trigger = "win_back"\ntemplate = "thanks"\ninactive_days = 60\n')
    write(
        rules_dir,
        "d.toml",
        'trigger = "referral_request"\ntemplate = "thanks"\nafter_orders = 2\ndelay = "1d"\n',
    )
    write(rules_dir, "e.toml", 'trigger = "nps_survey"\ntemplate = "thanks"\ndelay = "3d"\n')
    loaded = load_rules(rules_dir, templates=templates)
    assert loaded.problems == []
    assert {name: rule.lateness for name, rule in loaded.rules.items()} == {
        "a": timedelta(days=1),
        "b": timedelta(hours=12),
        "c": timedelta(days=2),
        "d": timedelta(days=2),
        "e": timedelta(days=1),
    }
    nps = loaded.rules["e"]
    assert isinstance(nps, NpsSurveyRule) and nps.response_window_td == timedelta(days=3)
    assert loaded.rules["a"].attribution_days == 7 and not loaded.rules["a"].transactional


def test_every_problem_names_file_rule_and_field(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(
        rules_dir,
        "birthday.toml",
        'trigger = "birthday"\ntemplate = "birthday"\ndays_before = 40\n',
    )
    write(
        rules_dir,
        "typo.toml",
        'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\ndelya = 1\n',
    )
    write(
        rules_dir,
        "type.toml",
        'trigger = "win_back"\ntemplate = "thanks"\ninactive_days = "many"\n',
    )
    write(rules_dir, "unknown.toml", 'trigger = "anniversary"\ntemplate = "thanks"\n')
    write(rules_dir, "missing.toml", 'trigger = "post_purchase"\ntemplate = "nope"\ndelay = "1h"\n')
    write(
        rules_dir,
        "duration.toml",
        'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "2 hours"\n',
    )
    write(rules_dir, "syntax.toml", 'trigger = "post_purchase"\ntemplate = \n')
    write(
        rules_dir,
        "where.toml",
        'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n'
        '[audience]\nwhere = [{ field = "password", op = "=", value = "x" }]\n',
    )
    loaded = load_rules(rules_dir, templates=templates)
    problems = [str(p) for p in loaded.problems]
    expected = [
        f"{rules_dir}/birthday.toml: rule 'birthday': days_before: must be <= 30",
        f"{rules_dir}/typo.toml: rule 'typo': delya: unknown key",
        f"{rules_dir}/type.toml: rule 'type': inactive_days: Input should be a valid integer",
        f"{rules_dir}/unknown.toml: rule 'unknown': trigger: unknown trigger 'anniversary'",
        f"{rules_dir}/missing.toml: rule 'missing': template: template 'nope' not found",
        f"{rules_dir}/duration.toml: rule 'duration': delay: bad duration '2 hours'",
        f"{rules_dir}/syntax.toml: TOML syntax error: Invalid value (at line 2, column 12)",
        f"{rules_dir}/where.toml: rule 'where': audience.where[0].field: Input should be",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected)
    assert loaded.rules == {}


def test_duplicate_names_are_reported(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(
        rules_dir,
        "a.toml",
        'name = "thanks"\ntrigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n',
    )
    write(
        rules_dir,
        "b.toml",
        'name = "thanks"\ntrigger = "post_purchase"\ntemplate = "thanks"\ndelay = "2h"\n',
    )
    loaded = load_rules(rules_dir, templates=templates)
    assert list(loaded.rules) == ["thanks"]
    assert [str(p) for p in loaded.problems] == [
        f"{rules_dir}/b.toml: rule 'thanks': name: duplicate rule name (also in {rules_dir}/a.toml)"
    ]


def test_model_level_checks(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(
        rules_dir,
        "x.toml",
        'trigger = "birthday"\ntemplate = "birthday"\nsend_at = "25:00"\nwindow = "9-20"\n'
        'holdout_percent = 60\ncalendar = "lunar"\n'
        "coupon = { percent = 10, amount = 5 }\n"
        'audience = { where = [{ field = "city", op = "in", value = "Tehran" }] }\n',
    )
    loaded = load_rules(rules_dir, templates=templates)
    fields = {p.field: p.message for p in loaded.problems}
    assert set(fields) == {
        "send_at",
        "window",
        "holdout_percent",
        "calendar",
        "coupon",
        "audience.where[0]",
    }
    assert fields["holdout_percent"] == "must be <= 50"
    assert "exactly one of percent or amount" in fields["coupon"]
    assert "needs a list" in fields["audience.where[0]"]


def test_template_checker_problems_are_on_the_template_field(
    tmp_path: Path, templates: Path
) -> None:
    rules_dir = tmp_path / "rules"
    write(
        rules_dir, "thanks.toml", 'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n'
    )
    seen: list[str] = []

    def checker(rule: Rule) -> list[str]:
        seen.append(rule.name)
        return ["undefined variable 'frist_name' (line 1)"]

    loaded = load_rules(rules_dir, templates=templates, template_checker=checker)
    assert seen == ["thanks"] and loaded.rules == {}
    assert loaded.problems == [
        RuleProblem(
            rules_dir / "thanks.toml",
            "thanks",
            "template",
            "undefined variable 'frist_name' (line 1)",
        )
    ]


def test_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(CampaignerError, match="rules directory not found"):
        load_rules(tmp_path / "nowhere")


def loads_within(seconds: float, directory: Path, templates: Path) -> RuleSet:
    """load_rules in a thread: a loader that blocks fails the test instead of hanging it."""
    result: list[RuleSet] = []
    worker = threading.Thread(
        target=lambda: result.append(load_rules(directory, templates=templates)), daemon=True
    )
    worker.start()
    worker.join(seconds)
    assert result, f"load_rules did not finish within {seconds}s"
    return result[0]


def test_a_fifo_or_a_device_is_refused_not_read(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(
        rules_dir, "thanks.toml", 'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n'
    )
    os.mkfifo(rules_dir / "pipe.toml")
    (rules_dir / "zero.toml").symlink_to("/dev/zero")
    (rules_dir / "folder.toml").mkdir()
    loaded = loads_within(10, rules_dir, templates)
    assert list(loaded.rules) == ["thanks"]
    assert {(p.file.name, p.message) for p in loaded.problems} == {
        ("folder.toml", "not a regular file (a directory): a rule must be a plain file"),
        ("pipe.toml", "not a regular file (a FIFO): a rule must be a plain file"),
        ("zero.toml", "not a regular file (a device): a rule must be a plain file"),
    }


def test_an_oversized_rule_file_is_refused(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(rules_dir, "big.toml", "# padding\n" * 10_000)
    loaded = load_rules(rules_dir, templates=templates)
    assert [p.message for p in loaded.problems] == [
        "too large (100000 bytes): a rule file is at most 65536 bytes"
    ]


def test_deeply_nested_toml_is_a_named_problem(tmp_path: Path, templates: Path) -> None:
    rules_dir = tmp_path / "rules"
    write(rules_dir, "deep.toml", "a = " + "[" * 20_000 + "]" * 20_000 + "\n")
    write(rules_dir, "deep_table.toml", "a = " + "{b = " * 5_000 + "1" + "}" * 5_000 + "\n")
    loaded = load_rules(rules_dir, templates=templates)
    assert [str(p) for p in loaded.problems] == [
        f"{rules_dir}/deep.toml: TOML nested too deeply",
        f"{rules_dir}/deep_table.toml: TOML nested too deeply",
    ]


def problems_of(tmp_path: Path, templates: Path, text: str, message: str) -> list[tuple[str, str]]:
    """The problems of one rule file: field, and the start of the message (as long as
    `message`)."""
    write(tmp_path / "rules", "r.toml", text)
    loaded = load_rules(tmp_path / "rules", templates=templates)
    return [(str(p.field), p.message[: len(message)]) for p in loaded.problems]


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('delay = "9999999999d"', "delay", "too long: at most 3650d"),
        ('delay = "999999999d"', "delay", "too long: at most 3650d"),
        ('delay = "1' + "0" * 5000 + 'w"', "delay", "too long: at most 3650d"),
        ('delay = "1h"\nmax_lateness = "400d"', "max_lateness", "must be at most 366d"),
        ('delay = "1h"\npriority = 99999999999999999999999', "priority", "must be <= 1000000"),
        ('delay = "1h"\npriority = -2000000', "priority", "must be >= -1000000"),
        ('delay = "1h"\nattribution_days = 99999999', "attribution_days", "must be <= 3650"),
        ('delay = "1h"\nmax_per_day = 9999999999999', "max_per_day", "must be <= 1000000000"),
        ('delay = "1h"\nmin_order_total = 1e300', "min_order_total", "must be <= 1000000000000000"),
        ('delay = "1h"\nmax_segments = 1000', "max_segments", "must be <= 100"),
        (
            'delay = "1h"\ncoupon = { percent = 5, valid_days = 99999999 }',
            "coupon.valid_days",
            "must be <= 3650",
        ),
        (
            'delay = "1h"\ncoupon = { amount = inf }',
            "coupon.amount",
            "Input should be a finite number",
        ),
        (
            'delay = "1h"\nholdout_percent = nan',
            "holdout_percent",
            "Input should be a finite number",
        ),
    ],
)
def test_every_number_is_range_checked(
    tmp_path: Path, templates: Path, line: str, field: str, message: str
) -> None:
    text = f'trigger = "post_purchase"\ntemplate = "thanks"\n{line}\n'
    assert problems_of(tmp_path, templates, text, message) == [(field, message)]


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ('trigger = "win_back"\ninactive_days = 999999999999', "inactive_days", "must be <= 3650"),
        (
            'trigger = "win_back"\ninactive_days = 30\nmin_orders = 9999999999999',
            "min_orders",
            "must be <= 1000000000",
        ),
        ('trigger = "birthday"\nmax_lateness = "400d"', "max_lateness", "must be at most 366d"),
        (
            'trigger = "referral_request"\ndelay = "1d"\nafter_orders = 99999999999',
            "after_orders",
            "must be <= 1000000000",
        ),
        (
            'trigger = "nps_survey"\ndelay = "1d"\nresponse_window = "99999w"',
            "response_window",
            "too long: at most 3650d",
        ),
    ],
)
def test_trigger_numbers_are_range_checked(
    tmp_path: Path, templates: Path, rule: str, field: str, message: str
) -> None:
    text = f'template = "thanks"\n{rule}\n'
    assert problems_of(tmp_path, templates, text, message) == [(field, message)]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ('{ field = "orders_count", op = ">", value = "abc" }', "orders_count takes a number"),
        ('{ field = "total_spent", op = "in", value = [1, "x"] }', "total_spent takes a number"),
        (
            '{ field = "orders_count", op = ">", value = 99999999999999999999 }',
            "orders_count takes a number between",
        ),
        ('{ field = "city", op = "=", value = 5 }', "city takes text"),
        ('{ field = "orders_count", op = ">", value = true }', "orders_count takes a number"),
    ],
)
def test_audience_conditions_match_their_column(
    tmp_path: Path, templates: Path, condition: str, message: str
) -> None:
    text = (
        f'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n'
        f"[audience]\nwhere = [{condition}]\n"
    )
    assert problems_of(tmp_path, templates, text, message) == [("audience.where[0]", message)]


@pytest.mark.parametrize("template", ["/etc/passwd", "../../etc/passwd", "promo/../../x"])
def test_a_template_outside_the_templates_folder_is_a_named_problem(
    tmp_path: Path, templates: Path, template: str
) -> None:
    """An absolute name crashed the whole check (pathlib refuses an absolute glob) and took
    the console's rule page with it as a 500 (review 1); `..` reads beside the folder."""
    rules_dir = tmp_path / "rules"
    write(
        rules_dir,
        "escape.toml",
        f'trigger = "post_purchase"\ntemplate = "{template}"\ndelay = "1h"\n',
    )
    write(rules_dir, "fine.toml", 'trigger = "post_purchase"\ntemplate = "thanks"\ndelay = "1h"\n')
    loaded = load_rules(rules_dir, templates=templates)
    (problem,) = [str(p) for p in loaded.problems]
    assert problem.startswith(f"{rules_dir}/escape.toml: rule 'escape': template:")
    assert "inside the templates folder" in problem
    assert list(loaded.rules) == ["fine"]
