"""A template path that is no plain file inside the templates folder is a named problem in
`rules check`, never a hang; a UTF-8 byte order mark is accepted and dropped."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigner.cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    assert CliRunner().invoke(cli, ["init", str(root)]).exit_code == 0
    return root


def rules_check(project: Path) -> subprocess.CompletedProcess[str]:
    """In a process of its own, so that a hang fails the test instead of stopping the run."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "campaigner",
            "--config",
            f"{project}/config.toml",
            "rules",
            "check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inner.txt").write_text("Hi", encoding="utf-8")


def _device_node(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # what /dev/zero is
    except PermissionError:
        pytest.skip("making a device node needs root")


def _loop(path: Path) -> None:
    path.symlink_to(path.name)  # Python's Path.resolve raises RuntimeError on it


def _outside(path: Path) -> None:
    secret = path.parents[3] / "elsewhere.j2"
    secret.write_text("Hi {{ first_name }}, the root password is hunter2", encoding="utf-8")
    path.symlink_to(secret)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_fifo, "not a regular file (a FIFO): a template must be a plain file"),
        (_device, "(to /dev/zero): a template must be a file inside its folder"),
        (_device_node, "not a regular file (a device): a template must be a plain file"),
        (
            _directory,
            "not a regular file (a directory): a template must be a plain file",
        ),
        (_outside, "a symlink leading outside "),
        (_loop, "Too many levels of symbolic links"),
    ],
    ids=["fifo", "dev-zero", "device-node", "directory", "symlink-outside", "symlink-loop"],
)
def test_a_template_that_is_no_plain_file_is_named(
    project: Path, make: Callable[[Path], None], problem: str
) -> None:
    template = project / "templates" / "messages" / "thank_you.en.j2"
    template.unlink()
    make(template)
    result = rules_check(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{project}/rules/thank_you.toml: rule 'thank_you': template: ")
    assert f"{template}: cannot read: " in line and problem in line
    assert "hunter2" not in line


def test_a_symlink_to_a_template_in_the_same_folder_is_fine(project: Path) -> None:
    folder = project / "templates" / "messages"
    (folder / "thank_you.en.j2").unlink()
    (folder / "thank_you.en.j2").symlink_to(folder / "thank_you.fa.j2")
    result = rules_check(project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_byte_order_mark_is_accepted_and_dropped(project: Path) -> None:
    """What Notepad writes as "UTF-8 with BOM". A BOM left in would reach the customer as an
    invisible character and make the message UCS-2 (70 characters a part instead of 160)."""
    template = project / "templates" / "messages" / "thank_you.en.j2"
    template.write_bytes(b"\xef\xbb\xbfThanks {{ first_name }}!")
    rule = project / "rules" / "thank_you.toml"
    rule.write_bytes(b"\xef\xbb\xbf" + rule.read_bytes())
    result = rules_check(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("ok  thank_you: ") for line in result.stdout.splitlines())
