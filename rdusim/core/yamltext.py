"""One number rewritten in a YAML file's text, its comments and layout kept: what every fit's ``--write``
does to the config file that holds its constant."""
from __future__ import annotations

import re

from rdusim.core.errors import ConfigError

NUMBER = r"[0-9.eE+-]+"


def replace_number(text: str, prefix: str, value: str, where: str) -> str:
    """``text`` with the number that follows the regular expression ``prefix`` replaced by ``value`` (already
    formatted). Exactly one such number must be there: none or several raise :class:`ConfigError` naming
    ``where``, so that a renamed or repeated key cannot leave a fitted value unwritten."""
    new, n = re.subn(f"({prefix}){NUMBER}", lambda m: m[1] + value, text)
    if n != 1:
        raise ConfigError(where, f"{n} matches of {prefix!r}", "exactly one number to replace")
    return new
