"""A report as rich tables in the terminal."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table

from campaigner.reports.model import Report, RuleReport, Uplift


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def money(value: Decimal | None, currency: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.2f}"
    return f"{text} {currency}".strip()


def reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def uplift_text(uplift: Uplift | None) -> str:
    if uplift is None:
        return "no holdout"
    interval = uplift.confidence_interval
    if uplift.difference is None or interval is None:
        return uplift.verdict
    low, high = interval
    return (
        f"{100 * uplift.difference:+.1f} pts (95% CI {100 * low:+.1f} to {100 * high:+.1f}); "
        f"{uplift.verdict}"
    )


def print_report(report: Report, console: Console) -> None:
    period = f"{report.since or 'beginning'} to {report.until or 'now'}"
    title = f"Campaign report, {period}" + (f", rule {report.rule}" if report.rule else "")
    console.print(f"[bold]{title}[/bold]")
    if not report.rules:
        console.print("No messages in this period.")
    else:
        console.print(_delivery_table(report.rules, report.currency))
        console.print(_results_table(report.rules, report.currency))
    console.print(_kpi_table(report))
    if report.kpis.referrals:
        referrals = Table(title="Referrals by referrer")
        referrals.add_column("Referrer")
        referrals.add_column("New customers", justify="right")
        for item in report.kpis.referrals:
            referrals.add_row(item.referrer_name or f"#{item.referrer_id}", str(item.referred))
        console.print(referrals)
    console.print(_nps_table(report))


def _delivery_table(rules: list[RuleReport], currency: str) -> Table:
    table = Table(title="Delivery per rule")
    for name in ("Rule", "Planned", "Held out", "Sent", "Delivered", "Failed", "Skipped"):
        table.add_column(name, justify="left" if name == "Rule" else "right")
    table.add_column("Expired", justify="right")
    table.add_column("Segments", justify="right")
    table.add_column("Est. cost", justify="right")
    for stats in rules:
        table.add_row(
            stats.rule,
            str(stats.planned),
            str(stats.held_out),
            str(stats.sent),
            f"{stats.delivered} ({percent(stats.delivery_rate)})",
            _with_reasons(stats.failed + stats.undelivered, stats.failed_by_reason, stats),
            f"{stats.skipped}"
            + (f" ({reasons(stats.skipped_by_reason)})" if stats.skipped else ""),
            str(stats.expired),
            str(stats.segments),
            money(stats.cost, currency),
        )
    return table


def _with_reasons(total: int, by_reason: dict[str, int], stats: RuleReport) -> str:
    parts = dict(by_reason)
    if stats.undelivered:
        parts["undelivered"] = stats.undelivered
    return f"{total}" + (f" ({reasons(parts)})" if total else "")


def _results_table(rules: list[RuleReport], currency: str) -> Table:
    table = Table(title="Results per rule")
    table.add_column("Rule")
    for name in ("Conversions", "Conv. rate", "Revenue", "Coupons used", "Messaged", "Held out"):
        table.add_column(name, justify="right")
    table.add_column("Uplift vs holdout")
    for stats in rules:
        uplift = stats.uplift
        table.add_row(
            stats.rule,
            str(stats.conversions),
            percent(stats.conversion_rate),
            money(stats.revenue, currency),
            str(stats.coupons_redeemed),
            f"{uplift.messaged_conversions}/{uplift.messaged}" if uplift else "–",
            f"{uplift.held_out_conversions}/{uplift.held_out}" if uplift else "–",
            uplift_text(uplift),
        )
    return table


def _kpi_table(report: Report) -> Table:
    kpis = report.kpis
    table = Table(title="Business")
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    table.add_row("Customers who ever bought", str(kpis.buyers))
    table.add_row(
        f"Active (bought in the last {report.churn_days} days)", str(kpis.active_customers)
    )
    table.add_row("Churn rate", f"{percent(kpis.churn_rate)} ({kpis.churned_customers})")
    table.add_row("Repeat purchase rate", f"{percent(kpis.repeat_purchase_rate)}")
    table.add_row("Average lifetime value", money(kpis.average_clv))
    table.add_row(
        "Win-back recovery",
        f"{percent(kpis.win_back_recovery_rate)} "
        f"({kpis.win_back_recovered} of {kpis.win_back_recipients})",
    )
    return table


def _nps_table(report: Report) -> Table:
    nps = report.nps
    table = Table(title="NPS")
    for name in ("Week", "Responses", "Promoters", "Passives", "Detractors", "NPS"):
        table.add_column(name, justify="left" if name == "Week" else "right")
    rows = [(f"{week.week}", week.summary) for week in report.nps_weeks]
    for label, summary in [*rows, ("All", nps)]:
        table.add_row(
            label,
            str(summary.responses),
            str(summary.promoters),
            str(summary.passives),
            str(summary.detractors),
            "–" if summary.score is None else f"{summary.score:+.0f}",
        )
    return table
