"""Checks at the input boundary: every number finite, in range and of the right kind.

Each check raises one :class:`ConfigError` that names the field, what was given and what is allowed,
so the CLI prints one line and exits with status 2. Bounds are stated in the error: the int64 range
(sizes feed int64 arrays and numba kernels), or a bound that follows from the model or platform,
passed in by the caller. :func:`nearest` suggests the closest known key for a misspelt one, and
:func:`json_safe` turns non-finite floats into ``None`` so that JSON output is always valid JSON.
"""
from __future__ import annotations

import argparse
import difflib
import math
import numbers
import re

from rdusim.core.errors import ConfigError, Described

INT64_MAX = 2**63 - 1
# A number written as text: ASCII decimal only (no full-width digits, no 1_0, no hex, no nan/inf words).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.+\-]{1,64}")


def whole(field: str, value, minimum: int = 1, maximum: int = INT64_MAX, why: str = "") -> int:
    """``value`` as an int in [minimum, maximum]: an int, an integer-valued finite float or a decimal
    string of digits. Booleans, NaN, infinities, fractions and other types are errors."""
    allowed = f"a whole number from {minimum:,} to {maximum:,}" + (f" ({why})" if why else "")
    if isinstance(value, bool):
        raise ConfigError(field, value, allowed)
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isdigit() or not digits.isascii() or len(digits) > 30:
            raise ConfigError(field, value, allowed)
        n = int(text)
    elif isinstance(value, numbers.Integral):
        n = int(value)
    elif isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f) or not f.is_integer():
            raise ConfigError(field, value, allowed)
        n = int(f)
    else:
        raise ConfigError(field, value, allowed)
    if not minimum <= n <= maximum:
        raise ConfigError(field, value, allowed)
    return n


def number(field: str, value, minimum: float | None = None, maximum: float | None = None, *,
           above: bool = False, below: bool = False, what: str = "") -> float:
    """``value`` as a finite float within bounds (``above``/``below``: strict at that bound).

    Accepts ints, floats and numeric strings; NaN, infinities, booleans and anything else are errors.
    """
    parts = ["a finite number"]
    if minimum is not None:
        parts.append(f"{'>' if above else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if below else '<='} {maximum:g}")
    allowed = " ".join(parts[:1]) + (" " + " and ".join(parts[1:]) if len(parts) > 1 else "") + (f" ({what})" if what else "")
    if isinstance(value, bool):
        raise ConfigError(field, value, allowed)
    try:
        if isinstance(value, str):
            f = float(value.strip()) if _DECIMAL.fullmatch(value.strip()) and len(value) <= 400 else None
        else:
            f = float(value) if isinstance(value, numbers.Real) else None
    except (ValueError, OverflowError):
        f = None
    if f is None or not math.isfinite(f):
        raise ConfigError(field, value, allowed)
    if minimum is not None and (f < minimum or (above and f == minimum)):
        raise ConfigError(field, value, allowed)
    if maximum is not None and (f > maximum or (below and f == maximum)):
        raise ConfigError(field, value, allowed)
    return f


def nearest(key: str, known) -> str:
    """' (did you mean X?)' for the closest of ``known`` to a misspelt ``key``, or '' when none is close."""
    close = difflib.get_close_matches(str(key), sorted(map(str, known)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def plain_key(key) -> bool:
    """True for a key an error may echo: a short name of letters, digits and ``_.+-`` (not a file's content)."""
    return isinstance(key, str) and bool(_SAFE_KEY.fullmatch(key))


def check_keys(where: str, mapping: dict, known) -> None:
    """Unknown keys of ``mapping`` are errors that list the known ones and suggest the nearest."""
    known = list(known)
    for key in mapping:
        if key not in known:
            if not plain_key(key):  # never echo a file's content
                raise ConfigError(f"{where} (an unknown key)", Described(f"a {type(key).__name__} key of {len(str(key))} characters"),
                                  "one of " + ", ".join(map(str, known)))
            raise ConfigError(f"{where}.{key}", key, "one of " + ", ".join(map(str, known)) + nearest(key, known))


def json_safe(value):
    """A copy of ``value`` (dicts, lists, scalars) with NaN and infinities replaced by ``None`` and numpy
    scalars turned into Python ones, so ``json.dumps(..., allow_nan=False)`` always succeeds."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (``prog: error: ...``) with exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def number_arg(field: str, minimum: float | None = None, maximum: float | None = None, *, above: bool = False):
    """An argparse ``type=`` that reads a number with :func:`number` (ASCII decimal, finite, in bounds)."""
    def parse(text: str) -> float:
        try:
            return number(field, text, minimum, maximum, above=above)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(f"got {text!r}; allowed: {err.allowed}") from None
    parse.__name__ = field
    return parse
