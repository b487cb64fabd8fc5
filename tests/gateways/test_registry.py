"""A third-party gateway is found through its entry point, like the built-ins."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaigner.config import GatewaySettings, Settings
from campaigner.gateways import available_gateways, create_gateway
from campaigner.gateways.base import OutgoingMessage, SendResult
from campaigner.gateways.kannel import KannelGateway

PLUGIN = """
from campaigner.gateways.base import Gateway, SendResult


class PigeonGateway(Gateway):
    name = "pigeon"
    max_batch = 3

    def send(self, batch):
        return [SendResult.accepted(m.id, f"coo-{m.id}") for m in batch]
"""


@pytest.fixture
def plugin_on_path(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "pigeon_sms.py").write_text(PLUGIN, encoding="utf-8")
    info = tmp_path / "pigeon_sms-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pigeon-sms\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[campaigner.gateways]\npigeon = pigeon_sms:PigeonGateway\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("pigeon_sms", None)


def test_an_installed_plugin_is_listed_and_created_from_config(plugin_on_path: None) -> None:
    assert available_gateways()["pigeon"] == "pigeon_sms:PigeonGateway"
    settings = Settings.model_validate({"gateway": {"name": "pigeon", "sender": "coop"}})
    gateway = create_gateway(settings.gateway, webhook_url="http://h/webhooks/pigeon")
    assert type(gateway).__name__ == "PigeonGateway" and gateway.max_batch == 3
    results = gateway.send([OutgoingMessage(5, "+14155550100", "hi")])
    assert results == [SendResult.accepted(5, "coo-5")]


def test_builtins_are_registered() -> None:
    names = available_gateways()
    for name in ("console", "file", "kannel", "smsir", "kavenegar", "twilio"):
        assert name in names
    gateway = create_gateway(GatewaySettings(name="kannel"), webhook_token="t0ken-value")
    assert isinstance(gateway, KannelGateway) and gateway.webhook_token == "t0ken-value"
    gateway.close()
