"""`campaigner customers import` as an operator meets it: a summary that stays readable
whatever the number of bad rows."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from campaigner.cli import cli


def config_for(tmp_path: Path, db_url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return config


def test_the_summary_counts_rejections_by_kind_with_their_first_lines(
    tmp_path: Path, db_url: str
) -> None:
    """Regression: one summary line per distinct bad value (the value is in the reason), so
    a file of bad phones printed a line per row. The reject file keeps each row's reason."""
    path = tmp_path / "customers.csv"
    lines = ["id,first_name,phone"] + [f"p{i},N,09{i:05d}" for i in range(2000)]
    path.write_text("\n".join(lines) + "\nok,N,09121234567\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(config_for(tmp_path, db_url)), "customers", "import", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{path}: 2001 rows: 1 new, 0 updated, 0 unchanged, 2000 rejected "
        f"(see {path.with_suffix('.rejects.csv')})",
        "     2000 × invalid phone number … (lines 2, 3, 4, …)",
    ]
    rejects = path.with_suffix(".rejects.csv").read_text(encoding="utf-8").splitlines()
    assert len(rejects) == 1 + 2000
    assert "'0901999'" in rejects[-1]
