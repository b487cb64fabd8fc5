"""Who may do what. Each role may do everything the roles before it may."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    viewer = 1  # reads everything
    marketer = 2  # edits rules and customers' opt-out and consent
    approver = 3  # ... and approves announcements
    admin = 4  # ... and reads the audit log

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            known = ", ".join(role.name for role in cls)
            raise ValueError(f"unknown role {name!r} (roles: {known})") from None
