"""A project: the directory holding config.toml, found like git finds its repository, and
`campaigner init`, which creates one (config, sample rules and templates, database)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from campaigner.config import ENV_PREFIX, load_settings
from campaigner.db import create_engine_for, upgrade
from campaigner.db.errors import describe_database_error
from campaigner.errors import ConfigError, DatabaseError

CONFIG_NAME = "config.toml"

SAMPLES = Path(__file__).parent / "samples"

DEMO_OVERRIDES = {
    # The demo must show messages at any hour, so its window is the whole day.
    'window = "09:00-20:00"': (
        'window = "00:00-23:59"  # demo only: all day; a real shop keeps 09:00-20:00'
    ),
    "max_per_day = 1 ": "max_per_day = 3 ",
    'name = "My Shop"': 'name = "Demo Shop"',
}


class NoProject(ConfigError):
    """A command that needs a project was run outside any."""


def find_config(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """`--config`, else $CAMPAIGNER_CONFIG, else config.toml in `start` (the working
    directory) or the nearest parent that has one.

    Never a guess: outside a project this fails rather than fall back to defaults, which
    would quietly create an empty database wherever the command happened to run.
    """
    if explicit:
        return Path(explicit)
    variable = os.environ.get(ENV_PREFIX + "CONFIG")
    if variable:
        return Path(variable)
    here = (start or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise NoProject(
        f"no {CONFIG_NAME} in {here} or any parent directory: create a project with "
        f"`campaigner init DIR`, or name its config with --config FILE"
    )


def create_project(directory: Path, *, demo: bool = False, force: bool = False) -> list[Path]:
    """Write config.toml, rules/ and templates/messages/, then create the database.

    Returns the files written. Files that exist are left alone unless `force`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    config = directory / CONFIG_NAME
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
    except DBAPIError as exc:
        raise DatabaseError(describe_database_error(exc, settings.database.url)) from exc
    finally:
        engine.dispose()
    return written
