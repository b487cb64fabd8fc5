"""The report's numbers as people read them, the same in the terminal and in the HTML page.

An amount is always written with its currency, and a converted total is always marked as one
("≈ … USD", labelled "converted"), so nobody takes an estimate for a sum of what was paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from campaigner.reports.model import Converted, Money, Revenue, Uplift

NONE = "–"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def money(value: Decimal | None, currency: str) -> str:
    return NONE if value is None else f"{value:,.2f} {currency}"


def cost(value: Money) -> str:
    """SMS prices are fractions of a cent: four decimals keep a small campaign's cost visible."""
    return f"{value.amount:,.4f} {value.currency}"


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


@dataclass(frozen=True)
class RevenueLine:
    """One row of a revenue table: one currency's figures, or the converted total."""

    label: str
    buyers: str
    orders: str
    revenue: str
    average_order_value: str
    average_clv: str


def revenue_lines(revenue: list[Revenue], converted: Converted | None) -> list[RevenueLine]:
    """A row per currency, then the converted total when exchange rates are configured."""
    lines = [_line(item.currency, item, "") for item in revenue]
    if converted is not None:
        label = f"all, converted to {converted.currency}"
        if converted.total is None:
            missing = ", ".join(converted.missing_rates)
            lines.append(RevenueLine(label, "", "", f"no exchange rate for {missing}", "", ""))
        else:
            lines.append(_line(label, converted.total, "≈ "))
    return lines


def _line(label: str, item: Revenue, approximately: str) -> RevenueLine:
    def amount(value: Decimal | None) -> str:
        return NONE if value is None else approximately + money(value, item.currency)

    return RevenueLine(
        label=label,
        buyers=str(item.buyers),
        orders=str(item.orders),
        revenue=amount(item.amount),
        average_order_value=amount(item.average_order_value),
        average_clv=amount(item.average_clv),
    )
