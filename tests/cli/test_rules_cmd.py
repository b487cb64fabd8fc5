from pathlib import Path

from click.testing import CliRunner, Result
from product_shop import TEA, ProductShop, day
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.config import Settings
from campaigner.project import SAMPLES


def check_samples(tmp_path: Path) -> Result:
    """`rules check` of the sample rules and templates, in a project with no database."""
    config = tmp_path / "config.toml"
    templates = SAMPLES / "templates" / "messages"
    config.write_text(f'[paths]\ntemplates = "{templates}"\n', encoding="utf-8")
    return CliRunner().invoke(
        cli, ["--config", str(config), "rules", "check", str(SAMPLES / "rules")]
    )


def test_rules_check_samples_one_line_per_rule(tmp_path: Path) -> None:
    result = check_samples(tmp_path)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("ok")]
    assert len(lines) == 7
    assert any("thank_you: post_purchase, 2h after a paid order" in line for line in lines)
    [nowruz] = [line for line in lines if line.startswith("ok  nowruz")]
    assert "occasion, jalali:01-01 at 10:00, next " in nowruz and "/01/01)" in nowruz
    assert nowruz.endswith("[disabled]")
    assert any(line.startswith("ok  nps_survey") and "[disabled]" in line for line in lines)


def test_rules_check_lists_every_problem_and_fails(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.toml").write_text('trigger = "birthday"\ntemplate = "nope"\n', encoding="utf-8")
    (rules / "b.toml").write_text('trigger = "post_purchase"\ntemplate = "x"\n', encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "check", str(rules)])
    assert result.exit_code == 1
    assert f"{rules}/a.toml: rule 'a': template: template 'nope' not found" in result.stdout
    assert f"{rules}/b.toml: rule 'b': delay: required" in result.stdout
    assert "2 problem(s) found" in result.stderr


def test_rules_list_shows_todays_counts(tmp_path: Path) -> None:
    runner = CliRunner()
    project = tmp_path / "shop"
    assert runner.invoke(cli, ["init", str(project), "--demo"]).exit_code == 0
    result = runner.invoke(cli, ["--config", str(project / "config.toml"), "rules", "list"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["RULE", "TRIGGER", "ENABLED", "TEMPLATE", "TODAY"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert set(by_name) == {
        "birthday",
        "nowruz",
        "nps_survey",
        "referral_request",
        "thank_you",
        "win_back",
        "yalda",
    }
    assert by_name["nowruz"][1:3] == ["occasion", "no"]
    assert by_name["nps_survey"][2] == "no"
    assert by_name["thank_you"][1:3] == ["post_purchase", "yes"]
    assert all(cells[4].isdigit() for cells in by_name.values())
    # The demo shop is laid out so that every sample rule has someone due today.
    assert int(by_name["birthday"][4]) > 0


def hostile_query_project(tmp_path: Path, db_url: str) -> tuple[Path, Path]:
    """A rule the files allow but a database refuses: SQLite parses 2,000 tag tests into an
    expression over 1,000 deep, PostgreSQL takes no text with a NUL character. Beside it, an
    honest rule, listed after it."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "thank_you.toml").write_text(
        'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\n', encoding="utf-8"
    )
    (rules / "odd.toml").write_text(
        'trigger = "birthday"\ntemplate = "thank_you.j2"\n'
        f"[audience]\ntags_all = {[f't{n}' for n in range(1000)]}\n"
        f"tags_none = {[f'n{n}' for n in range(1000)]}\n"
        'where = [{ field = "city", op = "!=", value = "a\\u0000b" }]\n',
        encoding="utf-8",
    )
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "thank_you.j2").write_text("Hi {{ first_name }}", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[paths]\nrules = "{rules}"\ntemplates = "{templates}"\n',
        encoding="utf-8",
    )
    return config, rules


def test_rules_check_runs_each_planning_query_against_the_database(
    tmp_path: Path, db_url: str
) -> None:
    config, rules = hostile_query_project(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "check"])
    assert result.exit_code == 1, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith(
        f"{rules}/odd.toml: rule 'odd': its planning query fails on the database: "
    )
    assert len(line) < 500
    assert "1 problem(s) found" in result.stderr


def test_rules_list_shows_a_rule_whose_query_fails_as_broken(tmp_path: Path, db_url: str) -> None:
    """The failed query of `odd` aborts a PostgreSQL transaction: `thank_you`, counted after
    it, is still counted."""
    config, _ = hostile_query_project(tmp_path, db_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "list"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    by_name = {row.split()[0]: row.split() for row in result.stdout.splitlines()[1:]}
    assert by_name["odd"][4] == "broken", result.output
    assert by_name["thank_you"][4] == "0"
    [problem] = result.stderr.splitlines()
    assert problem.startswith("broken: rule 'odd': its query fails: ")
    assert len(problem) < 400


def test_rules_list_names_a_missing_table_per_rule(tmp_path: Path) -> None:
    """A damaged database (the orders table gone): the rules that read orders are broken,
    a birthday rule, which does not, is counted."""
    runner = CliRunner()
    project = tmp_path / "shop"
    assert runner.invoke(cli, ["init", str(project), "--demo"]).exit_code == 0
    engine = create_engine(f"sqlite:///{project / 'campaigner.db'}")
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE orders RENAME TO orders_gone"))
    engine.dispose()
    result = runner.invoke(cli, ["--config", str(project / "config.toml"), "rules", "list"])
    assert result.exit_code == 0, result.output
    by_name = {row.split()[0]: row.split() for row in result.stdout.splitlines()[1:]}
    assert by_name["thank_you"][4] == "broken"
    assert int(by_name["birthday"][4]) > 0
    assert "broken: rule 'thank_you': its query fails: OperationalError: no such table: orders" in (
        result.stderr.splitlines()
    )


def test_rules_check_without_a_database_checks_the_files_and_says_so(tmp_path: Path) -> None:
    result = check_samples(tmp_path)
    assert result.exit_code == 0, result.output
    assert f"note: planning queries not checked: no database at {tmp_path}/campaigner.db" in (
        result.stderr
    )
    assert not (tmp_path / "campaigner.db").exists()


def test_rules_check_notes_products_the_shop_never_sold(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """A misspelt SKU or category, and a `days = "auto"` with nothing to learn from, are
    named (the rule still loads: a new product has no orders yet)."""
    shop = ProductShop(sessions, settings)
    shop.customer("ali")
    shop.order("ali", day(0), TEA)
    shop.order("ali", day(20), TEA)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "beans.toml").write_text(
        'trigger = "cross_sell"\ntemplate = "x.j2"\nafter = "7d"\n'
        'bought = { products = ["TEA-75", "57"] }\nsuggest = { categories = ["cofee"] }\n'
        "[audience]\nbought_none = { categories = ['Drinks, hot'] }\n",
        encoding="utf-8",
    )
    (rules / "refill.toml").write_text(
        'trigger = "replenish"\ntemplate = "x.j2"\ndays = "auto"\n'
        'bought = { products = ["TEA-57"] }\n',
        encoding="utf-8",
    )
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "x.j2").write_text("Hi {{ first_name }}", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[paths]\nrules = "{rules}"\ntemplates = "{templates}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "check"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note")]
    assert notes == [
        "note  beans: bought: no order line has TEA-75 yet (a typo, or order items not "
        "imported: see `orders import --items`)",
        "note  beans: suggest: no order line has category 'cofee' yet (a typo, or order "
        "items not imported: see `orders import --items`)",
        'note  refill: days = "auto" is 20 days today (the median reorder interval)',
    ]
