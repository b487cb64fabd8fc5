"""A report as plain data: JSON for programs, CSV for spreadsheets."""

from __future__ import annotations

import io
import json
from typing import Any

from campaigner.reports.model import BusinessKpis, NpsSummary, Report, RuleReport, Uplift
from campaigner.spreadsheets import SpreadsheetWriter


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "generated_at": report.generated_at.isoformat(),
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat() if report.until else None,
        "rule": report.rule,
        "currency": report.currency,
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
        "unknown": stats.unknown,
        "segments": stats.segments,
        "cost": str(stats.cost),
        "conversions": stats.conversions,
        "conversion_rate": stats.conversion_rate,
        "revenue": str(stats.revenue),
        "coupons_redeemed": stats.coupons_redeemed,
        "uplift": _uplift(stats.uplift) if stats.uplift else None,
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


def _kpis(kpis: BusinessKpis, churn_days: int) -> dict[str, Any]:
    clv = kpis.average_clv
    return {
        "buyers": kpis.buyers,
        "active_customers": kpis.active_customers,
        "churned_customers": kpis.churned_customers,
        "churn_days": churn_days,
        "churn_rate": kpis.churn_rate,
        "repeat_buyers": kpis.repeat_buyers,
        "repeat_purchase_rate": kpis.repeat_purchase_rate,
        "lifetime_revenue": str(kpis.lifetime_revenue),
        "average_clv": str(clv) if clv is not None else None,
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
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False)


def report_to_csv(report: Report) -> str:
    """Long format, one number per line (section, rule, metric, value): every part of the
    report fits one sheet and filters well."""
    out = io.StringIO()
    writer = SpreadsheetWriter(out, lineterminator="\n")
    writer.writerow(["section", "rule", "metric", "value"])
    data = report_to_dict(report)
    for stats in data["rules"]:
        _flatten(writer, "rule", stats["rule"], "", {k: v for k, v in stats.items() if k != "rule"})
    for item in data["daily_sends"]:
        writer.writerow(["daily_sends", item["rule"], item["day"], item["sent"]])
    _flatten(writer, "kpis", "", "", {k: v for k, v in data["kpis"].items() if k != "referrals"})
    for referral in data["kpis"]["referrals"]:
        writer.writerow(["referrals", "", referral["referrer"], referral["referred"]])
    _flatten(writer, "nps", data["rule"] or "", "", data["nps"])
    for week in data["nps_weeks"]:
        counts = {k: v for k, v in week.items() if k != "week"}
        _flatten(writer, "nps_week", data["rule"] or "", week["week"] + ".", counts)
    return out.getvalue()


def _flatten(
    writer: SpreadsheetWriter, section: str, rule: str, prefix: str, values: dict[str, Any]
) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _flatten(writer, section, rule, f"{prefix}{key}.", value)
        else:
            writer.writerow([section, rule, prefix + key, _cell(value)])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
