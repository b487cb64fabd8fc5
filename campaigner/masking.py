"""Secrets masked in every form a line of text can carry them.

A secret rarely travels raw: httpx percent-encodes it in a query string, a callback URL
inside another URL is encoded twice, forms turn spaces into `+`, HTTP Basic sends
base64 of `user:password`, and a provider that echoes the request back may add JSON, HTML
or Python escapes. So each registered secret becomes one pattern in which every character
may appear in any of those forms, mixed freely, and base64 forms are matched whole.

The registry is process-wide: settings register their secrets once (`campaigner.logs`),
and the log handler, the ledger's error column and the CLI all mask through it.
"""

from __future__ import annotations

import base64
import re
import threading

MASK = "********"
MIN_LENGTH = 4  # shorter values would mask ordinary words

_HTML_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
_SHORT_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}  # JSON, Python


def _percent(data: bytes, prefix: str = "%") -> str:
    """`%2F` or `%2f` for each byte; with prefix `%25`, the same encoded twice (`%252F`)."""
    return "".join(f"{prefix}(?i:{byte:02x})" for byte in data)


def _unicode_escape(char: str) -> str:
    """JSON's and Python's `\\u00e9`; beyond the BMP, JSON's surrogate pair or `\\U0001f600`."""
    units = char.encode("utf-16-be", "surrogatepass")
    pairs = [units[i : i + 2].hex() for i in range(0, len(units), 2)]
    json_form = "".join(rf"\\u(?i:{unit})" for unit in pairs)
    if ord(char) <= 0xFFFF:
        return json_form
    return rf"{json_form}|\\U(?i:{ord(char):08x})"


def _char_forms(char: str) -> str:
    """A regex for one character of a secret in any encoding a line may hold it in."""
    data = char.encode("utf-8", "surrogatepass")
    point = ord(char)
    forms = [
        re.escape(char),
        _percent(data),
        _percent(data, "%25"),
        _unicode_escape(char),
        rf"&#0*{point};",
        rf"&#[xX](?i:0*{point:x});",
    ]
    if point < 0x100:
        forms.append(rf"\\x(?i:{point:02x})")  # Python's repr of a control character
    if not char.isalnum():
        forms.append(re.escape("\\" + _SHORT_ESCAPES.get(char, char)))  # \" \\ \/ \' \n
    if char == " ":
        forms += [r"\+", _percent(b"+")]  # form encoding, and that encoded again
    if char in _HTML_NAMES:
        forms.append(f"&{_HTML_NAMES[char]};")
    return "(?:" + "|".join(forms) + ")"


def _base64_forms(secret: str, username: str | None) -> list[str]:
    """Base64 of what HTTP Basic and API-key schemes encode, padded or not, standard or URL-safe."""
    plain = [secret, f"{secret}:", f":{secret}"]
    if username is not None:
        plain.insert(0, f"{username}:{secret}")
    forms = []
    for text in plain:
        raw = text.encode("utf-8", "surrogatepass")
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(raw).decode("ascii")
            forms += [encoded, encoded.rstrip("=")]
    return sorted(set(forms), key=len, reverse=True)


# Every form of a character starts with the character itself or with one of these: `%` (percent
# encoding), `\\` (JSON, Python and backslash escapes), `&` (HTML), `+` (a space in a form).
_ESCAPE_STARTS = frozenset("%\\&+")


def first_characters(secret: str, username: str | None = None) -> frozenset[str]:
    """The characters a match of `secret_pattern` can start with."""
    whole = _base64_forms(secret, username)
    return frozenset({secret[0], *_ESCAPE_STARTS, *(form[0] for form in whole if form)})


def secret_pattern(secret: str, username: str | None = None) -> str:
    """The regex matching `secret` in every form `mask` knows."""
    literal = "".join(_char_forms(char) for char in secret)
    whole = [re.escape(form) for form in _base64_forms(secret, username) if len(form) >= 4]
    return "|".join([*whole, literal])


class SecretRegistry:
    """Secrets to mask, compiled into one regex that is rebuilt whenever one is added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str | None], str] = {}
        self._regex: re.Pattern[str] | None = None

    def add(self, secret: str | None, *, username: str | None = None) -> None:
        """Mask `secret` from now on, also as base64 of `username:secret` (HTTP Basic)."""
        if not secret or len(secret) < MIN_LENGTH:
            return
        key = (secret, username or None)
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = secret_pattern(secret, username or None)
            self._regex = None

    def __contains__(self, secret: object) -> bool:
        return any(secret == known for known, _ in self._entries)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._regex is None and self._entries:
                # Longer secrets first, so that one containing another is masked whole. The
                # lookahead lets the search skip, with one set test, every position where no
                # secret can start, instead of trying each secret's alternatives there.
                ordered = sorted(self._entries.items(), key=lambda item: -len(item[0][0]))
                starts = set().union(*(first_characters(*key) for key, _ in ordered))
                first = "".join(sorted(re.escape(char) for char in starts))
                alternation = "|".join(f"(?:{p})" for _, p in ordered)
                self._regex = re.compile(f"(?=[{first}])(?:{alternation})")
            return self._regex

    def mask(self, text: str) -> str:
        regex = self._compiled()
        return regex.sub(MASK, text) if regex is not None else text

    def excerpt(self, text: str, limit: int) -> str:
        """`mask(text)[:limit]`, reading only as much of `text` as those characters can
        come from: a gateway's error page of megabytes costs what its first lines cost."""
        regex = self._compiled()
        if regex is None:
            return text[:limit]
        # Each MASK in the output stands for at most `reach` characters of the text, and a
        # secret found must lie whole before the end of the search.
        reach = self._reach()
        end = 2 * limit + (limit // len(MASK) + 2) * reach
        parts: list[str] = []
        length = position = 0
        for match in regex.finditer(text, 0, end):
            gap = text[position : match.start()]
            parts += [gap, MASK]
            length += len(gap) + len(MASK)
            position = match.end()
            if length >= limit:
                break
        parts.append(text[position : position + max(0, limit - length)])
        return "".join(parts)[:limit]

    def _reach(self) -> int:
        """The longest form any registered secret can take in a line (20 characters per
        character double percent-encoded; base64 of `username:secret`)."""
        with self._lock:
            longest = 0
            for secret, username in self._entries:
                basic = 4 * (len(f"{username or ''}:{secret}".encode()) // 3 + 1)
                longest = max(longest, 20 * len(secret), basic)
            return longest

    def snapshot(self) -> dict[tuple[str, str | None], str]:
        with self._lock:
            return dict(self._entries)

    def restore(self, entries: dict[tuple[str, str | None], str]) -> None:
        """Back to an earlier `snapshot()` (tests register throw-away secrets)."""
        with self._lock:
            self._entries = dict(entries)
            self._regex = None


registry = SecretRegistry()


def register_secret(secret: str | None, *, username: str | None = None) -> None:
    registry.add(secret, username=username)


def mask(text: str) -> str:
    """`text` with every registered secret, in whatever encoding, replaced by MASK."""
    return registry.mask(text)


def excerpt(text: str, limit: int) -> str:
    """Masked first, then cut: cutting first could leave the start of a secret behind."""
    return registry.excerpt(text, limit)
