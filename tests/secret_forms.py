"""Every form a secret can take in a line, and secrets hypothesis may generate, for the tests
that check masking in logs, the ledger and the CLI.

The mask itself is made of stars, so '*' is the one character the generated secrets leave out.
"""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

import httpx
from hypothesis import strategies as st

USERNAME = "campaigner"
SPECIAL = " !\"#$%&'()+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x00\x7féß€لغو۱۱\u200c😀"

secrets = st.text(
    alphabet=st.sampled_from(SPECIAL) | st.characters(codec="utf-8", exclude_characters="*"),
    min_size=4,
    max_size=24,
).filter(lambda secret: len(secret.strip()) >= 4)
# What environment variables and PostgreSQL text can hold.
storable_secrets = secrets.filter(lambda secret: "\x00" not in secret)


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


def echo_of(secret: str) -> str:
    """What a gateway that echoes requests back may answer: the secret in every form."""
    return " | ".join(
        f"GET /cgi-bin/sendsms?password={form}&to=98912" for form in encodings(secret).values()
    )
