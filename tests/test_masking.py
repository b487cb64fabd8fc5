"""A secret is masked in every encoding a line can carry it in, in log lines (text and JSON).

The two secrets from issue 13 come first; then hypothesis generates secrets with every
special character (tests/secret_forms.py). The ledger's `last_error` and the CLI output
are checked the same way in tests/dispatch/test_ledger.py and tests/cli/test_sending_cmds.py.
"""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote

import httpx
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from secret_forms import USERNAME, encodings, secrets

from campaigner.logs import log_handler
from campaigner.masking import MASK, excerpt, mask, register_secret, registry

KANNEL_PASSWORD = "KnPw/SECRET&1 x"
WEBHOOK_TOKEN = "Wh/Tok+SECRET=2"


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


def test_a_text_cut_to_size_keeps_no_start_of_a_secret() -> None:
    register_secret(KANNEL_PASSWORD)
    assert excerpt("x" * 495 + quote(KANNEL_PASSWORD), 500) == "x" * 495 + MASK[:5]


def test_short_values_are_not_secrets() -> None:
    register_secret("abc")
    assert mask("abc abcd") == "abc abcd"


@given(secret=secrets)
@hypothesis_settings(max_examples=150, deadline=None)
def test_any_secret_is_masked_in_every_encoding_in_log_lines(secret: str) -> None:
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


@given(
    secret=secrets,
    pieces=st.lists(st.tuples(st.text(max_size=60), st.integers(min_value=0, max_value=20))),
    limit=st.integers(min_value=0, max_value=120),
)
@hypothesis_settings(max_examples=150, deadline=None)
def test_an_excerpt_is_the_masked_text_cut(
    secret: str, pieces: list[tuple[str, int]], limit: int
) -> None:
    """`excerpt` reads only the start of a long text (a gateway's error page of megabytes
    was masked whole for each failed message); what it returns is exactly `mask`, then cut,
    wherever the secret's forms fall, at the cut included."""
    saved = registry.snapshot()
    register_secret(secret, username=USERNAME)
    forms = list(encodings(secret).values())
    text = "".join(filler + forms[choice % len(forms)] for filler, choice in pieces)
    try:
        assert excerpt(text, limit) == mask(text)[:limit]
    finally:
        registry.restore(saved)


def test_an_excerpt_of_a_huge_text_masks_what_it_keeps() -> None:
    register_secret(KANNEL_PASSWORD)
    page = (quote(KANNEL_PASSWORD) + "<p>down</p>") * 200_000  # 5 MB
    cut = excerpt(page, 500)
    assert len(cut) == 500 and "SECRET" not in cut and cut.startswith(MASK + "<p>down</p>")
