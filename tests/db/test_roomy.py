from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.roomy import roomy


def setting(session: Session) -> str:
    if session.get_bind().dialect.name == "sqlite":
        return str(session.scalar(text("PRAGMA cache_size")))
    return str(session.scalar(text("SHOW work_mem")))


def test_the_room_is_given_for_the_work_and_back_after_it(sessions: sessionmaker[Session]) -> None:
    sqlite = sessions.kw["bind"].dialect.name == "sqlite"
    with sessions.begin() as session:
        before = setting(session)
        with roomy(session, sqlite_cache_kib=65536, work_mem_mb=96):
            assert setting(session) == ("-65536" if sqlite else "96MB")
        if sqlite:  # SQLite's is the connection's: put back at once
            assert setting(session) == before
    with sessions.begin() as session:  # PostgreSQL's SET LOCAL ended with the transaction
        assert setting(session) == before


def test_no_room_when_not_wanted(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        before = setting(session)
        with roomy(session, sqlite_cache_kib=65536, work_mem_mb=96, wanted=False):
            assert setting(session) == before
