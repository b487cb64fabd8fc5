"""Console users: argon2 password hashes, and sign-in with a lockout per user and a rate
limit per client address (an IPv6 client's /64: `forwarded.limit_key`), so a password
cannot be guessed by trying.

A client is also counted in its wider block (`forwarded.network_key`), against a larger
allowance: an IPv6 client in its /48, an IPv4 one in its /24. Whoever holds a /48 holds
65,536 /64s, and a /24 256 addresses, and with the narrower limit alone had as many times
its guesses. The block's failures are rows of their own (the block as the address), so
both counts are lookups of one indexed value. Neighbours in one /64 share no more than
before; neighbours in one /48 or /24 share its allowance."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from campaigner.config import ConsoleSettings
from campaigner.console.roles import Role
from campaigner.db.models import ConsoleLoginFailure, ConsoleUser
from campaigner.errors import CampaignerError
from campaigner.server.forwarded import limit_key, network_key

_HASHER = PasswordHasher()
# A hash to verify against when the user does not exist, so both cases take as long.
_DUMMY_HASH = _HASHER.hash("no such user")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10
SIGN_IN_FAILED = "sign_in_failed"


@dataclass(frozen=True)
class SignIn:
    user: ConsoleUser | None
    problem: str = ""


def add_user(session: Session, name: str, password: str, role: str, language: str = "fa") -> None:
    if not _NAME.match(name):
        raise CampaignerError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    if len(password) < MIN_PASSWORD:
        raise CampaignerError(f"the password must have at least {MIN_PASSWORD} characters")
    try:
        Role.named(role)
    except ValueError as exc:
        raise CampaignerError(str(exc)) from None
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.name == name)) is not None:
        raise CampaignerError(f"a console user named {name!r} exists already")
    session.add(
        ConsoleUser(
            name=name,
            password_hash=_HASHER.hash(password),
            role=role,
            language=language,
            failed_logins=0,
        )
    )


def sign_in(
    session: Session,
    settings: ConsoleSettings,
    name: str,
    password: str,
    address: str,
    now: datetime,
) -> SignIn:
    """The user when the password is right and neither the user nor the address is locked
    out; every failure counts towards both locks.

    An unknown user, a wrong password and a locked user fail alike: the same problem, and
    one password hash verified each time, so neither the answer nor its time tells whether
    the name exists or is locked (which would tell that it exists)."""
    window = timedelta(minutes=settings.lockout_minutes)
    client = limit_key(address)[:64]  # as stored, or a longer one would never be counted
    network = network_key(address)
    session.execute(delete(ConsoleLoginFailure).where(ConsoleLoginFailure.at < now - window))
    limits = [(client, settings.max_failed_logins_per_ip)]
    if network is not None:
        limits.append((network, settings.max_failed_logins_per_network))
    for counted, allowed in limits:
        recent = session.scalar(
            select(func.count()).where(
                ConsoleLoginFailure.address == counted, ConsoleLoginFailure.at >= now - window
            )
        )
        if (recent or 0) >= allowed:
            return SignIn(None, "too_many_attempts")
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name[:64]))
    right = _verified(user.password_hash if user else _DUMMY_HASH, password)
    locked = user is not None and user.locked_until is not None and user.locked_until > now
    if user is None or locked or not right:
        for counted, _ in limits:
            _fail(session, name, counted, now)
        if user is not None and not locked:
            user.failed_logins += 1
            if user.failed_logins >= settings.max_failed_logins:
                user.locked_until = now + window
                user.failed_logins = 0
        return SignIn(None, SIGN_IN_FAILED)
    user.failed_logins = 0
    user.locked_until = None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    return SignIn(user)


def _verified(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _fail(session: Session, name: str, client: str, now: datetime) -> None:
    session.add(ConsoleLoginFailure(user_name=name[:64], address=client, at=now))
