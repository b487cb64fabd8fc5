"""No server file path reaches the browser: the file's own name does, its folders do not."""

from __future__ import annotations

import re
import tempfile

import pytest
from console_site import ConsoleSite

from campaigner.console.paths import without_paths


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/srv/shop/rules/a.toml: rule 'a': trigger: bad", "a.toml: rule 'a': trigger: bad"),
        ("no rule file x.toml in /home/sara/shop/rules", "no rule file x.toml in rules"),
        ("cannot read '/etc/campaigner/secret.toml'", "cannot read 'secret.toml'"),
        ("[Errno 13] Permission denied: '/srv/x/t.j2'", "[Errno 13] Permission denied: 't.j2'"),
        # not paths: dates, URLs, fractions, a word with a slash, a lone slash
        ("due 1404/12/29 at 10:00", "due 1404/12/29 at 10:00"),
        ("see https://shop.example/a/b/c", "see https://shop.example/a/b/c"),
        ("1/2 of and/or / both", "1/2 of and/or / both"),
    ],
)
def test_absolute_paths_are_cut_to_the_files_name(text: str, shown: str) -> None:
    assert without_paths(text) == shown


def _leaks(site: ConsoleSite, body: str) -> list[str]:
    folders = {str(site.project.settings.paths.rules.parent), tempfile.gettempdir() + "/"}
    return [folder for folder in folders if folder in body] + re.findall(r"/pytest-of-\w+", body)


def test_no_page_shows_where_the_files_are(site: ConsoleSite) -> None:
    settings = site.project.settings
    (settings.paths.rules / "broken.toml").write_text('trigger = "nope"\n', encoding="utf-8")
    (settings.paths.rules / "no_template.toml").write_text(
        'trigger = "post_purchase"\ntemplate = "missing.j2"\n', encoding="utf-8"
    )
    client = site.signed_in("marketer")
    csrf = site.csrf(client)
    answers = {
        "rules": client.get("/console/rules"),
        "missing rule": client.get("/console/rules/nothing_here"),
        "broken rule": client.get("/console/rules/broken"),
        "check": client.post(
            "/console/rules/thank_you/check",
            data={"csrf": csrf, "rule": 'trigger = "post_purchase"\ntemplate = "gone.j2"\n'},
        ),
        "preview": client.post(
            "/console/rules/no_template/preview",
            data={"csrf": csrf, "rule": 'trigger = "post_purchase"\ntemplate = "missing.j2"\n'},
        ),
        "save": client.post(
            "/console/rules/thank_you/save",
            data={"csrf": csrf, "rule": 'trigger = "post_purchase"\ntemplate = "gone.j2"\n'},
        ),
        "new": client.post(
            "/console/rules/new", data={"csrf": csrf, "name": "broken", "trigger": "birthday"}
        ),
    }
    for what, answer in answers.items():
        assert _leaks(site, answer.text) == [], (what, answer.text)
    assert "broken.toml" in answers["rules"].text  # the problem still names the file
    assert answers["missing rule"].status_code == 400
    assert "nothing_here.toml" in answers["missing rule"].text


def test_a_rule_file_too_large_to_read_is_named_not_a_failure(site: ConsoleSite) -> None:
    """A rule file the checks refuse to read is the marketer's to fix: a 400 that says so,
    without the folder, rather than "the console failed"."""
    big = site.project.settings.paths.rules / "big.toml"
    big.write_text("# " + "x" * 70_000 + "\n", encoding="utf-8")
    answer = site.signed_in("viewer").get("/console/rules/big")
    assert answer.status_code == 400
    assert "too large" in answer.text and _leaks(site, answer.text) == []
