"""Announcement and draw_winner rule files: each mistake named with its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigner.rules.loader import load_rules


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            'at = "20 Dey"',
            "at: at must be a local date and time like 2026-12-20T10:00, got '20 Dey'",
        ),
        ('at = "2026-02-30T10:00"', "at: at must be a local date and time like 2026-12-20T10:00"),
        ('at = "2026-12-20T10:00"\nspread = "8d"', "spread: must be at most 7d, got '8d'"),
        ('at = "2026-12-20T10:00"\ntimezone = "Asia/Tehran"', "timezone: Input should be"),
        ('at = "2026-12-20T10:00"\napproved = 1', "approved: Input should be a valid boolean"),
        ("", "at: required"),
        (
            'at = "2026-12-20T10:00"\n[audience]\nlast_order_before = "yesterday"',
            "audience.last_order_before: must be a date like 2026-06-01, got 'yesterday'",
        ),
    ],
)
def test_announcement_mistakes_are_named(tmp_path: Path, body: str, problem: str) -> None:
    (tmp_path / "sale.toml").write_text(
        f'trigger = "announcement"\ntemplate = "sale.j2"\n{body}\n', encoding="utf-8"
    )
    [found] = load_rules(tmp_path).problems
    assert str(found).startswith(f"{tmp_path}/sale.toml: rule 'sale': {problem}")


def test_draw_winner_needs_a_draw_name(tmp_path: Path) -> None:
    (tmp_path / "prize.toml").write_text(
        'trigger = "draw_winner"\ntemplate = "prize.j2"\n', encoding="utf-8"
    )
    [found] = load_rules(tmp_path).problems
    assert str(found) == f"{tmp_path}/prize.toml: rule 'prize': draw: required"


def test_a_good_announcement_loads_with_its_occurrence_key(tmp_path: Path) -> None:
    (tmp_path / "sale.toml").write_text(
        'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2026-12-20 9:05"\n',
        encoding="utf-8",
    )
    loaded = load_rules(tmp_path)
    assert loaded.ok
    assert loaded.rules["sale"].occurrence_key == "2026-12-20T09:05"  # type: ignore[union-attr]
