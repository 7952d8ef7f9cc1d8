"""Errors that the user sees as one clear line, never a traceback."""


class Described:
    """Stands for a value in an error message: a description (its length, what is wrong), never its content."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


_UNSAFE = set(":$*!#'\"\\`;<>|&{}[]")


def _shown(given):
    """What a message shows of a value: numbers, None and short plain text as they are; text with characters
    of a file's content (``:``, ``$``, quotes, brackets, control characters) or over 100 characters, and other
    containers (a few numbers excepted), only as their type and size. Values come from files as well as from the command line, and an
    error never echoes a file (``--platform /etc/shadow`` shows no line of it)."""
    if isinstance(given, str):
        if len(given) <= 100 and given.isprintable() and not _UNSAFE.intersection(given):
            return given
        return Described(f"<text of {len(given)} characters>")
    if isinstance(given, (list, tuple)) and len(given) <= 8 and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in given):
        return given  # a few numbers: nothing of a file's text
    if isinstance(given, (dict, list, tuple, set)):
        return Described(f"a {type(given).__name__} of {len(given)} items")
    if isinstance(given, bytes):
        return Described(f"<{len(given)} bytes>")
    return given


class RdusimError(Exception):
    """Base of every error the CLI turns into a one-line message and exit status 2."""


class ConfigError(RdusimError, ValueError):
    """A configuration or input value is missing, malformed or out of range.

    The message names the field, what was given, and what is allowed.
    """

    def __init__(self, field: str, given, allowed: str):
        field = str(field).replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever a path holds
        self.field = field
        self.given = given
        self.allowed = allowed
        if type(given).__module__ == "numpy" and hasattr(given, "item") and getattr(given, "ndim", 1) == 0:
            given = given.item()  # show 3 or 1e+19, not np.int64(3)
        shown = repr(_shown(given))
        if len(shown) > 200:
            shown = shown[:200] + "..."
        allowed = str(allowed).replace("\n", " ")
        self.allowed = allowed
        super().__init__(f"{field}: got {shown}; allowed: {allowed}")
