"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class CampaignerError(Exception):
    """Base for errors caused by input, configuration or environment, not by a bug."""


class ConfigError(CampaignerError):
    """The configuration file or environment is invalid."""


class SchemaOutdated(CampaignerError):
    """The database schema is older than this version of Campaigner."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An error as one short line, for logs, health and status.

    A database error's own message, without the statement and parameters SQLAlchemy appends:
    a rule's planning query can be hundreds of kilobytes long.
    """
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0].strip()}" if lines else type(cause).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
