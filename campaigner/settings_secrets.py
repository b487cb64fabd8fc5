"""The configuration's secrets, registered for masking as a command starts: kept apart from
campaigner.logs, which the gateways' base class imports, because finding which options a
gateway declares secret means loading the gateways."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

from campaigner.config import GatewaySettings, Settings
from campaigner.gateways.registry import declared_secret_options
from campaigner.masking import register_secret


def register_settings_secrets(settings: Settings) -> None:
    """Every secret in the configuration, and the database passwords, are masked from now on.

    A gateway's secret is also masked as base64 of `username:secret` (HTTP Basic).
    """

    def walk(value: object, username: str | None = None) -> None:
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value(), username=username)
        elif isinstance(value, GatewaySettings):
            user = value.username or value.account_sid or None
            for name in type(value).model_fields:
                walk(getattr(value, name), user)
            for secret in value.secret_options(declared_secret_options(value.name)):
                register_secret(secret, username=user)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(settings)
    urls = [settings.database.url, *(source.url.get_secret_value() for source in settings.sources)]
    for url in urls:
        parsed = make_url(url)
        if parsed.password:
            register_secret(str(parsed.password), username=parsed.username)
