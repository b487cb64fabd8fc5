"""A secret is masked in every encoding a line can carry it in: in log lines (text and JSON),
in the ledger's `last_error` and in what the CLI prints.

The two secrets from issue 13 come first; then hypothesis generates secrets with every
special character. The mask itself is made of stars, so '*' is the one character left out.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.db.models import Customer, Message
from campaigner.dispatch.dispatcher import MAX_ERROR_CHARS, _failed
from campaigner.dispatch.ledger import write_rows
from campaigner.logs import log_handler
from campaigner.masking import MASK, mask, register_secret, registry

USERNAME = "campaigner"
KANNEL_PASSWORD = "KnPw/SECRET&1 x"
WEBHOOK_TOKEN = "Wh/Tok+SECRET=2"
WHEN = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)

SPECIAL = " !\"#$%&'()+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x00\x7féß€لغو۱۱\u200c😀"
secrets = st.text(
    alphabet=st.sampled_from(SPECIAL) | st.characters(codec="utf-8", exclude_characters="*"),
    min_size=4,
    max_size=24,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def encodings(secret: str) -> dict[str, str]:
    """Every form the secret can take in a line, by name."""
    percent = quote(secret, safe="")
    query = httpx.URL("http://gateway/", params={"p": secret}).query.decode()
    return {
        "raw": secret,
        "percent-encoded": percent,
        "percent-encoded, / kept": quote(secret),
        "lower-case hex": re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), percent),
        "+ for space": quote_plus(secret),
        "double-encoded": quote(percent, safe=""),
        "form, then encoded again": quote(quote_plus(secret), safe=""),
        "httpx query string": query.removeprefix("p="),
        "JSON": json.dumps(secret)[1:-1],
        "JSON, not ASCII": json.dumps(secret, ensure_ascii=False)[1:-1],
        "Python repr": repr(secret)[1:-1],
        "HTML": html.escape(secret),
        "base64 of user:password": b64(f"{USERNAME}:{secret}"),
        "base64": b64(secret),
    }


def line_with(form: str) -> str:
    return f"GET /cgi-bin/sendsms?password={form}&to=98912 -> 403 echo: {form}"


def logged(line: str, log_format: str) -> str:
    """What Campaigner's log handler writes for `line`: the message part only."""
    stream = io.StringIO()
    logger = logging.Logger("masking-test")
    logger.addHandler(log_handler(log_format, stream))
    logger.warning("%s", line)
    output = stream.getvalue()
    if log_format == "json":
        return str(json.loads(output)["message"])
    return output.split("masking-test: ", 1)[1]


@pytest.fixture
def isolated() -> Iterator[None]:
    """Each hypothesis example registers its own secret, forgotten afterwards."""
    saved = registry.snapshot()
    yield
    registry.restore(saved)


def test_the_secrets_of_issue_13_are_masked_in_every_encoding() -> None:
    register_secret(KANNEL_PASSWORD, username=USERNAME)
    register_secret(WEBHOOK_TOKEN)
    # The URL httpx logs for a Kannel send: the token is encoded once in the dlr-url and
    # the whole dlr-url again as a parameter.
    dlr_url = f"http://hooks/webhooks/kannel/dlr?id=1&status=%d&token={quote(WEBHOOK_TOKEN)}"
    url = httpx.URL(
        "http://kannel:13013/cgi-bin/sendsms",
        params={"username": USERNAME, "password": KANNEL_PASSWORD, "dlr-url": dlr_url},
    )
    assert "SECRET" in str(url)
    assert "SECRET" not in mask(f'HTTP Request: GET {url} "HTTP/1.1 403 Forbidden"')
    for secret in (KANNEL_PASSWORD, WEBHOOK_TOKEN):
        for name, form in encodings(secret).items():
            if name.startswith("base64") and secret == WEBHOOK_TOKEN:
                continue  # the token is never sent with a user name
            assert form not in mask(line_with(form)), name


@pytest.mark.usefixtures("isolated")
@given(secret=secrets)
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_secret_is_masked_in_every_encoding_in_log_lines(secret: str) -> None:
    assume(len(secret.strip()) >= 4)
    saved = registry.snapshot()
    register_secret(secret, username=USERNAME)
    try:
        for name, form in encodings(secret).items():
            line = line_with(form)
            assert form not in mask(line), name
            assert MASK in mask(line), name
            for log_format in ("text", "json"):
                assert form not in logged(line, log_format), (name, log_format)
    finally:
        registry.restore(saved)


@pytest.fixture
def message_id(sessions: sessionmaker[Session]) -> int:
    """A message being sent: the dispatcher writes its outcome with `write_rows`."""
    with sessions.begin() as session:
        customer = Customer(external_id="c1", first_name="Sara", phone="+989121234567")
        session.add(customer)
        session.flush()
        row = Message(
            rule="thank_you",
            customer_id=customer.id,
            occurrence_key="1",
            status="sending",
            phone=customer.phone,
            due_at=WHEN,
            scheduled_for=WHEN,
        )
        session.add(row)
        session.flush()
        return row.id


def stored_error(sessions: sessionmaker[Session], message_id: int) -> str:
    """The column as the database holds it, read without the model's types."""
    with sessions() as session:
        value = session.execute(
            text("SELECT last_error FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    return str(value)


@given(secret=secrets)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_secret_is_masked_before_it_reaches_the_ledger(
    secret: str, sessions: sessionmaker[Session], message_id: int
) -> None:
    assume(len(secret.strip()) >= 4 and "\x00" not in secret)  # PostgreSQL text holds no NUL
    saved = registry.snapshot()
    register_secret(secret, username=USERNAME)
    try:
        forms = encodings(secret)
        echo = " | ".join(line_with(form) for form in forms.values())
        with sessions.begin() as session:
            write_rows(session, [{"id": message_id, "last_error": echo}])
        stored = stored_error(sessions, message_id)
        for name, form in forms.items():
            assert form not in stored, name
    finally:
        registry.restore(saved)


def test_an_error_cut_to_size_keeps_no_start_of_a_secret() -> None:
    register_secret(KANNEL_PASSWORD, username=USERNAME)
    error = "x" * (MAX_ERROR_CHARS - 5) + quote(KANNEL_PASSWORD)
    row = _failed(1, "rejected", error, WHEN)
    assert "KnPw" not in row["last_error"]


@pytest.fixture
def shop(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[gateway]\nusername = "{USERNAME}"\n')
    return path


@given(secret=secrets)
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_secret_is_masked_in_cli_output(
    secret: str, sessions: sessionmaker[Session], message_id: int, shop: Path
) -> None:
    """A row written before masking existed: `history` masks what it prints."""
    assume(len(secret.strip()) >= 4 and "\x00" not in secret)
    forms = encodings(secret)
    with sessions.begin() as session:
        session.execute(  # plain SQL: stored as a pre-fix daemon would have stored it
            text("UPDATE messages SET last_error = :error WHERE id = :id"),
            {"error": " | ".join(forms.values()), "id": message_id},
        )
    saved = registry.snapshot()
    try:
        result = CliRunner().invoke(
            cli,
            ["--config", str(shop), "history", "--phone", "+989121234567"],
            env={"CAMPAIGNER_GATEWAY__PASSWORD": secret},
        )
    finally:
        registry.restore(saved)
    assert result.exit_code == 0, result.output
    assert "error: " in result.output
    for name, form in forms.items():
        assert form not in result.output, name
