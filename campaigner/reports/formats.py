"""A report as plain data: JSON for programs, CSV for spreadsheets.

Every amount carries its currency: `{"amount", "currency"}` for a cost, one entry per currency
for revenue. In the CSV the currency is a column of its own.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from campaigner.display import json_text
from campaigner.reports.model import (
    BusinessKpis,
    Converted,
    Money,
    NpsSummary,
    Report,
    Revenue,
    RuleReport,
    Uplift,
)
from campaigner.spreadsheets import SpreadsheetWriter


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "generated_at": report.generated_at.isoformat(),
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat() if report.until else None,
        "rule": report.rule,
        "rules": [_rule(stats) for stats in report.rules],
        "daily_sends": [
            {"day": item.day.isoformat(), "rule": item.rule, "sent": item.sent}
            for item in report.daily_sends
        ],
        "kpis": _kpis(report.kpis, report.churn_days),
        "nps": _nps(report.nps),
        "nps_weeks": [
            {"week": item.week.isoformat(), **_nps(item.summary)} for item in report.nps_weeks
        ],
        "segment_sizes": report.segment_sizes,
    }


def _rule(stats: RuleReport) -> dict[str, Any]:
    return {
        "rule": stats.rule,
        "planned": stats.planned,
        "queued": stats.queued,
        "held_out": stats.held_out,
        "sending": stats.sending,
        "sent": stats.sent,
        "delivered": stats.delivered,
        "undelivered": stats.undelivered,
        "delivery_rate": stats.delivery_rate,
        "failed": stats.failed,
        "failed_by_reason": stats.failed_by_reason,
        "skipped": stats.skipped,
        "skipped_by_reason": stats.skipped_by_reason,
        "expired": stats.expired,
        "cancelled": stats.cancelled,
        "unknown": stats.unknown,
        "segments": stats.segments,
        "cost": _money(stats.cost),
        "conversions": stats.conversions,
        "conversion_rate": stats.conversion_rate,
        "revenue": [_revenue(item) for item in stats.revenue],
        "revenue_converted": _converted(stats.converted_revenue),
        "coupons_redeemed": stats.coupons_redeemed,
        "bought_it": stats.bought_it,
        "uplift": _uplift(stats.uplift) if stats.uplift else None,
        "by_segment": {
            result.segment: {
                "sent": result.sent,
                "conversions": result.conversions,
                "conversion_rate": result.conversion_rate,
            }
            for result in stats.by_segment
        },
    }


def _uplift(uplift: Uplift) -> dict[str, Any]:
    interval = uplift.confidence_interval
    return {
        "messaged": uplift.messaged,
        "messaged_conversions": uplift.messaged_conversions,
        "messaged_rate": uplift.messaged_rate,
        "held_out": uplift.held_out,
        "held_out_conversions": uplift.held_out_conversions,
        "held_out_rate": uplift.held_out_rate,
        "enough_data": uplift.enough_data,
        "difference": uplift.difference,
        "ci95_low": interval[0] if interval else None,
        "ci95_high": interval[1] if interval else None,
        "verdict": uplift.verdict,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _money(money: Money) -> dict[str, Any]:
    return {"amount": str(money.amount), "currency": money.currency}


def _revenue(revenue: Revenue, shop_wide: bool = False) -> dict[str, Any]:
    data = {
        "currency": revenue.currency,
        "orders": revenue.orders,
        "revenue": str(revenue.amount),
        "average_order_value": _text(revenue.average_order_value),
    }
    if shop_wide:
        data.update(buyers=revenue.buyers, average_clv=_text(revenue.average_clv))
    return data


def _converted(converted: Converted | None, shop_wide: bool = False) -> dict[str, Any] | None:
    if converted is None:
        return None
    if converted.total is None:
        return {"currency": converted.currency, "missing_rates": list(converted.missing_rates)}
    return {**_revenue(converted.total, shop_wide), "missing_rates": []}


def _kpis(kpis: BusinessKpis, churn_days: int) -> dict[str, Any]:
    return {
        "buyers": kpis.buyers,
        "active_customers": kpis.active_customers,
        "churned_customers": kpis.churned_customers,
        "churn_days": churn_days,
        "churn_rate": kpis.churn_rate,
        "repeat_buyers": kpis.repeat_buyers,
        "repeat_purchase_rate": kpis.repeat_purchase_rate,
        "revenue": [_revenue(item, shop_wide=True) for item in kpis.revenue],
        "revenue_converted": _converted(kpis.converted_revenue, shop_wide=True),
        "win_back_recipients": kpis.win_back_recipients,
        "win_back_recovered": kpis.win_back_recovered,
        "win_back_recovery_rate": kpis.win_back_recovery_rate,
        "referrals": [
            {"referrer_id": r.referrer_id, "referrer": r.referrer_name, "referred": r.referred}
            for r in kpis.referrals
        ],
    }


def _nps(summary: NpsSummary) -> dict[str, Any]:
    return {
        "responses": summary.responses,
        "promoters": summary.promoters,
        "passives": summary.passives,
        "detractors": summary.detractors,
        "score": summary.score,
    }


def report_to_json(report: Report) -> str:
    return json_text(report_to_dict(report), indent=2)


def report_to_csv(report: Report) -> str:
    """Long format, one number per line (section, rule, metric, value, currency): every part
    of the report fits one sheet and filters well; a money figure has its currency."""
    out = io.StringIO()
    writer = SpreadsheetWriter(out, lineterminator="\n")
    writer.writerow(["section", "rule", "metric", "value", "currency"])
    data = report_to_dict(report)
    for stats in data["rules"]:
        _flatten(writer, "rule", stats["rule"], "", {k: v for k, v in stats.items() if k != "rule"})
    for item in data["daily_sends"]:
        writer.writerow(["daily_sends", item["rule"], item["day"], item["sent"], ""])
    _flatten(writer, "kpis", "", "", {k: v for k, v in data["kpis"].items() if k != "referrals"})
    for referral in data["kpis"]["referrals"]:
        writer.writerow(["referrals", "", referral["referrer"], referral["referred"], ""])
    _flatten(writer, "nps", data["rule"] or "", "", data["nps"])
    for week in data["nps_weeks"]:
        counts = {k: v for k, v in week.items() if k != "week"}
        _flatten(writer, "nps_week", data["rule"] or "", week["week"] + ".", counts)
    return out.getvalue()


def _flatten(
    writer: SpreadsheetWriter,
    section: str,
    rule: str,
    prefix: str,
    values: dict[str, Any],
    currency: str = "",
) -> None:
    """Nested keys become dotted metric names; the numbers of an object with a currency (a
    cost, one currency's revenue) are in that currency."""
    for key, value in values.items():
        if key == "currency":
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:  # one entry per currency
                _flatten(writer, section, rule, prefix, item, item["currency"])
        elif isinstance(value, dict) and "amount" in value:
            writer.writerow([section, rule, prefix + key, value["amount"], value["currency"]])
        elif isinstance(value, dict):
            unit = value.get("currency", currency)
            _flatten(writer, section, rule, f"{prefix}{key}.", value, unit)
        else:
            writer.writerow([section, rule, prefix + key, _cell(value), currency])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)
