"""Announcements and prize draws: one-off messages to a chosen audience, approved first."""
