"""The rulebook keeps the last good version of a rule *and its template* while the files on
disk are broken, and picks up the fixed ones."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _outside(path: Path) -> None:
    elsewhere = path.parents[2] / "elsewhere.j2"
    elsewhere.write_text("Stolen {{ first_name }}", encoding="utf-8")
    path.unlink()
    path.symlink_to(elsewhere)


@pytest.mark.parametrize(
    ("make", "problem"),
    [(_fifo, "(a FIFO)"), (_outside, "a symlink leading outside")],
    ids=["fifo", "symlink-outside"],
)
def test_a_template_turned_into_no_plain_file_keeps_the_last_good_one(
    project: Project, make: Callable[[Path], None], problem: str
) -> None:
    """The daemon's reload reads a FIFO without waiting for a writer, and never follows a
    symlink out of the templates folder."""
    runtime = project.runtime()
    try:
        project.paid_order("Sara")
        assert project.send_due(runtime) == ["Thanks Sara"]
        make(project.settings.paths.templates / "thank_you.j2")
        problems = [str(p) for p in runtime.rulebook.reload()]
        assert len(problems) == 1 and problem in problems[0], problems
        project.paid_order("Ali")
        assert project.send_due(runtime) == ["Thanks Ali"]
    finally:
        runtime.close()


def test_a_template_with_a_byte_order_mark_is_sent_without_it(project: Project) -> None:
    runtime = project.runtime()
    try:
        template = project.settings.paths.templates / "thank_you.j2"
        template.write_bytes(b"\xef\xbb\xbfMerci {{ first_name }}")
        assert runtime.rulebook.reload() == []
        project.paid_order("Sara")
        assert project.send_due(runtime) == ["Merci Sara"]
    finally:
        runtime.close()
