"""`campaigner init`: a ready-to-edit project directory with samples and a database."""

from __future__ import annotations

import shutil
from pathlib import Path

from campaigner.config import load_settings
from campaigner.db import create_engine_for, upgrade

SAMPLES = Path(__file__).parent / "samples"

DEMO_OVERRIDES = {
    # The demo must show messages at any hour, so its window is the whole day.
    'window = "09:00-20:00"': (
        'window = "00:00-23:59"  # demo only: all day; a real shop keeps 09:00-20:00'
    ),
    "max_per_day = 1 ": "max_per_day = 3 ",
    'name = "My Shop"': 'name = "Demo Shop"',
}


def create_project(directory: Path, *, demo: bool = False, force: bool = False) -> list[Path]:
    """Write config.toml, rules/ and templates/messages/, then create the database.

    Returns the files written. Files that exist are left alone unless `force`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    config = directory / "config.toml"
    if force or not config.exists():
        text = (SAMPLES / "config.example.toml").read_text(encoding="utf-8")
        if demo:
            for old, new in DEMO_OVERRIDES.items():
                text = text.replace(old, new)
        config.write_text(text, encoding="utf-8")
        written.append(config)
    for sub in ("rules", "templates/messages"):
        for source in sorted((SAMPLES / sub).iterdir()):
            if source.suffix not in (".toml", ".j2"):
                continue
            target = directory / sub / source.name
            if force or not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                written.append(target)
    settings = load_settings(config)
    engine = create_engine_for(settings.database.url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return written
