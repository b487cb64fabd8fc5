import dataclasses
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.customers.demo import generate_demo
from campaigner.db.models import Coupon, Customer, Message, Order
from campaigner.messages.context import build_context
from campaigner.messages.render import MessageRenderer, Rendered, RenderError
from campaigner.messages.sms import measure
from campaigner.messages.templates import MessageTemplates

SAMPLES = Path(__file__).parents[2] / "campaigner" / "samples"
ORDER_TRIGGERS = {"post_purchase", "referral_request", "nps_survey"}


@dataclass(frozen=True)
class CouponSpec:
    percent: float | None = None
    amount: float | None = None
    valid_days: int = 14
    prefix: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    trigger: str
    template: str
    transactional: bool = False
    max_segments: int | None = None
    coupon: CouponSpec | None = None
    occasion_name: str = ""


def sample_rules() -> list[Rule]:
    rules = []
    for path in sorted((SAMPLES / "rules").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        coupon = data.get("coupon")
        rules.append(
            Rule(
                name=path.stem,
                trigger=data["trigger"],
                template=data["template"],
                transactional=data.get("transactional", False),
                max_segments=data.get("max_segments"),
                coupon=CouponSpec(**coupon) if coupon else None,
                occasion_name=data.get("occasion", ""),
            )
        )
    return rules


def add_message(session: Session, rule: Rule, customer: Customer, now: datetime) -> Message:
    order_id = customer.last_order_id if rule.trigger in ORDER_TRIGGERS else None
    key = now.date().isoformat() if rule.trigger == "occasion" else str(order_id or now.year)
    message = Message(
        rule=rule.name,
        customer_id=customer.id,
        occurrence_key=key,
        order_id=order_id,
        due_at=now,
        scheduled_for=now,
    )
    session.add(message)
    session.flush()
    return message


def renderer(
    settings: Settings, folder: Path = SAMPLES / "templates" / "messages"
) -> MessageRenderer:
    return MessageRenderer(settings, MessageTemplates(folder, settings))


def test_every_sample_template_renders_for_every_demo_customer(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    generate_demo(sessions, settings.customers, clock, customers=300)
    rules = sample_rules()
    assert {rule.trigger for rule in rules} == {
        "post_purchase",
        "birthday",
        "win_back",
        "referral_request",
        "nps_survey",
        "occasion",
    }
    render = renderer(settings)
    now = clock.now()
    seen_locales = set()
    rendered = 0
    with sessions.begin() as session:
        for customer in session.scalars(select(Customer).order_by(Customer.id)):
            for rule in rules:
                if rule.trigger in ORDER_TRIGGERS and customer.last_order_id is None:
                    continue
                result = render.render(
                    session, add_message(session, rule, customer, now), rule, now
                )
                text = result.text
                assert "{{" not in text and "{%" not in text and "None" not in text
                assert not text.startswith((",", "،", " "))
                assert "عزیز عزیز" not in text and "there," not in text
                if customer.locale == "fa":
                    assert text.endswith("لغو۱۱")
                    assert "مشتری عزیز" in text or customer.first_name.split()[0] in text
                else:
                    assert text.endswith("Reply STOP to opt out")
                assert (result.encoding, result.segments) == (
                    measure(text).encoding,
                    measure(text).segments,
                )
                seen_locales.add(customer.locale)
                rendered += 1
        coupons = session.scalars(select(Coupon)).all()
    assert seen_locales == {"fa", "en"}
    assert rendered > 600
    assert {c.code.split("-")[0] for c in coupons} == {"BDAY", "BACK"}


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions.begin() as session:
        customer = Customer(
            external_id="c1",
            first_name="  mary ann ",
            last_name="Smith",
            phone="+14165550123",
            timezone="America/Toronto",
            locale="en",
            tags=",vip,",
        )
        session.add(customer)
        session.flush()
        order = Order(
            external_id="W-1042",
            customer_id=customer.id,
            total=Decimal("1250.50"),
            currency="CAD",
            paid_at=datetime(2026, 3, 20, 2, 0, tzinfo=UTC),
            items_count=3,
        )
        session.add(order)
        session.flush()
        customer.last_order_id = order.id
        return customer.id, order.id


NOW = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)


def test_context_is_plain_data_in_the_customer_zone(
    sessions: sessionmaker[Session], settings: Settings, shop: tuple[int, int]
) -> None:
    customer_id, order_id = shop
    with sessions.begin() as session:
        customer = session.get(Customer, customer_id)
        order = session.get(Order, order_id)
        assert customer is not None and order is not None
        context = build_context(
            session,
            customer=customer,
            trigger="post_purchase",
            rule_name="thanks",
            order=order,
            coupon=None,
            settings=settings,
            now=NOW,
        )
    assert context["first_name"] == "Mary Ann"
    assert context["customer"].full_name == "Mary Ann Smith"
    assert context["customer"].tags == ("vip",)
    assert context["order"].id == "W-1042"
    assert context["order"].total == Decimal("1250.5")
    assert context["order"].items_count == 3
    # 03:00 UTC is 23:00 the day before in Toronto.
    assert context["now"].hour == 23
    assert str(context["today"]) == "2026-03-19"
    assert context["order"].paid_at.utcoffset() == timedelta(hours=-4)
    assert context["referral_url"] == f"https://shop.example/r/{context['referral_code']}"
    assert "coupon" not in context
    for value in context.values():
        assert not hasattr(value, "_sa_instance_state")
        if dataclasses.is_dataclass(value):
            with pytest.raises(dataclasses.FrozenInstanceError):
                value.name = "x"  # type: ignore[union-attr]


def test_birthday_context_has_no_order(
    sessions: sessionmaker[Session], settings: Settings, shop: tuple[int, int]
) -> None:
    with sessions.begin() as session:
        customer = session.get(Customer, shop[0])
        assert customer is not None
        customer.first_name = ""
        context = build_context(
            session,
            customer=customer,
            trigger="birthday",
            rule_name="bday",
            order=session.get(Order, shop[1]),
            coupon=None,
            settings=settings,
            now=NOW,
        )
    assert "order" not in context
    assert context["first_name"] == "there"
    assert context["customer"].first_name == ""


def test_render_with_coupon_is_idempotent_and_length_checked(
    sessions: sessionmaker[Session], settings: Settings, shop: tuple[int, int], tmp_path: Path
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "thanks.j2").write_text(
        "Hi {{ first_name }}, {{ coupon.percent }}% off order {{ order.id }} "
        "({{ order.total | money(order.currency) }}) with {{ coupon.code }} "
        "until {{ coupon.expires_at | gregorian('%b %-d') }}.",
        encoding="utf-8",
    )
    rule = Rule(
        name="thanks",
        trigger="post_purchase",
        template="thanks.j2",
        coupon=CouponSpec(percent=10, valid_days=14, prefix="THX"),
    )
    render = renderer(settings, folder)
    with sessions.begin() as session:
        customer = session.get(Customer, shop[0])
        assert customer is not None
        message = add_message(session, rule, customer, NOW)
        first = render.render(session, message, rule, NOW)
        second = render.render(session, message, rule, NOW + timedelta(minutes=5))
        code = session.scalars(select(Coupon.code)).one()
    assert first == second
    assert first == Rendered(
        text=f"Hi Mary Ann, 10% off order W-1042 (1,250.50 CAD) with {code} until Apr 2.\n"
        "Reply STOP to opt out",
        encoding="gsm7",
        segments=1,
    )
    too_long = dataclasses.replace(rule, max_segments=1, template="long.j2")
    (folder / "long.j2").write_text("{{ first_name }} " + "x" * 300, encoding="utf-8")
    render = renderer(settings, folder)  # a renderer reads the templates once, when it is made
    with sessions.begin() as session, pytest.raises(RenderError, match="too long: 3 segments"):
        render.render(session, session.get(Message, message.id), too_long, NOW)  # type: ignore[arg-type]


def test_render_errors_are_render_errors(
    sessions: sessionmaker[Session], settings: Settings, shop: tuple[int, int], tmp_path: Path
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "needs_coupon.j2").write_text("{{ coupon.code }}", encoding="utf-8")
    rule = Rule(name="r", trigger="birthday", template="needs_coupon.j2", transactional=True)
    with sessions.begin() as session:
        customer = session.get(Customer, shop[0])
        assert customer is not None
        message = add_message(session, rule, customer, NOW)
        with pytest.raises(RenderError, match="coupon"):
            renderer(settings, folder).render(session, message, rule, NOW)
        missing = dataclasses.replace(rule, template="missing.j2")
        with pytest.raises(RenderError, match=r"missing\.j2"):
            renderer(settings, folder).render(session, message, missing, NOW)


def test_referral_code_is_created_only_by_a_text_that_shows_it(
    sessions: sessionmaker[Session], settings: Settings, shop: tuple[int, int], tmp_path: Path
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "hello.j2").write_text("Hi {{ first_name }}", encoding="utf-8")
    (folder / "link.j2").write_text("{{ referral_url }}", encoding="utf-8")
    (folder / "share.j2").write_text('Share: {% include "link.j2" %}', encoding="utf-8")
    render = renderer(settings, folder)
    hello = Rule(name="hello", trigger="birthday", template="hello.j2", transactional=True)
    share = dataclasses.replace(hello, name="share", template="share.j2")
    with sessions.begin() as session:
        customer = session.get_one(Customer, shop[0])
        message = add_message(session, hello, customer, NOW)
        assert render.render(session, message, hello, NOW).text == "Hi Mary Ann"
        assert customer.referral_code is None
        # Through an included template too.
        text = render.render(session, message, share, NOW).text
        assert customer.referral_code is not None
        assert text == f"Share: https://shop.example/r/{customer.referral_code}"
        code = customer.referral_code
    # The edited template, read again (as the rulebook does on reload), shows the same link.
    (folder / "hello.j2").write_text("Hi {{ first_name }}: {{ referral_code }}", encoding="utf-8")
    render = renderer(settings, folder)
    with sessions.begin() as session:
        message = session.get_one(Message, message.id)
        assert render.render(session, message, hello, NOW).text == f"Hi Mary Ann: {code}"


def test_a_batch_loads_its_orders_in_one_query(
    sessions: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    shop: tuple[int, int],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "thanks.j2").write_text("Thanks for {{ order.id }}", encoding="utf-8")
    rule = Rule(name="thanks", trigger="post_purchase", template="thanks.j2", transactional=True)
    with sessions.begin() as session:
        customer = session.get_one(Customer, shop[0])
        for n in range(5):
            order = Order(
                external_id=f"W-{n}",
                customer_id=customer.id,
                total=Decimal(10),
                paid_at=NOW - timedelta(hours=n),
            )
            session.add(order)
            session.flush()
            session.add(
                Message(
                    rule=rule.name,
                    customer_id=customer.id,
                    occurrence_key=str(order.id),
                    order_id=order.id,
                    due_at=NOW,
                    scheduled_for=NOW,
                )
            )
        gone = session.get_one(Order, shop[1])
        session.add(
            Message(
                rule=rule.name,
                customer_id=customer.id,
                occurrence_key="gone",
                order_id=gone.id,
                due_at=NOW,
                scheduled_for=NOW,
            )
        )
        session.flush()
        customer.last_order_id = None
        session.delete(gone)
    render = renderer(settings, folder)
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    with sessions.begin() as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        session.scalars(select(Customer)).all()
        event.listen(engine, "before_cursor_execute", record)
        try:
            texts = []
            for message in messages[:-1]:
                texts.append(render.render(session, message, rule, NOW).text)
            with pytest.raises(RenderError, match=f"order {shop[1]} no longer exists"):
                render.render(session, messages[-1], rule, NOW)
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert texts == [f"Thanks for W-{n}" for n in range(5)]
    favourites = [s for s in statements if "order_item_categories" in s]
    loads = [s for s in statements if "FROM orders" in s and s not in favourites]
    assert len(loads) == 2  # the batch, then the gone one
    assert len(favourites) == 1  # every customer's favourite category, once for the batch


def test_no_message_goes_out_over_the_segment_ceiling_or_the_render_budget(
    sessions: sessionmaker[Session], settings: Settings, shop: tuple[int, int], tmp_path: Path
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "long.j2").write_text("{{ first_name }} " + "x" * 2000, encoding="utf-8")
    (folder / "huge.j2").write_text("{{ 'a' * 200000 }}", encoding="utf-8")
    long = Rule(name="long", trigger="birthday", template="long.j2", transactional=True)
    huge = dataclasses.replace(long, name="huge", template="huge.j2")
    with sessions.begin() as session:
        message = add_message(session, long, session.get_one(Customer, shop[0]), NOW)
        with pytest.raises(RenderError) as too_long:
            renderer(settings, folder).render(session, message, long, NOW)
        assert str(too_long.value) == "too long: 14 segments > 10 (messages.max_segments)"
        with pytest.raises(RenderError) as over_budget:
            renderer(settings, folder).render(session, message, huge, NOW)
        assert over_budget.value.reason == "template_limit"
        assert "200,000 characters" in str(over_budget.value)
