"""Secrets an operator puts in a gateway's free-form `options` are masked like its api_key.

Seen: `options = { api_key = "…" }` for a plug-in gateway went into the log, into the
ledger's `last_error` (the provider echoed the request back) and into `config show`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from conftest import Project
from sqlalchemy import select

from campaigner.cli import cli
from campaigner.config import GatewaySettings, Settings, is_secret_option, masked
from campaigner.db.models import Message
from campaigner.gateways.base import Gateway, OutgoingMessage, SendResult
from campaigner.masking import mask
from campaigner.settings_secrets import register_settings_secrets

API_KEY = "opt-KEY-7f3a9c"  # a key-like name: masked without the gateway saying so
SEED = "routing-seed-55e1"  # a name that says nothing: the gateway declares it secret
OPTIONS = {"api_key": API_KEY, "routing_seed": SEED, "smsc": "irancell"}
log = logging.getLogger(__name__)  # a plug-in gateway logs through its module's logger


class EchoGateway(Gateway):
    """A provider that refuses every message, echoing the request back (as some do)."""

    name: ClassVar[str] = "echo"
    max_batch: ClassVar[int] = 10
    secret_options: ClassVar[frozenset[str]] = frozenset({"routing_seed"})

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        request = "&".join(f"{key}={value}" for key, value in self.settings.options.items())
        log.warning("echo: sending %d with %s", len(batch), request)
        return [SendResult.permanent(m.id, f"400 bad request: {request}", "400") for m in batch]


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("apiKey", True),
        ("X-Auth-Token", True),
        ("hmac_secret", True),
        ("passphrase", True),
        ("signature", True),
        ("smsc", False),
        ("validity", False),
        ("routing_seed", False),
    ],
)
def test_option_keys_that_look_secret(key: str, secret: bool) -> None:
    assert is_secret_option(key) is secret
    assert is_secret_option(key, {key}) is True


def test_secret_options_stay_out_of_logs_and_the_ledger(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    project.gateway = EchoGateway(GatewaySettings(name="echo", options=OPTIONS))  # type: ignore[assignment]
    project.paid_order("Sara")
    runtime = project.runtime()
    try:
        runtime.plan()
        runtime.drain()
    finally:
        runtime.close()
    with project.sessions() as session:
        error = session.scalars(select(Message.last_error)).one()
    assert "smsc=irancell" in error and "smsc=irancell" in caplog.text  # the rest is kept
    for secret in (API_KEY, SEED):
        assert secret not in error
        assert secret not in caplog.text


def test_the_settings_register_secret_options_for_every_command(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"gateways": {"backup": {"name": "kannel", "options": {"auth": {"token": API_KEY}}}}}
    )
    assert mask(f"token={API_KEY}") == f"token={API_KEY}"
    register_settings_secrets(settings)
    assert mask(f"token={API_KEY}") == "token=********"


def test_masked_settings_hide_secret_options_and_declared_ones() -> None:
    settings = Settings.model_validate({"gateway": {"name": "echo", "options": OPTIONS}})
    shown = masked(settings, lambda name: EchoGateway.secret_options if name == "echo" else ())
    assert shown["gateway"]["options"] == {
        "api_key": "********",
        "routing_seed": "********",
        "smsc": "irancell",
    }


def test_config_show_masks_secret_options(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[gateway]\nname = "kannel"\n[gateway.options]\napi_key = "{API_KEY}"\n'
        'smsc = "irancell"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    text = runner.invoke(cli, ["--config", str(config), "config", "show"])
    assert text.exit_code == 0, text.output
    assert API_KEY not in text.output and "irancell" in text.output
    as_json = runner.invoke(cli, ["--config", str(config), "config", "show", "--json"])
    assert json.loads(as_json.output)["gateway"]["options"]["api_key"] == "********"
