"""A customer's name reaches the preview, the simulation and the downloaded report: there too
it is text, never markup."""

from __future__ import annotations

from console_site import ConsoleSite

PAYLOAD = '<img src=x onerror=alert(7)>"><script>alert(8)</script>'
RULE = 'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\ntransactional = true\n'


def test_a_hostile_name_is_escaped_in_preview_simulation_and_downloads(
    site: ConsoleSite,
) -> None:
    site.project.paid_order(PAYLOAD)
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    form = {"csrf": csrf, "rule": RULE, "template:": "Hi {{ first_name }}", "customer": "c1"}
    answers = [
        client.post("/console/rules/thank_you/preview", data=form),
        client.post("/console/rules/thank_you/simulate", data={**form, "days": "7"}),
        client.get("/console/reports/download?format=html"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "<img src=x" not in answer.text and "<script>alert" not in answer.text
    assert "Hi &lt;img Src=x" in answers[0].text  # the preview did render this customer
