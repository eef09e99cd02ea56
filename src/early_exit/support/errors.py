"""Errors that name what is wrong with the input, so the workflow can print them plainly."""


class EarlyExitError(Exception):
    """Base class: a problem the user can fix (bad config, missing or corrupt data)."""


class ConfigError(EarlyExitError):
    """The configuration is invalid; the message names the offending key."""


class DataError(EarlyExitError):
    """A data file is missing or cannot be parsed; the message names the file (and line)."""
