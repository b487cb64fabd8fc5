from pathlib import Path

import pytest

import campaigner
from campaigner.config import SendingSettings, load_settings, mask_url, masked
from campaigner.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, '[shop]\nname = "Gol Shop"\n[sending]\nwindow = "08:00-21:00"\n')
    settings = load_settings(path)
    assert settings.shop.name == "Gol Shop"
    assert str(settings.sending.send_window) == "08:00-21:00"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[gateway]\nname = "file"\napi_key = "from-file"\n[shop]\nname = "A"\n')
    monkeypatch.setenv("CAMPAIGNER_GATEWAY__API_KEY", "from-env")
    monkeypatch.setenv("CAMPAIGNER_SHOP__NAME", "B")
    settings = load_settings(path)
    assert settings.gateway.api_key is not None
    assert settings.gateway.api_key.get_secret_value() == "from-env"
    assert settings.gateway.name == "file"  # untouched keys still come from the file
    assert settings.shop.name == "B"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateway]\napi_kye = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "gateway.api_kye" in str(info.value)
    assert "unknown key" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gatway"):
        load_settings(write(tmp_path, "[gatway]\nname = 'x'\n"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[sending]\nwindow = "9-20"\n', "sending.window"),
        ("[sending]\nmax_per_day = -1\n", "sending.max_per_day"),
        ('[customers]\ntimezone = "Mars/Olympus"\n', "customers.timezone"),
        ('[server]\nport = "http"\n', "server.port"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(write(tmp_path, text))


def test_bad_environment_value_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNER_SENDING__MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match=r"sending\.max_attempts") as info:
        load_settings(write(tmp_path, ""))
    assert str(info.value).startswith("environment variable CAMPAIGNER_SENDING__MAX_ATTEMPTS: ")
    assert "config.toml" not in str(info.value)


def test_a_bad_value_is_blamed_on_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's value when the environment leaves it alone, the variable's when it sets it,
    including a variable that sets a whole section."""
    path = write(tmp_path, "[sending]\nmax_attempts = 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: sending.max_attempts: ")
    monkeypatch.setenv("CAMPAIGNER_SENDING__MAX_ATTEMPTS", "-1")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith("environment variable CAMPAIGNER_SENDING__MAX_ATTEMPTS: ")
    monkeypatch.delenv("CAMPAIGNER_SENDING__MAX_ATTEMPTS")
    monkeypatch.setenv("campaigner_server", '{"port": "http"}')
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, ""))
    assert str(info.value).startswith("environment variable CAMPAIGNER_SERVER: server.port: ")


def test_a_table_given_as_json_in_one_variable_is_blamed_only_for_the_keys_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a variable holding a whole table as JSON was blamed for every bad key of
    that table, even the file's own typos, and the operator was sent to the wrong place."""
    path = write(
        tmp_path,
        '[server]\nportt = 8025\n[gateways.a]\nname = "file"\nrate = 5\n',
    )
    monkeypatch.setenv("CAMPAIGNER_SERVER", '{"host": "0.0.0.0", "Port": "http"}')
    monkeypatch.setenv("CAMPAIGNER_GATEWAYS", '{"b": {"name": "file", "sendr": "x"}}')
    monkeypatch.setenv("CAMPAIGNER_SOURCES", '[{"name": "shop"}]')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert sorted(str(info.value).split("; ")) == [
        f"{path}: gateways.a.rate: unknown key",
        f"{path}: server.portt: unknown key",
        "environment variable CAMPAIGNER_GATEWAYS: gateways.b.sendr: unknown key",
        "environment variable CAMPAIGNER_SERVER: server.port: Input should be a valid integer, "
        "unable to parse string as an integer",
        # A list from the environment replaces the file's whole, a missing key included.
        "environment variable CAMPAIGNER_SOURCES: sources.0.url: Field required",
    ]


def test_toml_syntax_error_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[shop\nname=1")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_settings(path)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            '[gateway]\nname = "file"\npath = "out/sent.jsonl"\n'
            '[gateways.backup]\nname = "file"\npath = "/var/sms/backup.jsonl"\n',
        )
    )
    assert settings.paths.rules == tmp_path / "rules"
    assert settings.database.url == f"sqlite:///{tmp_path.resolve()}/campaigner.db"
    assert settings.gateway.path == tmp_path / "out" / "sent.jsonl"
    assert settings.gateways["backup"].path == Path("/var/sms/backup.jsonl")


def test_masked_hides_every_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        '[database]\nurl = "postgresql+psycopg://app:pg-s3cret@db/shop"\n'
        '[gateway]\npassword = "kannel-s3cret"\nauth_token = "twilio-s3cret"\n'
        '[server]\nwebhook_token = "hook-s3cret"\napi_tokens = ["api-s3cret"]\n'
        '[server.woocommerce_webhook_secrets]\n"order.deleted" = "deletion-s3cret"\n'
        '[gateways.backup]\nname = "kavenegar"\napi_key = "backup-s3cret"\n',
    )
    monkeypatch.setenv("CAMPAIGNER_GATEWAY__API_KEY", "env-s3cret")
    text = repr(masked(load_settings(path)))
    assert "s3cret" not in text
    assert "********" in text
    assert "kavenegar" in text
    assert "order.deleted" in text


def test_mask_url() -> None:
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:********@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_quiet_dates_are_checked_at_load() -> None:
    ok = SendingSettings(quiet_dates=["2026-04-01", "jalali:01-13", "jalali:12-30"])
    assert ok.quiet_dates[1] == "jalali:01-13"
    for bad in ("jalali:13-01", "jalali:07-31", "April 1st"):
        with pytest.raises(ValueError, match="quiet_dates"):
            SendingSettings(quiet_dates=[bad])


def test_a_segment_map_that_misses_a_cell_is_named_with_the_cell(tmp_path: Path) -> None:
    text = '[segments.map]\nchampions = ["[1-5][1-5]"]\nloyal = ["55"]\n'
    with pytest.raises(ConfigError, match=r"segments\.map") as info:
        load_settings(write(tmp_path, text))
    assert "cell 55 (R5 F5) is in both champions and loyal" in str(info.value)
    whole = '[segments.map]\nchampions = ["[4-5][1-5]"]\nlost = ["[1-3][1-5]"]\n'
    settings = load_settings(write(tmp_path, whole))
    assert settings.segments.segment_map.segment(3, 5) == "lost"


def test_the_segments_interval_is_read_under_its_old_name_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write(tmp_path, "[segments]\ndaily_interval = 3600\n"))
    assert settings.segments.daily_interval == 3600
    assert not caplog.records
    settings = load_settings(write(tmp_path, "[segments]\nfull_interval = 7200\n"))
    assert settings.segments.daily_interval == 7200
    assert "full_interval is deprecated: rename it daily_interval" in caplog.text
    both = "[segments]\nfull_interval = 7200\ndaily_interval = 3600\n"
    with pytest.raises(ConfigError, match="daily_interval` only"):
        load_settings(write(tmp_path, both))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[gateway]\nname = "kannel"\npassword = "pw"\n', "gateway.password"),
        ('[gateway]\nname = "kavenegar"\napi_key = "k1"\n', "gateway.api_key"),
        ('[gateway]\nname = "twilio"\nauth_token = "abc"\n', "gateway.auth_token"),
        ('[gateway]\nwebhook_token = "t"\n', "gateway.webhook_token"),
        ('[gateways.backup]\nname = "smsir"\napi_key = "x"\n', "gateways.backup.api_key"),
        ('[server]\nwebhook_token = "tok"\n', "server.webhook_token"),
        ('[server]\napi_tokens = ["a-long-token", "ing"]\n', "server.api_tokens.1"),
        ('[server]\nwoocommerce_webhook_secret = "wc"\n', "server.woocommerce_webhook_secret"),
        ('[server]\nshopify_webhook_secret = "s"\n', "server.shopify_webhook_secret"),
        (
            '[server.woocommerce_webhook_secrets]\n"order.deleted" = "del"\n',
            "server.woocommerce_webhook_secrets.order.deleted",
        ),
        ('[database]\nurl = "postgresql+psycopg://app:pw@db/shop"\n', "database.url"),
        (
            '[[sources]]\nname = "shop"\nurl = "mysql+pymysql://r:abc@db/wp"\n'
            'customers = { table = "users" }\n',
            "sources.0.url",
        ),
    ],
)
def test_a_secret_too_short_to_mask_is_refused(tmp_path: Path, text: str, key: str) -> None:
    """Masking skips values under 4 characters (they would mask ordinary words), so such a
    secret would reach the logs in clear: it is refused at load, naming the field."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert "too short to be kept out of logs" in message and "at least 4 characters" in message
    assert "\n" not in message


def test_a_short_secret_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNER_SERVER__WEBHOOK_TOKEN", "abc")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, ""))
    assert str(info.value) == (
        "environment variable CAMPAIGNER_SERVER__WEBHOOK_TOKEN: server.webhook_token: too "
        "short to be kept out of logs (3 characters): a secret needs at least 4 characters"
    )


def test_secrets_of_four_characters_or_none_at_all_are_fine(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            '[gateway]\nname = "kannel"\npassword = "abcd"\napi_key = ""\n'
            '[database]\nurl = "sqlite:///x.db"\n[server]\nwebhook_token = "w-1234"\n',
        )
    )
    assert settings.gateway.password is not None
    assert settings.gateway.password.get_secret_value() == "abcd"


@pytest.mark.parametrize(
    "text",
    [
        '[server]\nwoocommerce_webhook_secret = "one-for-all"\n'
        '[server.woocommerce_webhook_secrets]\n"order.deleted" = "one-for-all"\n',
        '[server.woocommerce_webhook_secrets]\n"order.deleted" = "one-for-all"\n'
        '"customer.updated" = "one-for-all"\n',
    ],
)
def test_order_deleted_secret_must_be_its_own(tmp_path: Path, text: str) -> None:
    """A deletion's body is only the id, whatever was deleted: order.deleted's secret shared
    with another webhook lets that webhook's signed `{"id": N}` cancel order N."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: server: ")
    assert 'woocommerce_webhook_secrets."order.deleted" is also' in message
    assert "a Secret of its own" in message
    assert "one-for-all" not in message


def test_a_per_topic_secret_of_a_topic_campaigner_does_not_take_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[server.woocommerce_webhook_secrets]\n"order.delted" = "abcdef"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "server.woocommerce_webhook_secrets.order.delted" in str(info.value)
    assert "'order.deleted'" in str(info.value)  # the known topics are listed
    assert "abcdef" not in str(info.value)


def test_per_topic_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CAMPAIGNER_SERVER__WOOCOMMERCE_WEBHOOK_SECRETS", '{"order.deleted": "deletion-secret"}'
    )
    settings = load_settings(write(tmp_path, '[server]\nwoocommerce_webhook_secret = "shared"\n'))
    secrets = settings.server.woocommerce_webhook_secrets
    assert {t: s.get_secret_value() for t, s in secrets.items()} == {
        "order.deleted": "deletion-secret"
    }


@pytest.mark.parametrize(
    ("environment", "file", "blamed"),
    [
        (
            {
                "CAMPAIGNER_SERVER__WOOCOMMERCE_WEBHOOK_SECRETS": (
                    '{"order.deleted": "one-for-all", "customer.updated": "one-for-all"}'
                )
            },
            "",
            "environment variable CAMPAIGNER_SERVER__WOOCOMMERCE_WEBHOOK_SECRETS: server: ",
        ),
        (
            {"CAMPAIGNER_SERVER__WOOCOMMERCE_WEBHOOK_SECRET": "one-for-all"},
            '[server.woocommerce_webhook_secrets]\n"order.deleted" = "one-for-all"\n',
            "{path} and environment variable CAMPAIGNER_SERVER__WOOCOMMERCE_WEBHOOK_SECRET: "
            "server: ",
        ),
    ],
)
def test_a_shared_deletion_secret_names_where_each_copy_came_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    file: str,
    blamed: str,
) -> None:
    """The check spans two keys, so it is reported on [server] as a whole; an operator who set
    one of them in the environment must be sent there, not to a file that never held it."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    path = write(tmp_path, file)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(blamed.format(path=path))
    assert "a Secret of its own" in message
    assert "one-for-all" not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CAMPAIGNER_SERVER__WOOCOMMERCE_WEBHOOK_SECRETS", '{"order.deleted": "s3cret-value'),
        ("CAMPAIGNER_SERVER__API_TOKENS", "s3cret-value"),
        ("CAMPAIGNER_SERVER", '{"port": 8025'),
    ],
)
def test_json_that_does_not_parse_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("CAMPAIGNER_SERVER__HOST", "0.0.0.0")  # fine: no JSON expected there
    monkeypatch.setenv(variable, value)
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"environment variable {variable}: not valid JSON (")
    assert str(path) not in message
    assert "HOST" not in message
    assert "s3cret" not in message and "EnvSettingsSource" not in message


def test_the_sample_config_that_init_copies_loads() -> None:
    """Regression: the sample (`campaigner init` copies it, config.example.toml links to it)
    named max_failed_logins_per_network twice, which TOML refuses: every new project's
    first command failed with 'Cannot overwrite a value'."""
    sample = Path(campaigner.__file__).parent / "samples" / "config.example.toml"
    settings = load_settings(sample)
    assert settings.console.max_failed_logins_per_network == 100


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgresql_url_without_a_driver_names_the_installed_one(
    tmp_path: Path, scheme: str
) -> None:
    """`postgres://` (as hosting services write it) was a traceback from SQLAlchemy ("Can't
    load plugin: sqlalchemy.dialects:postgres"), and `postgresql://` asked for psycopg2, which
    Campaigner does not install."""
    path = write(tmp_path, f'[database]\nurl = "{scheme}://app:s3cret-pw@db:5433/shop"\n')
    url = load_settings(path).database.url
    assert url == "postgresql+psycopg://app:s3cret-pw@db:5433/shop"


def test_an_unknown_database_scheme_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "mongodb://app:s3cret-pw@db/shop"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: database.url: ")
    assert "'mongodb' is no database Campaigner knows" in message
    assert "s3cret-pw" not in message
