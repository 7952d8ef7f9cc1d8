"""Errors that the user sees as one clear line, never a traceback."""


class RdusimError(Exception):
    """Base of every error the CLI turns into a one-line message and exit status 2."""


class ConfigError(RdusimError, ValueError):
    """A configuration or input value is missing, malformed or out of range.

    The message names the field, what was given, and what is allowed.
    """

    def __init__(self, field: str, given, allowed: str):
        self.field = field
        self.given = given
        self.allowed = allowed
        super().__init__(f"{field}: got {given!r}; allowed: {allowed}")
