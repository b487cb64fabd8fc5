"""A starting text for a new rule of each trigger kind (the console's "new rule").

Each names the settings its kind cannot do without, with a plausible value, so a new rule
file passes `rules check` as soon as it is created (disabled) and the marketer edits
values instead of guessing names. Every kind in `rules.models.TRIGGERS` has one.
"""

from __future__ import annotations

from datetime import date, timedelta

from campaigner.errors import CampaignerError
from campaigner.rules.models import TRIGGERS

_SETTINGS = {
    "post_purchase": 'delay = "2h"\n',
    "birthday": 'calendar = "customer"\nsend_at = "10:00"\n',
    "win_back": "inactive_days = 90\n",
    "referral_request": 'after_orders = 3\ndelay = "3d"\n',
    "nps_survey": 'delay = "7d"\n',
    "segment_change": 'from = ["loyal", "champions"]\nto = ["at_risk"]\n',
    "occasion": 'date = "jalali:01-01"\nsend_at = "10:00"\n',
    "personal_date": 'date = "first_order"\nyears = [1]\n',
    "cross_sell": (
        'after = "7d"\n'
        'bought = { categories = ["teaware"] }     # products (id or SKU) and/or categories\n'
        'suggest = { categories = ["tea"] }\n'
    ),
    "replenish": 'bought = { products = ["TEA-57"] }\ndays = 30                  # or "auto"\n',
    "draw_winner": 'draw = "prize"\n',
}


def starter(trigger: str, name: str, today: date) -> str:
    """The new rule `name` of kind `trigger`, disabled; an announcement is dated a week
    after `today` and not approved."""
    if trigger not in TRIGGERS:
        raise CampaignerError(
            f"unknown trigger {trigger!r} (expected one of: {', '.join(TRIGGERS)})"
        )
    if trigger == "announcement":
        settings = f'at = "{today + timedelta(days=7):%Y-%m-%d}T10:00"\napproved = false\n'
    else:
        settings = _SETTINGS[trigger]
    return (
        f'trigger = "{trigger}"\ntemplate = "{name}.j2"\nenabled = false\n{settings}'
        '# See README "Rule files" for this trigger\'s other settings.\n'
    )
