"""A report as rich tables in the terminal.

Rule names, reasons and referrers' names come from files, gateways and customers: every cell
goes through `rich_text`, so none of it is ever read as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from campaigner.display import rich_text
from campaigner.reports.model import Report, RuleReport, Uplift
from campaigner.reports.text import NONE, cost, percent, revenue_lines


def print_report(report: Report, console: Console) -> None:
    period = f"{report.since or 'beginning'} to {report.until or 'now'}"
    title = f"Campaign report, {period}" + (f", rule {report.rule}" if report.rule else "")
    console.print(rich_text(title), style="bold")
    if not report.rules:
        console.print("No messages in this period.")
    else:
        console.print(_delivery_table(report.rules))
        not_sent = _not_sent_table(report.rules)
        if not_sent.row_count:
            console.print(not_sent)
        console.print(_results_table(report.rules))
        uplift = _uplift_table(report.rules)
        if uplift.row_count:
            console.print(uplift)
    console.print(_kpi_table(report))
    console.print(_revenue_table(report))
    if report.kpis.referrals:
        referrals = _table("Referrals by referrer", "Referrer", "New customers")
        for item in report.kpis.referrals:
            _row(referrals, item.referrer_name or f"#{item.referrer_id}", str(item.referred))
        console.print(referrals)
    console.print(_nps_table(report))


def _row(table: Table, *cells: str) -> None:
    table.add_row(*(rich_text(cell) for cell in cells))


def _table(title: str, *columns: str, text_columns: int = 1) -> Table:
    """The first columns are words (a rule never wraps); the others are right-aligned numbers."""
    table = Table(title=title)
    for index, name in enumerate(columns):
        if index < text_columns:
            table.add_column(name, no_wrap=index == 0)
        else:
            table.add_column(name, justify="right")
    return table


def _delivery_table(rules: list[RuleReport]) -> Table:
    table = _table(
        "Delivery per rule",
        "Rule",
        "Planned",
        "Held out",
        "Sent",
        "Delivered",
        "Failed",
        "Skipped",
        "Expired",
        "Segments",
        "Est. cost",
    )
    for stats in rules:
        _row(
            table,
            stats.rule,
            str(stats.planned),
            str(stats.held_out),
            str(stats.sent),
            f"{stats.delivered} ({percent(stats.delivery_rate)})",
            str(stats.failed + stats.undelivered),
            str(stats.skipped),
            str(stats.expired),
            str(stats.segments),
            cost(stats.cost),
        )
    return table


def _not_sent_table(rules: list[RuleReport]) -> Table:
    table = _table(
        "Not sent or not delivered, by reason", "Rule", "Status", "Reason", "Count", text_columns=3
    )
    for stats in rules:
        groups = [
            ("failed", stats.failed_by_reason),
            ("undelivered", {"delivery report": stats.undelivered} if stats.undelivered else {}),
            ("skipped", stats.skipped_by_reason),
            ("expired", {"max_lateness": stats.expired} if stats.expired else {}),
            ("cancelled", {"rule_withdrawn": stats.cancelled} if stats.cancelled else {}),
        ]
        for status, counts in groups:
            for reason, count in counts.items():
                _row(table, stats.rule, status, reason, str(count))
    return table


def _results_table(rules: list[RuleReport]) -> Table:
    """A row per currency of a rule's attributed revenue: amounts are never added up."""
    table = _table(
        "Results per rule",
        "Rule",
        "Conversions",
        "Conv. rate",
        "Currency",
        "Revenue",
        "Orders",
        "Avg order",
        "Coupons",
        "Bought it",
    )
    for stats in rules:
        lines = revenue_lines(stats.revenue, stats.converted_revenue)
        cells = [
            (line.label, line.revenue, line.orders, line.average_order_value) for line in lines
        ]
        for index, (currency, revenue, orders, average) in enumerate(cells or [(NONE,) * 4]):
            first = index == 0
            _row(
                table,
                stats.rule if first else "",
                str(stats.conversions) if first else "",
                percent(stats.conversion_rate) if first else "",
                currency,
                revenue,
                orders,
                average,
                str(stats.coupons_redeemed) if first else "",
                (NONE if stats.bought_it is None else str(stats.bought_it)) if first else "",
            )
    return table


def _uplift_table(rules: list[RuleReport]) -> Table:
    table = _table(
        "Conversion against the holdout group", "Rule", "Messaged", "Held out", "Uplift (95% CI)"
    )
    table.add_column("Verdict")
    for stats in rules:
        uplift = stats.uplift
        if uplift is None:
            continue
        _row(
            table,
            stats.rule,
            f"{uplift.messaged_conversions}/{uplift.messaged} ({percent(uplift.messaged_rate)})",
            f"{uplift.held_out_conversions}/{uplift.held_out} ({percent(uplift.held_out_rate)})",
            _interval(uplift),
            uplift.verdict,
        )
    return table


def _interval(uplift: Uplift) -> str:
    interval = uplift.confidence_interval
    if uplift.difference is None or interval is None:
        return "–"
    low, high = interval
    return f"{100 * uplift.difference:+.1f} pts [{100 * low:+.1f}, {100 * high:+.1f}]"


def _kpi_table(report: Report) -> Table:
    kpis = report.kpis
    table = Table(title="Business")
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    _row(table, "Customers who ever bought", str(kpis.buyers))
    _row(table, f"Active (bought in the last {report.churn_days} days)", str(kpis.active_customers))
    _row(table, "Churn rate", f"{percent(kpis.churn_rate)} ({kpis.churned_customers})")
    _row(table, "Repeat purchase rate", f"{percent(kpis.repeat_purchase_rate)}")
    _row(
        table,
        "Win-back recovery",
        f"{percent(kpis.win_back_recovery_rate)} "
        f"({kpis.win_back_recovered} of {kpis.win_back_recipients})",
    )
    return table


def _revenue_table(report: Report) -> Table:
    table = _table(
        "Revenue by currency (paid orders up to the end of the period)",
        "Currency",
        "Buyers",
        "Orders",
        "Revenue",
        "Avg order value",
        "Avg lifetime value",
    )
    kpis = report.kpis
    for line in revenue_lines(kpis.revenue, kpis.converted_revenue):
        _row(
            table,
            line.label,
            line.buyers,
            line.orders,
            line.revenue,
            line.average_order_value,
            line.average_clv,
        )
    return table


def _nps_table(report: Report) -> Table:
    nps = report.nps
    table = Table(title="NPS")
    for name in ("Week", "Responses", "Promoters", "Passives", "Detractors", "NPS"):
        table.add_column(name, justify="left" if name == "Week" else "right")
    rows = [(f"{week.week}", week.summary) for week in report.nps_weeks]
    for label, summary in [*rows, ("All", nps)]:
        _row(
            table,
            label,
            str(summary.responses),
            str(summary.promoters),
            str(summary.passives),
            str(summary.detractors),
            "–" if summary.score is None else f"{summary.score:+.0f}",
        )
    return table
