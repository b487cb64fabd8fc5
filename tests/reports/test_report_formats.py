import csv
import io
import json

from report_scenario import empty_report, scenario_report
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.reports import report_to_csv, report_to_json


def test_json_carries_every_section(sessions: sessionmaker[Session], settings: Settings) -> None:
    data = json.loads(report_to_json(scenario_report(sessions, settings)))
    assert (data["since"], data["until"]) == ("2026-03-01", "2026-03-31")
    thank_you = data["rules"][1]
    assert thank_you["rule"] == "thank_you"
    assert (thank_you["sent"], thank_you["conversions"]) == (4, 2)
    assert thank_you["revenue"] == [
        {"currency": "IRT", "orders": 3, "revenue": "150.00", "average_order_value": "50.00"}
    ]
    assert thank_you["revenue_converted"] is None
    assert thank_you["skipped_by_reason"] == {"cap": 1, "opted_out": 1}
    assert thank_you["cost"] == {"amount": "0.08", "currency": "USD"}
    uplift = thank_you["uplift"]
    assert (uplift["messaged"], uplift["held_out"], uplift["enough_data"]) == (4, 3, True)
    assert round(uplift["difference"], 6) == round(1 / 6, 6)
    assert uplift["ci95_low"] < 0 < uplift["ci95_high"]
    assert data["rules"][2]["uplift"]["difference"] is None
    assert data["kpis"]["revenue"] == [
        {
            "currency": "IRT",
            "orders": 15,
            "revenue": "835.00",
            "average_order_value": "55.67",
            "buyers": 10,
            "average_clv": "83.50",
        }
    ]
    assert data["kpis"]["churn_rate"] == 0.2
    assert data["kpis"]["referrals"][0] == {"referrer_id": 1, "referrer": "سارا", "referred": 2}
    assert data["nps"] == {
        "responses": 4,
        "promoters": 1,
        "passives": 1,
        "detractors": 2,
        "score": -25.0,
    }
    assert [week["week"] for week in data["nps_weeks"]] == ["2026-03-16", "2026-03-23"]
    assert len(data["daily_sends"]) == 11


def test_csv_is_one_number_per_line(sessions: sessionmaker[Session], settings: Settings) -> None:
    rows = list(csv.reader(io.StringIO(report_to_csv(scenario_report(sessions, settings)))))
    assert rows[0] == ["section", "rule", "metric", "value", "currency"]
    values = {(section, rule, metric): value for section, rule, metric, value, _ in rows[1:]}
    units = {(section, rule, metric): unit for section, rule, metric, _, unit in rows[1:]}
    assert values["rule", "thank_you", "planned"] == "12"
    assert units["rule", "thank_you", "planned"] == ""
    assert values["rule", "thank_you", "revenue"] == "150.00"
    assert units["rule", "thank_you", "revenue"] == "IRT"
    assert (values["rule", "thank_you", "cost"], units["rule", "thank_you", "cost"]) == (
        "0.08",
        "USD",
    )
    assert (
        values["kpis", "", "average_clv"] == "83.50" and units["kpis", "", "average_clv"] == "IRT"
    )
    assert values["rule", "thank_you", "skipped_by_reason.opted_out"] == "1"
    assert values["rule", "thank_you", "uplift.held_out_conversions"] == "1"
    assert values["rule", "win_back", "uplift.difference"] == ""
    assert values["rule", "nps", "uplift"] == ""
    assert values["daily_sends", "nps", "2026-03-15"] == "2"
    assert values["kpis", "", "repeat_purchase_rate"] == "0.5"
    assert values["referrals", "", "سارا"] == "2"
    assert values["nps", "", "score"] == "-25"
    assert values["nps_week", "", "2026-03-23.detractors"] == "1"


def test_empty_report_formats(sessions: sessionmaker[Session], settings: Settings) -> None:
    report = empty_report(sessions, settings)
    data = json.loads(report_to_json(report))
    assert data["rules"] == [] and data["nps"]["score"] is None
    rows = list(csv.reader(io.StringIO(report_to_csv(report))))
    assert ["kpis", "", "buyers", "0", ""] in rows and ["nps", "", "score", "", ""] in rows
