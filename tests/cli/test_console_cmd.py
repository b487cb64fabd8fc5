"""`campaigner console add-user`: passwords stored as argon2 hashes, mistakes named."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.db.models import ConsoleUser


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def invoke(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)


def test_add_user_stores_only_a_hash(config: Path, sessions: sessionmaker[Session]) -> None:
    result = invoke(
        config,
        "console",
        "add-user",
        "sara",
        "--role",
        "approver",
        "--password-stdin",
        stdin="a long pass phrase\n",
    )
    assert result.exit_code == 0, result.output
    assert "console user sara (approver) created" in result.output
    with sessions() as session:
        user = session.scalars(select(ConsoleUser)).one()
    assert (user.name, user.role, user.language) == ("sara", "approver", "fa")
    assert "a long pass phrase" not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, "a long pass phrase")


def test_add_user_asks_twice_for_the_password(
    config: Path, sessions: sessionmaker[Session]
) -> None:
    result = invoke(
        config,
        "console",
        "add-user",
        "reza",
        "--role",
        "viewer",
        stdin="a long pass phrase\na long pass phrase\n",
    )
    assert result.exit_code == 0, result.output
    with sessions() as session:
        assert session.scalar(select(ConsoleUser.name)) == "reza"


@pytest.mark.parametrize(
    ("args", "stdin", "problem"),
    [
        (["sara", "--role", "admin"], "short\n", "at least 10 characters"),
        (["sa ra", "--role", "admin"], "a long pass phrase\n", "user name 'sa ra'"),
        (["sara", "--role", "root"], "a long pass phrase\n", "'root' is not one of"),
    ],
)
def test_add_user_names_what_is_wrong(
    config: Path, sessions: sessionmaker[Session], args: list[str], stdin: str, problem: str
) -> None:
    result = invoke(config, "console", "add-user", *args, "--password-stdin", stdin=stdin)
    assert result.exit_code != 0 and problem in result.output
    assert "Traceback" not in result.output
    with sessions() as session:
        assert session.scalar(select(ConsoleUser.name)) is None


def test_a_user_name_is_taken_once(config: Path, sessions: sessionmaker[Session]) -> None:
    for _ in range(2):
        result = invoke(
            config,
            "console",
            "add-user",
            "sara",
            "--role",
            "viewer",
            "--password-stdin",
            stdin="a long pass phrase\n",
        )
    assert result.exit_code == 1
    assert "Error: a console user named 'sara' exists already" in result.output
