"""Editing rule files from the console: checked like `rules check`, saved atomically with
the previous version kept, committed when the rules folder is in git."""

from __future__ import annotations

import fcntl
import multiprocessing
import re
import subprocess
import threading
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
from console_site import ConsoleSite
from starlette.testclient import TestClient

from campaigner.config import Settings
from campaigner.console import editor
from campaigner.errors import CampaignerError
from campaigner.rulebook import check_rules
from campaigner.rules.models import TRIGGERS

RULE = 'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\ntransactional = true\n'


def test_a_broken_draft_is_named_by_file_line_and_field(site: ConsoleSite) -> None:
    settings = site.project.settings
    draft = editor.Draft("thank_you", RULE.replace('"2h"', '"soon"'), {}, "thank_you")
    (problem,) = editor.check_draft(settings, draft)
    assert (problem.file, problem.line, problem.field) == ("thank_you.toml", 3, "delay")
    syntax = editor.Draft("thank_you", RULE + "priority = = 3\n", {}, "thank_you")
    (problem,) = editor.check_draft(settings, syntax)
    assert problem.line == 5 and "TOML" in problem.message
    template = editor.Draft("thank_you", RULE, {"": "Hi {{ frist_name }}"}, "thank_you")
    (problem,) = editor.check_draft(settings, template)
    assert problem.field == "template" and "frist_name" in problem.message
    # Nothing on disk changed.
    assert "delay" in (settings.paths.rules / "thank_you.toml").read_text()
    assert (settings.paths.templates / "thank_you.j2").read_text() == "Thanks {{ first_name }}"


def test_a_template_that_never_ends_is_a_named_problem_not_a_hang(site: ConsoleSite) -> None:
    runaway = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
    draft = editor.Draft("thank_you", RULE, {"": runaway}, "thank_you")
    (problem,) = editor.check_draft(site.project.settings, draft)
    assert problem.field == "template"


def test_saving_keeps_the_previous_version_and_refuses_a_broken_draft(
    site: ConsoleSite,
) -> None:
    settings, clock = site.project.settings, site.project.clock
    rule_file = settings.paths.rules / "thank_you.toml"
    before = rule_file.read_text()
    draft = editor.Draft(
        "thank_you", before.replace('"2h"', '"3h"'), {"": "Merci {{ first_name }}"}, "thank_you"
    )
    saved = editor.save_draft(settings, draft, user="sara", message="later", now=clock.now())
    assert sorted(Path(p).name for p in saved.changes) == ["thank_you.j2", "thank_you.toml"]
    assert '"3h"' in rule_file.read_text()
    history = settings.paths.rules.parent / editor.HISTORY
    kept = sorted(p.read_text() for p in history.rglob("*") if p.is_file())
    assert before in kept and "Thanks {{ first_name }}" in kept
    broken = editor.Draft("thank_you", "trigger = 'nope'\n", {}, "thank_you")
    with pytest.raises(CampaignerError, match="unknown trigger"):
        editor.save_draft(settings, broken, user="sara", message="x", now=clock.now())
    assert '"3h"' in rule_file.read_text()
    assert not list(settings.paths.rules.glob(".*"))  # no temp file left behind


def test_saving_commits_when_the_rules_folder_is_a_git_work_tree(site: ConsoleSite) -> None:
    settings, clock = site.project.settings, site.project.clock
    top = settings.paths.rules.parent
    for command in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "start"],
    ):
        subprocess.run(["git", "-C", str(top), *command], check=True)
    draft = editor.Draft("thank_you", RULE.replace('"2h"', '"4h"'), {}, "thank_you")
    editor.save_draft(settings, draft, user="sara", message="Wait four hours", now=clock.now())
    log = subprocess.run(
        ["git", "-C", str(top), "log", "-1", "--format=%an|%s", "--name-only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert log.startswith("sara|Wait four hours")
    assert "rules/thank_you.toml" in log


def test_enabling_and_disabling_keeps_comments_and_sections() -> None:
    text = '# thanks\ntrigger = "post_purchase"\ntemplate = "t.j2"\n\n[audience]\nmin_orders = 2\n'
    off = editor.set_enabled(text, False)
    assert off.startswith(
        '# thanks\ntrigger = "post_purchase"\ntemplate = "t.j2"\nenabled = false\n'
    )
    assert off.endswith("[audience]\nmin_orders = 2\n")
    assert editor.set_enabled(off, True) == off.replace("enabled = false", "enabled = true")


def test_rule_names_cannot_leave_the_rules_folder(site: ConsoleSite) -> None:
    for name in ("../config", "a/b", "", "x" * 65, ".hidden"):
        with pytest.raises(CampaignerError):
            editor.rule_path(site.project.settings, name)


def test_the_editor_page_checks_saves_and_audits(site: ConsoleSite) -> None:
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    broken = client.post(
        "/console/rules/thank_you/check", data={"csrf": csrf, "rule": RULE.replace('"2h"', '"x"')}
    )
    assert "thank_you.toml:3: delay:" in broken.text
    saved = client.post(
        "/console/rules/thank_you/save",
        data={
            "csrf": csrf,
            "rule": RULE.replace('"2h"', '"5h"'),
            "template:": "Hello {{ first_name }}",
            "message": "five",
        },
    )
    assert 'id="saved"' in saved.text
    admin = site.signed_in("admin")
    audit = admin.get("/console/audit").text
    assert "edit_file" in audit and "+delay = &#34;5h&#34;" in audit and "marketer" in audit


def test_two_marketers_saving_the_same_rule_cannot_overwrite_each_other_unseen(
    site: ConsoleSite,
) -> None:
    """Both open the editor; the first save wins, the second is told, not silently lost."""
    first, second = site.signed_in("marketer"), site.signed_in("approver")
    pages = [client.get("/console/rules/thank_you").text for client in (first, second)]
    based = [re.search(r'name="based_on" id="based-on" value="([^"]+)"', p) for p in pages]
    assert based[0] and based[1]

    def save(client: TestClient, based_on: str, delay: str) -> Any:
        return client.post(
            "/console/rules/thank_you/save",
            data={
                "csrf": site.csrf(client),
                "based_on": based_on,
                "rule": RULE.replace('"2h"', delay),
                "template:": "Hello {{ first_name }}",
            },
        )

    saved = save(first, based[0].group(1), '"5h"')
    assert 'id="saved"' in saved.text
    refused = save(second, based[1].group(1), '"7h"')
    assert refused.status_code == 422
    assert "changed since you opened it" in refused.text
    rule_file = site.project.settings.paths.rules / "thank_you.toml"
    assert '"5h"' in rule_file.read_text()
    # the first marketer's page now stands on their own save: saving again is fine
    again = re.search(r'name="based_on" id="based-on" value="([^"]+)"', saved.text)
    assert again
    assert 'id="saved"' in save(first, again.group(1), '"6h"').text
    assert '"6h"' in rule_file.read_text()


def test_a_draft_that_takes_another_rules_name_is_refused(site: ConsoleSite) -> None:
    """`name = "..."` of another rule would make the daemon drop that other rule; the problem
    is reported on that other file, so the editor must name it as the draft's doing."""
    settings, clock = site.project.settings, site.project.clock
    other = settings.paths.rules / "zz_other.toml"
    other.write_text(RULE, encoding="utf-8")
    (settings.paths.rules / "aa_first.toml").write_text(RULE, encoding="utf-8")
    draft = editor.Draft("aa_first", 'name = "zz_other"\n' + RULE, {}, "thank_you")
    problems = editor.check_draft(settings, draft)
    assert [str(p) for p in problems] == [
        "aa_first.toml:1: name: breaks zz_other.toml: duplicate rule name (also in aa_first.toml)"
    ]
    with pytest.raises(CampaignerError, match=r"breaks zz_other\.toml"):
        editor.save_draft(settings, draft, user="sara", message="x", now=clock.now())
    assert "zz_other" not in (settings.paths.rules / "aa_first.toml").read_text()
    # a problem the other file had already is not the draft's doing
    other.write_text("trigger = 'nope'\n", encoding="utf-8")
    assert editor.check_draft(settings, editor.Draft("aa_first", RULE, {}, "thank_you")) == []


def test_a_new_rule_of_every_trigger_kind_is_created_checked_and_disabled(
    site: ConsoleSite,
) -> None:
    """The "new rule" form offers every kind; each starting text passes the checks, so the
    marketer edits values, product rules and segment moves included."""
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    page = client.get("/console/rules").text
    rules = site.project.settings.paths.rules
    for trigger in TRIGGERS:
        assert f"<option>{trigger}</option>" in page
        name = f"new_{trigger}"
        answer = client.post(
            "/console/rules/new",
            data={"csrf": csrf, "name": name, "trigger": trigger},
            follow_redirects=False,
        )
        assert answer.status_code == 303, (trigger, answer.text)
        text = (rules / f"{name}.toml").read_text(encoding="utf-8")
        assert f'trigger = "{trigger}"' in text and "enabled = false" in text
    loaded = check_rules(site.project.settings)
    assert loaded.problems == []
    assert {rule.trigger for rule in loaded.rules.values() if not rule.enabled} == set(TRIGGERS)


def _save_elsewhere(
    folders: tuple[str, str],
    delay: str,
    based_on: str,
    wait_for: Event | None,
    hold_until: Event | None,
    done: Event,
    results: Queue,  # type: ignore[type-arg]
) -> None:
    """One console process saving: with `hold_until`, it pauses between its "unchanged since
    opened" check and its first write, as a slow disk or a git hook would."""
    rules, templates = folders
    settings = Settings.model_validate({"paths": {"rules": rules, "templates": templates}})
    if hold_until is not None:
        write = editor.write_atomically

        def slow_write(path: Path, text: str) -> None:
            done.set()  # checked, about to write
            hold_until.wait(2)  # the other save finishes here, unless the lock holds it
            write(path, text)

        editor.write_atomically = slow_write  # type: ignore[assignment]
    if wait_for is not None:
        wait_for.wait(30)
    draft = editor.Draft("thank_you", RULE.replace('"2h"', delay), {}, "thank_you")
    try:
        editor.save_draft(
            settings, draft, user=delay, message="", now=datetime.now(UTC), based_on=based_on
        )
        results.put((delay, "saved"))
    except CampaignerError as exc:
        results.put((delay, str(exc)))
    finally:
        if hold_until is None:
            done.set()


@pytest.mark.slow
def test_two_console_processes_saving_the_same_rule_lose_no_edit(site: ConsoleSite) -> None:
    """The daemon's console and `campaigner console` are two processes on the same files:
    both open the rule, both save. The second save must be refused, not silently undo the
    first, even when it comes while the first is between its check and its write."""
    settings = site.project.settings
    opened = editor.fingerprint(editor.load_draft(settings, "thank_you"))
    folders = (str(settings.paths.rules), str(settings.paths.templates))
    spawn = multiprocessing.get_context("spawn")
    first_checked, second_done, results = spawn.Event(), spawn.Event(), spawn.Queue()
    first = spawn.Process(
        target=_save_elsewhere,
        args=(folders, '"5h"', opened, None, second_done, first_checked, results),
    )
    second = spawn.Process(
        target=_save_elsewhere,
        args=(folders, '"7h"', opened, first_checked, None, second_done, results),
    )
    for process in (first, second):
        process.start()
    outcome = dict(results.get(timeout=60) for _ in range(2))
    for process in (first, second):
        process.join(30)
        assert process.exitcode == 0
    assert outcome['"5h"'] == "saved"
    assert "changed since you opened it" in outcome['"7h"']
    assert '"5h"' in (settings.paths.rules / "thank_you.toml").read_text()


def test_a_save_waits_a_bounded_time_for_a_lock_another_process_holds(
    site: ConsoleSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stopped `campaigner console` (Ctrl-Z mid-save) or a stuck git hook holds the lock
    alive, so the kernel never drops it: a save must then be refused, not wait forever and
    take a server thread with it (review 1 found it waiting until the holder died)."""
    settings, clock = site.project.settings, site.project.clock
    monkeypatch.setattr(editor, "SAVE_WAIT_SECONDS", 0.3)
    folder = settings.paths.rules.parent / editor.HISTORY
    folder.mkdir(exist_ok=True)
    draft = editor.Draft("thank_you", RULE.replace('"2h"', '"4h"'), {}, "thank_you")
    outcome: list[str] = []

    def save() -> None:
        try:
            editor.save_draft(settings, draft, user="sara", message="x", now=clock.now())
            outcome.append("saved")
        except CampaignerError as exc:
            outcome.append(str(exc))

    # A second open file is a second flock owner, as another process's would be.
    with open(folder / editor.SAVE_LOCK, "a+b") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        saver = threading.Thread(target=save)
        saver.start()
        saver.join(10)
        waited_forever = saver.is_alive()
        fcntl.flock(holder, fcntl.LOCK_UN)
    saver.join(10)
    assert not waited_forever
    assert outcome and "another save" in outcome[0]
    assert '"2h"' in (settings.paths.rules / "thank_you.toml").read_text()
    editor.save_draft(settings, draft, user="sara", message="x", now=clock.now())
    assert '"4h"' in (settings.paths.rules / "thank_you.toml").read_text()


@pytest.mark.parametrize("blocker", ["lock_is_a_folder", "history_is_a_dangling_link"])
def test_an_unusable_save_lock_is_a_named_refusal_without_server_folders(
    site: ConsoleSite, blocker: str
) -> None:
    """Before review 1 these were a bare 500: the save lock must say what is wrong, and like
    every browser message name no server folder."""
    settings, clock = site.project.settings, site.project.clock
    folder = settings.paths.rules.parent / editor.HISTORY
    if blocker == "lock_is_a_folder":
        (folder / editor.SAVE_LOCK).mkdir(parents=True)
    else:
        folder.symlink_to(settings.paths.rules.parent / "nowhere" / "history")
    draft = editor.Draft("thank_you", RULE, {}, "thank_you")
    with pytest.raises(CampaignerError, match="save lock") as refused:
        editor.save_draft(settings, draft, user="sara", message="x", now=clock.now())
    assert str(settings.paths.rules.parent) not in str(refused.value)


def git_work_tree(top: Path, hook: str) -> None:
    """`top` as a git work tree with everything committed, and `hook` as its pre-commit."""
    for command in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "start"],
    ):
        subprocess.run(["git", "-C", str(top), *command], check=True)
    pre_commit = top / ".git" / "hooks" / "pre-commit"
    pre_commit.write_text(f"#!/bin/sh\n{hook}\n")
    pre_commit.chmod(0o755)


def commits(top: Path) -> int:
    listed = subprocess.run(
        ["git", "-C", str(top), "rev-list", "--count", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(listed.stdout)


def test_a_hung_git_hook_leaves_the_save_on_disk_and_says_history_was_not_recorded(
    site: ConsoleSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: `git commit` ran without a timeout, so a commit hook waiting for input
    (or a network) hung the save request, and its server thread, forever."""
    settings, clock = site.project.settings, site.project.clock
    top = settings.paths.rules.parent
    git_work_tree(top, "sleep 600")
    monkeypatch.setattr(editor, "GIT_SECONDS", 0.5)
    draft = editor.Draft("thank_you", RULE.replace('"2h"', '"4h"'), {}, "thank_you")
    outcome: list[editor.Saved] = []
    saver = threading.Thread(
        target=lambda: outcome.append(
            editor.save_draft(settings, draft, user="sara", message="x", now=clock.now())
        ),
        daemon=True,
    )
    saver.start()
    saver.join(30)
    assert not saver.is_alive(), "the save waited for the hung hook"
    (saved,) = outcome
    assert [Path(p).name for p in saved.changes] == ["thank_you.toml"]
    assert saved.unrecorded is not None
    assert "history not recorded" in saved.unrecorded and "0.5 s" in saved.unrecorded
    assert '"4h"' in (settings.paths.rules / "thank_you.toml").read_text()
    assert commits(top) == 1
    assert not (top / ".git" / "index.lock").exists()  # the next save can commit
    (top / ".git" / "hooks" / "pre-commit").unlink()
    again = editor.Draft("thank_you", RULE.replace('"2h"', '"5h"'), {}, "thank_you")
    saved = editor.save_draft(settings, again, user="sara", message="y", now=clock.now())
    assert saved.unrecorded is None and commits(top) == 2


def test_a_refusing_git_hook_is_said_on_the_saved_page(site: ConsoleSite) -> None:
    """A hook that refuses the commit was a 500 after the files were written."""
    top = site.project.settings.paths.rules.parent
    git_work_tree(top, "echo 'lint: trailing space' >&2; exit 1")
    client = site.signed_in("marketer")
    saved = client.post(
        "/console/rules/thank_you/save",
        data={"csrf": site.csrf(client), "rule": RULE.replace('"2h"', '"5h"'), "message": "5"},
    )
    assert saved.status_code == 200 and 'id="saved"' in saved.text
    assert 'id="unrecorded"' in saved.text and "lint: trailing space" in saved.text
    assert '"5h"' in (site.project.settings.paths.rules / "thank_you.toml").read_text()
    assert commits(top) == 1
