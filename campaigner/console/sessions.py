"""Signed-in browsers. The cookie holds a random token signed with the shop's console key;
the database holds only the token's hash, its CSRF token and its times, so signing out (or
an idle or too-old session) ends it on the server, whatever the browser keeps."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigner.config import ConsoleSettings
from campaigner.db.models import ConsoleKey, ConsoleSession, ConsoleUser

COOKIE = "campaigner_console"


@dataclass(frozen=True)
class Visitor:
    session_id: int
    user_id: int
    name: str
    role: str
    language: str
    csrf_token: str


def cookie_key(session: Session) -> bytes:
    """The shop's signing key, made by the first caller (any daemon or console)."""
    key = session.get(ConsoleKey, "cookie")
    if key is None:
        try:
            with session.begin_nested():
                session.add(ConsoleKey(name="cookie", value=secrets.token_hex(32)))
        except IntegrityError:
            pass
        key = session.get(ConsoleKey, "cookie")
        assert key is not None
    return key.value.encode("ascii")


def start(session: Session, user: ConsoleUser, now: datetime) -> str:
    """A new session for `user`; returns the cookie value. Always a new token, so a token
    planted in the browser before sign-in is worth nothing after it."""
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    return f"{token}.{_sign(cookie_key(session), token)}"


def resume(
    session: Session, settings: ConsoleSettings, cookie: str, now: datetime
) -> Visitor | None:
    """The visitor behind a cookie, or None when it is forged, ended, idle or too old."""
    token, _, signature = cookie.partition(".")
    if not token or not hmac.compare_digest(signature, _sign(cookie_key(session), token)):
        return None
    row = session.execute(
        select(ConsoleSession, ConsoleUser)
        .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
        .where(ConsoleSession.token_hash == _hash(token))
    ).first()
    if row is None:
        return None
    stored, user = row
    idle = now - stored.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    old = now - stored.created_at > timedelta(hours=settings.session_max_hours)
    if idle or old:
        session.delete(stored)
        return None
    stored.last_seen_at = now
    return Visitor(stored.id, user.id, user.name, user.role, user.language, stored.csrf_token)


def end(session: Session, session_id: int) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _sign(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
