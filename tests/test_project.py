"""Finding the project like git finds its repository, and what `init` creates."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigner.config import load_settings
from campaigner.project import NoProject, find_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shop" / "rules" / "old").mkdir(parents=True)
    (tmp_path / "shop" / "config.toml").write_text(
        '[shop]\nname = "Gol"\n[gateway]\nname = "file"\npath = "sent.jsonl"\n', encoding="utf-8"
    )
    return tmp_path / "shop"


@pytest.fixture(autouse=True)
def _no_config_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMPAIGNER_CONFIG", raising=False)


def test_the_config_is_found_here_or_in_the_nearest_parent(project: Path) -> None:
    assert find_config(start=project) == project / "config.toml"
    assert find_config(start=project / "rules" / "old") == project / "config.toml"
    inner = project / "rules" / "old" / "config.toml"
    inner.write_text("", encoding="utf-8")
    assert find_config(start=project / "rules" / "old") == inner


def test_the_flag_wins_over_the_variable_which_wins_over_the_search(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNER_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert find_config(start=project) == tmp_path / "elsewhere.toml"
    assert find_config("mine.toml", start=project) == Path("mine.toml")


def test_paths_found_from_a_subdirectory_are_relative_to_the_config_file(project: Path) -> None:
    settings = load_settings(find_config(start=project / "rules" / "old"))
    assert settings.shop.name == "Gol"
    assert settings.paths.rules == project / "rules"
    assert settings.paths.templates == project / "templates" / "messages"
    assert settings.database.url == f"sqlite:///{project.resolve()}/campaigner.db"
    assert settings.gateway.path == project / "sent.jsonl"


def test_outside_any_project_says_how_to_get_one(tmp_path: Path) -> None:
    assert not any((p / "config.toml").exists() for p in tmp_path.parents), "a stray config"
    with pytest.raises(NoProject) as info:
        find_config(start=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "campaigner init" in message and "--config" in message
