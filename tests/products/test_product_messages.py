"""What product rules say, end to end (plan, dispatch, capture) with the injected clock:
`order.items`, `{{ suggestion }}`, `{{ product }}`, `customer.favourite_category`, the
Persian example of the docs, and an order without items under a guarding template."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from conftest import CaptureGateway
from product_shop import BEANS, POT, TEA, ProductShop, day, item
from shop_builders import put_segment
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer
from campaigner.products.favourites import favourite_categories
from campaigner.reports import build_report, render_html
from campaigner.reports.formats import report_to_dict
from campaigner.rulebook import check_rules
from campaigner.rules.models import product_goals
from campaigner.runtime import Runtime


class Project:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings, self.sessions = settings, sessions
        settings.paths.rules.mkdir()
        settings.paths.templates.mkdir()
        self.shop = ProductShop(sessions, settings)
        self.gateway = CaptureGateway()

    def rule(self, name: str, text: str) -> None:
        (self.settings.paths.rules / f"{name}.toml").write_text(text, encoding="utf-8")

    def template(self, name: str, text: str) -> None:
        (self.settings.paths.templates / name).write_text(text, encoding="utf-8")

    def send_at(self, when: datetime) -> list[str]:
        clock = FixedClock(when)
        runtime = Runtime.build(
            self.settings, clock=clock, sessions=self.sessions, gateway=self.gateway
        )
        before = len(self.gateway.sent)
        report = runtime.plan()
        assert not report.errors, report.errors
        runtime.drain()
        return [message.text for message in self.gateway.sent[before:]]


@pytest.fixture
def project(settings: Settings, sessions: sessionmaker[Session]) -> Project:
    return Project(settings, sessions)


def test_the_persian_example_of_the_docs(project: Project) -> None:
    project.rule(
        "arrived",
        'trigger = "post_purchase"\ntemplate = "arrived.j2"\ndelay = "3d"\ntransactional = true\n',
    )
    project.template(
        "arrived.j2",
        "{{ first_name }} عزیز، {{ order.items[0].name }} به دستتان رسید؟"
        " ({{ order.items[0].category }}، {{ order.items[0].quantity | fa_digits }} عدد)",
    )
    project.shop.customer("ali")
    chai = item("چای ماسالا", product_id="57", categories=["نوشیدنی", "دمنوش"], quantity=2)
    project.shop.order("ali", day(0), chai)
    assert project.send_at(day(3, 2)) == [
        "Ali عزیز، چای ماسالا به دستتان رسید؟ (دمنوش، ۲ عدد)"  # the first, sorted
    ]


def test_an_order_without_items_renders_where_the_template_guards(project: Project) -> None:
    project.rule(
        "arrived",
        'trigger = "post_purchase"\ntemplate = "arrived.j2"\ndelay = "3d"\ntransactional = true\n',
    )
    project.template(
        "arrived.j2",
        "{{ first_name }}, "
        "{% if order.items %}{{ order.items[0].name }}{% else %}your order{% endif %} arrived?",
    )
    project.shop.customer("ali")
    project.shop.order("ali", day(0))
    assert project.send_at(day(3, 2)) == ["Ali, your order arrived?"]


def test_cross_sell_names_the_suggestion_and_the_order(project: Project) -> None:
    project.rule(
        "beans",
        'trigger = "cross_sell"\ntemplate = "beans.j2"\nafter = "7d"\ntransactional = true\n'
        'bought = { categories = ["Teaware"] }\nsuggest = { products = ["BEAN-70"] }\n'
        'suggestion = "دانه قهوه"\n',
    )
    project.template(
        "beans.j2",
        "{{ first_name }} عزیز، کنار {{ order.items[0].name }}، {{ suggestion }} هم داریم.",
    )
    project.shop.customer("ali")
    project.shop.order("ali", day(0), POT)
    project.shop.customer("sara")
    project.shop.order("sara", day(0), POT)
    project.shop.order("sara", day(2), BEANS)  # bought the suggestion since: nothing for her
    assert project.send_at(day(7, 2)) == ["Ali عزیز، کنار Teapot، دانه قهوه هم داریم."]
    assert project.send_at(day(7, 3)) == []  # once per order


def test_replenish_names_the_product_of_the_last_purchase(project: Project) -> None:
    project.rule(
        "refill",
        'trigger = "replenish"\ntemplate = "refill.j2"\ndays = 30\ntransactional = true\n'
        'bought = { categories = ["tea"] }\n',
    )
    project.template("refill.j2", "{{ first_name }}, {{ product }} running low?")
    project.shop.customer("ali")
    project.shop.order("ali", day(0), POT, TEA)
    assert project.send_at(day(30, 2)) == ["Ali, Masala chai running low?"]


def test_favourite_category_by_quantity_then_spend(
    project: Project, sessions: sessionmaker[Session]
) -> None:
    shop = project.shop
    ids = {name: shop.customer(name) for name in ("units", "spend", "unpaid", "none")}
    shop.order("units", day(0), item("Chai", categories=["Tea"], quantity=5, line_total="5"))
    shop.order("units", day(1), item("Pot", categories=["Teaware"], line_total="90"))
    shop.order("spend", day(0), item("Chai", categories=["Tea"], quantity=2, line_total="4"))
    shop.order("spend", day(0), item("Pots", categories=["Teaware"], quantity=2, line_total="9"))
    shop.order("unpaid", day(0), item("Chai", categories=["Tea"]))
    shop.order("unpaid", day(0), item("Pots", categories=["Teaware"], quantity=9), status="pending")
    with sessions() as session:
        found = favourite_categories(session, ids.values())
    assert found == {ids["units"]: "tea", ids["spend"]: "teaware", ids["unpaid"]: "tea"}
    project.rule(
        "thanks",
        'trigger = "post_purchase"\ntemplate = "thanks.j2"\ndelay = "1h"\ntransactional = true\n',
    )
    project.template(
        "thanks.j2", "{{ first_name }}: {{ customer.favourite_category or 'nothing yet' }}"
    )
    shop.order("units", day(10), BEANS)
    shop.order("none", day(10))
    assert sorted(project.send_at(day(10, 2))) == ["None: nothing yet", "Units: tea"]


def test_report_counts_who_bought_the_suggestion(
    project: Project, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    project.rule(
        "beans",
        'trigger = "cross_sell"\ntemplate = "beans.j2"\nafter = "7d"\ntransactional = true\n'
        'bought = { categories = ["Teaware"] }\nsuggest = { products = ["BEAN-70"] }\n'
        'suggestion = "beans"\n',
    )
    project.template("beans.j2", "{{ first_name }}: {{ suggestion }}?")
    shop = project.shop
    for name in ("ali", "reza", "mina"):
        shop.customer(name)
        shop.order(name, day(0), POT)
    assert len(project.send_at(day(7, 2))) == 3
    shop.order("ali", day(9), BEANS)  # bought the suggestion
    shop.order("reza", day(9), TEA)  # bought, but something else
    shop.order("mina", day(20), BEANS)  # after the 7-day attribution window
    rules = check_rules(settings).rules
    with sessions() as session:
        report = build_report(
            session,
            since=None,
            until=None,
            rule=None,
            attribution_days={"beans": 7},
            settings=settings,
            clock=FixedClock(day(30)),
            product_goals=product_goals(rules.values()),
        )
    (beans,) = report.rules
    assert (beans.sent, beans.conversions, beans.bought_it) == (3, 2, 1)
    assert report_to_dict(report)["rules"][0]["bought_it"] == 1
    assert "<br>1 bought it</td>" in render_html(report, shop_name="چای‌خانه")


def test_the_persian_segments_cross_sell_of_the_readme(
    project: Project, sessions: sessionmaker[Session]
) -> None:
    """README "Segments": its rule and template, as written there, reach the loyal customer
    who bought a coffee maker and nobody else."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rule = re.search(r"```toml\n(# rules/loyal_beans\.toml.*?)```", readme, re.S)
    template = re.search(
        r"```jinja\n\{# templates/messages/loyal_beans\.fa\.j2 #\}\n(.*?)```", readme, re.S
    )
    assert rule and template
    project.rule("loyal_beans", rule.group(1))
    project.template("loyal_beans.j2", template.group(1).strip())
    maker = item("قهوه‌ساز اسپرسو", product_id="31", categories=["قهوه‌ساز"])
    for name, segment in (("ali", "loyal"), ("sara", "at_risk")):
        project.shop.customer(name)
        project.shop.order(name, day(0), maker)
        with sessions.begin() as session:
            customer_id = session.scalars(
                select(Customer.id).where(Customer.external_id == name)
            ).one()
            put_segment(session, customer_id, segment)
    (text,) = project.send_at(day(10, 2))
    assert re.fullmatch(
        r"Ali عزیز، قهوه‌ساز اسپرسو به دستتان رسید؟\n"
        r"دانه قهوه تازه برای شما با ۱۵٪ تخفیف، کد BEAN-[A-Z0-9-]+\.\n"
        r"لغو۱۱",  # the opt-out footer every Persian marketing message gets
        text,
    ), text


@pytest.mark.parametrize("name", ["coffee_beans", "tea_refill"])
def test_the_product_rules_of_the_readme_pass_rules_check(project: Project, name: str) -> None:
    """README "Rules": each example, rule and template copied as written, is one a new user
    can use. Regression: coffee_beans's template used `{{ coupon.code }}` and its rule had no
    coupon, so `rules check` refused the very first cross_sell a user wrote."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rule = re.search(rf"```toml\n(# rules/{name}\.toml.*?)```", readme, re.S)
    template = re.search(
        rf"```jinja\n\{{# templates/messages/{name}\.j2 #\}}\n(.*?)```", readme, re.S
    )
    assert rule
    project.rule(name, rule.group(1))
    project.template(f"{name}.j2", template.group(1) if template else "{{ product }}")
    checked = check_rules(project.settings)
    assert not checked.problems, checked.problems
    assert [rule.name for rule in checked.rules.values()] == [name]


def test_bidi_overrides_in_product_data_never_reach_a_message(project: Project) -> None:
    """Shop data is shown as plain words, as a first name is. Regression: `{{ product }}`,
    an item's `.category`/`.sku` and `customer.favourite_category` passed an RLO (U+202E)
    through, which reversed the rest of the SMS on the customer's phone."""
    project.rule(
        "refill",
        'trigger = "replenish"\ntemplate = "refill.j2"\ndays = 30\ntransactional = true\n'
        'bought = { products = ["TEA-57"] }\n',
    )
    project.template(
        "refill.j2",
        "{{ product }}|{{ order.items[0].name }}|{{ order.items[0].category }}|"
        "{{ order.items[0].sku }}|{{ customer.favourite_category }}",
    )
    project.shop.customer("ali")
    evil = "\u202e\u2066"
    tea = item(f"{evil}Masala chai", sku="TEA-57", categories=[f"{evil}Tea"])
    project.shop.order("ali", day(0), tea)
    (text,) = project.send_at(day(30, 2))
    assert text == "Masala chai|Masala chai|tea|TEA-57|tea"
