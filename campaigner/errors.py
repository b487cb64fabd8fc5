"""Errors a user can act on: the CLI prints them as one line, without a traceback."""

ONE_LINE_LIMIT = 300


def one_line(error: BaseException) -> str:
    """The first line of an error's text (drivers add hints and URLs below it), bounded."""
    text = str(error).strip()
    return text.splitlines()[0][:ONE_LINE_LIMIT] if text else type(error).__name__


class CampaignerError(Exception):
    """Base for errors caused by input, configuration or environment, not by a bug."""


class ConfigError(CampaignerError):
    """The configuration file or environment is invalid."""


class SchemaOutdated(CampaignerError):
    """The database schema is older than this version of Campaigner."""


class SchemaNewer(CampaignerError):
    """The database was migrated by a newer Campaigner than this one."""


class DatabaseError(CampaignerError):
    """The database could not be reached or refused the work; the message names it."""
