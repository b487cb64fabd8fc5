"""Did it work? Delivery, conversions, revenue, holdout uplift and the shop's health."""

from campaigner.reports.build import build_report
from campaigner.reports.formats import report_to_csv, report_to_dict, report_to_json
from campaigner.reports.html import render_html
from campaigner.reports.model import Report
from campaigner.reports.nps import parse_score, record_nps_reply

__all__ = [
    "Report",
    "build_report",
    "parse_score",
    "record_nps_reply",
    "render_html",
    "report_to_csv",
    "report_to_dict",
    "report_to_json",
]
