"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from campaigner.reports import charts
from campaigner.reports.model import UNRECORDED, Report
from campaigner.reports.text import cost, percent, reasons, revenue_lines, uplift_text

_ENV = Environment(
    loader=PackageLoader("campaigner.reports", "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(percent=percent, cost=cost, reasons=reasons, uplift=uplift_text)
_ENV.globals.update(revenue_lines=revenue_lines)


def render_html(
    report: Report, *, shop_name: str, descriptions: Mapping[str, str] | None = None
) -> str:
    """`descriptions` maps rule names to the marketer's own words (often Persian)."""
    return _ENV.get_template("report.html.j2").render(
        report=report,
        shop_name=shop_name,
        descriptions=descriptions or {},
        charts=_charts(report),
    )


def _charts(report: Report) -> dict[str, Markup | list[Markup]]:
    rules = report.rules
    return {
        "daily": _daily(report),
        "funnel": charts.bar_chart(
            "Delivery and conversion funnel per rule",
            [
                charts.BarGroup(
                    stats.rule,
                    [
                        charts.Bar("planned", stats.planned, str(stats.planned)),
                        charts.Bar("sent", stats.sent, str(stats.sent)),
                        charts.Bar("delivered", stats.delivered, str(stats.delivered)),
                        charts.Bar("converted", stats.conversions, str(stats.conversions)),
                    ],
                )
                for stats in rules
            ],
            ["planned", "sent", "delivered", "converted"],
        ),
        "revenue": _revenue(report),
        "holdout": charts.bar_chart(
            "Conversion rate: messaged versus held out",
            [
                charts.BarGroup(
                    stats.rule,
                    [
                        charts.Bar(
                            "messaged",
                            stats.uplift.messaged_rate or 0,
                            f"{percent(stats.uplift.messaged_rate)} of {stats.uplift.messaged}",
                        ),
                        charts.Bar(
                            "held out",
                            stats.uplift.held_out_rate or 0,
                            f"{percent(stats.uplift.held_out_rate)} of {stats.uplift.held_out}",
                        ),
                    ],
                )
                for stats in rules
                if stats.uplift is not None
            ],
            ["messaged", "held out"],
        ),
        "segments": _segments(report),
        "nps": charts.score_chart(
            "NPS per week",
            [week.week.strftime("%d %b") for week in report.nps_weeks],
            [week.summary.score for week in report.nps_weeks],
        ),
    }


def _segments(report: Report) -> list[Markup]:
    """Customers per value segment, then each rule's conversion rate per segment: two
    charts, since a head count and a percentage share no scale."""
    sizes = charts.bar_chart(
        "Customers per value segment",
        [
            charts.BarGroup(name, [charts.Bar("customers", count, str(count))])
            for name, count in report.segment_sizes.items()
            if count
        ],
        ["customers"],
    )
    rules = [stats.rule for stats in report.rules if stats.by_segment]
    results = {
        (stats.rule, result.segment): result
        for stats in report.rules
        for result in stats.by_segment
    }
    conversions = charts.bar_chart(
        "Conversion rate per value segment, by the segment customers were in when planned",
        [
            charts.BarGroup(
                name,
                [
                    charts.Bar(
                        rule,
                        results[(rule, name)].conversion_rate or 0,
                        f"{percent(results[(rule, name)].conversion_rate)} of "
                        f"{results[(rule, name)].sent}",
                    )
                    for rule in rules
                    if (rule, name) in results
                ],
            )
            for name in [*report.segment_sizes, UNRECORDED]
            if any((rule, name) in results for rule in rules)
        ],
        rules,
    )
    return [sizes, conversions]


def _revenue(report: Report) -> list[Markup]:
    """One chart per currency: bars in toman and in dirham share no scale."""
    title = "Revenue attributed per rule"
    currencies = sorted({item.currency for stats in report.rules for item in stats.revenue})
    if not currencies:
        return [charts.no_data(title)]
    return [
        charts.bar_chart(
            f"{title} ({currency})",
            [
                charts.BarGroup(
                    stats.rule,
                    [charts.Bar("revenue", float(item.amount), line.revenue)],
                )
                for stats in report.rules
                for item, line in zip(
                    stats.revenue, revenue_lines(stats.revenue, None), strict=True
                )
                if item.currency == currency
            ],
            ["revenue"],
        )
        for currency in currencies
    ]


def _daily(report: Report) -> Markup:
    title = "Messages sent per day, by rule"
    if not report.daily_sends:
        return charts.no_data(title)
    first = min(item.day for item in report.daily_sends)
    last = max(item.day for item in report.daily_sends)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    lines: dict[str, list[int]] = {}
    for item in report.daily_sends:
        lines.setdefault(item.rule, [0] * len(days))[index[item.day]] += item.sent
    return charts.line_chart(title, days, dict(sorted(lines.items())))
