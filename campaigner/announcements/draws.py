"""Prize draws (قرعه‌کشی) that anyone can check.

The candidates are the eligible customers (a phone that works, not opted out, consent for
marketing) of a rule's audience or of a customers file. Their external ids, sorted by code
point and joined by newlines, are hashed with SHA-256; each id is ranked by
SHA-256("<seed>:<id>") and the lowest ranks win. Both need nothing but the seed and the
list, so the same seed and candidates give the same winners on any machine and database,
and the recorded hash proves which candidates took part.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from campaigner.announcements.listing import read_listing
from campaigner.db.models import Customer, Draw, DrawWinner
from campaigner.errors import CampaignerError
from campaigner.rules.models import AnnouncementRule, DrawWinnerRule, Rule
from campaigner.rules.triggers.announcement import audience_extras, json_values
from campaigner.rules.triggers.common import customers, eligible

MAX_WINNERS = 10_000
# Any marketing message's conditions, with no audience of its own.
_ANYONE = DrawWinnerRule(name="draw", template="draw", trigger="draw_winner", draw="draw")


@dataclass(frozen=True)
class Candidate:
    id: int
    external_id: str


def candidate_hash(external_ids: list[str]) -> str:
    """SHA-256 of the sorted external ids, one per line: what the proof records."""
    return hashlib.sha256("\n".join(sorted(external_ids)).encode()).hexdigest()


def rank(seed: str, external_id: str) -> str:
    return hashlib.sha256(f"{seed}:{external_id}".encode()).hexdigest()


def pick(seed: str, external_ids: list[str], winners: int) -> list[str]:
    """The winners, first place first: the lowest SHA-256("<seed>:<id>")."""
    return sorted(sorted(external_ids), key=lambda external_id: rank(seed, external_id))[:winners]


def rule_candidates(session: Session, rule: Rule, shop: Any, now: datetime) -> list[Candidate]:
    """The eligible customers of `rule`'s audience (an announcement's extras included) at
    `now`, which a `bought_any`/`bought_none` `within` is measured from."""
    conditions = list(eligible(rule, now))
    if isinstance(rule, AnnouncementRule):
        conditions += audience_extras(rule, shop, session.get_bind().dialect.name)
    return _found(session, conditions)


def file_candidates(session: Session, path: Path, region: str) -> list[Candidate]:
    """The eligible customers named in a customers file (external ids or phones)."""
    listing = read_listing(path, region)
    if listing.problems:
        raise CampaignerError("; ".join(listing.problems))
    dialect = session.get_bind().dialect.name
    named = or_(
        customers.c.external_id.in_(json_values(sorted(listing.ids), dialect)),
        customers.c.phone.in_(json_values(sorted(listing.phones), dialect)),
    )
    return _found(session, [*eligible(_ANYONE), named])


def _found(session: Session, conditions: list[ColumnElement[bool]]) -> list[Candidate]:
    rows = session.execute(select(customers.c.id, customers.c.external_id).where(*conditions))
    return [Candidate(*row) for row in rows]


def draw(
    session: Session,
    name: str,
    source: str,
    candidates: list[Candidate],
    winners: int,
    *,
    seed: str | None,
    by: str,
    now: datetime,
) -> Draw:
    """Draw and store `winners` among `candidates`; a name already drawn is refused."""
    if session.scalar(select(Draw.id).where(Draw.name == name)) is not None:
        raise CampaignerError(f"draw {name!r} exists already: a draw is never re-drawn")
    if not 1 <= winners <= MAX_WINNERS:
        raise CampaignerError(f"--winners must be between 1 and {MAX_WINNERS}")
    if len(candidates) < winners:
        raise CampaignerError(
            f"only {len(candidates)} eligible customer(s) in {source}, fewer than {winners}"
        )
    seed = seed if seed is not None else secrets.token_hex(8)
    by_external = {candidate.external_id: candidate.id for candidate in candidates}
    ids = list(by_external)
    found = Draw(
        name=name,
        source=source,
        seed=seed,
        candidates=len(ids),
        candidates_sha256=candidate_hash(ids),
        drawn_by=by,
        drawn_at=now,
    )
    session.add(found)
    session.flush()
    for place, external_id in enumerate(pick(seed, ids, winners), start=1):
        session.add(
            DrawWinner(
                draw_id=found.id,
                place=place,
                customer_id=by_external[external_id],
                external_id=external_id,
            )
        )
    try:
        session.flush()
    except IntegrityError:
        raise CampaignerError(f"draw {name!r} exists already: a draw is never re-drawn") from None
    return found


def load_draw(session: Session, name: str) -> Draw:
    found = session.scalars(
        select(Draw).where(Draw.name == name).options(selectinload(Draw.winners))
    ).first()
    if found is None:
        known = ", ".join(session.scalars(select(Draw.name).order_by(Draw.name))) or "none"
        raise CampaignerError(f"no draw named {name!r} (draws: {known})")
    return found


def proof(found: Draw, names: dict[int, str]) -> list[str]:
    """What `draw show` prints: enough for anyone to re-run the draw."""
    lines = [
        f"draw {found.name}",
        f"  drawn: {found.drawn_at:%Y-%m-%d %H:%M:%S} UTC by {found.drawn_by or 'unknown'}",
        f"  from: {found.source}",
        f"  candidates: {found.candidates}",
        f"  SHA-256 of their sorted external ids (one per line): {found.candidates_sha256}",
        f"  seed: {found.seed}",
        "  winners:",
    ]
    for winner in found.winners:
        name = names.get(winner.customer_id, "")
        lines.append(f"    {winner.place}. {winner.external_id}" + (f" ({name})" if name else ""))
    lines.append(
        "  check: sort the candidates' external ids, join them with newlines: their SHA-256 "
        "is the one above; rank each id by SHA-256 of '<seed>:<id>' (hex), lowest first."
    )
    return lines


def winner_names(session: Session, found: Draw) -> dict[int, str]:
    ids = [winner.customer_id for winner in found.winners]
    rows = session.execute(select(Customer.id, Customer.first_name).where(Customer.id.in_(ids)))
    return {customer_id: first_name for customer_id, first_name in rows}
