"""A listing piped into a reader that stops early (`campaigner history | head -1`) ends
quietly: no traceback, no `Error: Broken pipe`, exit status 1 as for any stopped write."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import sessionmaker

from campaigner.db.models import Customer, Message
from campaigner.project import create_project

UNKNOWN_ROWS = 3000  # about 300 KB of `unknown list`, far beyond a pipe's 64 KB buffer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose ledger holds thousands of unknown messages to list."""
    root = tmp_path_factory.mktemp("pipe") / "shop"
    # The library, not the CLI: the CLI configures logging for the whole process, and a
    # module fixture runs outside the per-test fixture that undoes that.
    create_project(root)
    engine = create_engine(f"sqlite:///{root / 'campaigner.db'}")
    since = datetime.now(UTC) - timedelta(hours=3)
    with sessionmaker(engine).begin() as session:
        session.execute(
            insert(Customer),
            [{"id": 1, "external_id": "C-1", "phone": "+989121234567"}],
        )
        session.execute(
            insert(Message),
            [
                {
                    "rule": "thank_you",
                    "customer_id": 1,
                    "occurrence_key": f"order-{n}",
                    "status": "unknown",
                    "reason": "lease_expired",
                    "gateway": "console",
                    "phone": "+989121234567",
                    "due_at": since,
                    "scheduled_for": since,
                    "expires_at": since + timedelta(days=2),
                    "updated_at": since,
                }
                for n in range(UNKNOWN_ROWS)
            ],
        )
    engine.dispose()
    return root


def start(project: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "campaigner", "--config", str(project / "config.toml"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["gateways", "list"],
        ["rules", "list"],
        ["history", "--phone", "+989121234567"],
        ["status"],
        ["unknown", "list"],
        ["report"],
        ["report", "--format", "csv"],
        ["report", "--format", "json"],
        ["config", "show"],
    ],
)
def test_a_reader_gone_before_the_first_line(project: Path, command: list[str]) -> None:
    process = start(project, *command)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head -0`: gone before the command writes anything
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert errors == ""


def test_a_reader_gone_after_the_first_line_of_a_long_listing(project: Path) -> None:
    process = start(project, "unknown", "list", "--limit", str(UNKNOWN_ROWS))
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline().decode()  # `| head -1`
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert first.startswith("#") and "thank_you" in first
    assert process.wait(timeout=60) == 1
    assert errors == ""


def test_head_in_a_real_shell_pipeline(project: Path) -> None:
    config = project / "config.toml"
    line = f"{sys.executable} -m campaigner --config {config} unknown list --limit 3000 | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", line], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.startswith("#")
    assert result.stderr == ""
