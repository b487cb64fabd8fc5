"""The rulebook keeps the last good version of a rule *and its template* while the files on
disk are broken, and picks up the fixed ones."""

from __future__ import annotations

import pytest
from conftest import THANK_YOU_RULE, Project
from sqlalchemy import select

from campaigner.db.models import Message


@pytest.mark.parametrize(
    ("broken_name", "broken_text", "problem"),
    [
        ("thank_you.j2", "Thanks {{ first_name }", "syntax error"),
        ("thank_you.j2", "Thanks {{ frist_name }}", "undefined variable 'frist_name'"),
        (
            "thank_you.j2",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "template_limit",
        ),
        ("thank_you.fa.j2", "سلام {{ first_name }", "syntax error"),
    ],
)
def test_a_broken_template_keeps_the_last_good_one_in_use(
    project: Project, broken_name: str, broken_text: str, problem: str
) -> None:
    runtime = project.runtime()
    try:
        project.paid_order("Sara")
        assert project.send_due(runtime) == ["Thanks Sara"]

        project.write_template(broken_name, broken_text)
        problems = [str(p) for p in runtime.rulebook.reload()]
        assert len(problems) == 1 and problem in problems[0] and broken_name in problems[0]
        project.paid_order("Ali")
        assert project.send_due(runtime) == ["Thanks Ali"], "the broken template was used"

        (project.settings.paths.templates / broken_name).unlink()
        project.write_template("thank_you.j2", "Merci {{ first_name }}")
        assert runtime.rulebook.reload() == []
        project.paid_order("Reza")
        assert project.send_due(runtime) == ["Merci Reza"], "the fixed template was not picked up"
    finally:
        runtime.close()
    with project.sessions() as session:
        assert set(session.scalars(select(Message.status))) == {"sent"}


def test_a_broken_rule_keeps_running_with_the_templates_that_are_good_for_it(
    project: Project,
) -> None:
    runtime = project.runtime()
    try:
        project.write_rule(THANK_YOU_RULE + "delya = 1\n")
        project.write_template("thank_you.j2", "Hello {{ first_name }")
        assert [p.field for p in runtime.rulebook.reload()] == ["delya", "template"]
        project.paid_order("Sara")
        assert project.send_due(runtime) == ["Thanks Sara"]

        project.write_template("thank_you.j2", "Hello {{ first_name }}")
        assert [p.field for p in runtime.rulebook.reload()] == ["delya"]
        project.paid_order("Ali")
        assert project.send_due(runtime) == ["Hello Ali"]
    finally:
        runtime.close()
