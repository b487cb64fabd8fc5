"""The shop's report as `campaigner report` and the console show it: built with what the
rule files say (attribution windows, win-back rules, product goals, descriptions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.reports.build import build_report
from campaigner.reports.model import Report
from campaigner.rulebook import check_rules
from campaigner.rules.models import WinBackRule, product_goals


@dataclass(frozen=True)
class ShopReport:
    report: Report
    descriptions: dict[str, str]  # rule name -> the marketer's own words


def shop_report(
    session: Session,
    settings: Settings,
    clock: Clock,
    *,
    since: date | None,
    until: date | None,
    rule: str | None = None,
    helper: Session | None = None,
) -> ShopReport:
    rules = check_rules(settings).rules if settings.paths.rules.is_dir() else {}
    win_back = [r for r in rules.values() if isinstance(r, WinBackRule)]
    report = build_report(
        session,
        since=since,
        until=until,
        rule=rule,
        attribution_days={name: r.attribution_days for name, r in rules.items()},
        settings=settings,
        clock=clock,
        churn_days=min((r.inactive_days for r in win_back), default=None),
        win_back_rules=tuple(r.name for r in win_back) or ("win_back",),
        product_goals=product_goals(rules.values()),
        helper=helper,
    )
    descriptions = {name: r.description for name, r in rules.items() if r.description}
    return ShopReport(report, descriptions)
