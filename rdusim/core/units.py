"""Unit conversion at the configuration boundary.

Config files carry unit-bearing key names (``hbm_bandwidth_GBps``, ``sram_MiB``); inside the code
every quantity is SI: bytes, seconds, FLOP, FLOP/s, bytes/s, Hz, W. :func:`split_unit` strips the unit
suffix from a key and returns the SI field name with the factor that converts the value. Conversion
happens once, when a config file is loaded.
"""
from __future__ import annotations

import math

from rdusim.core.errors import ConfigError

# suffix -> (factor to SI, SI unit name). Longest suffixes are tried first.
UNIT_FACTORS: dict[str, tuple[float, str]] = {
    "TiB": (2.0**40, "bytes"),
    "GiB": (2.0**30, "bytes"),
    "MiB": (2.0**20, "bytes"),
    "KiB": (2.0**10, "bytes"),
    "TB": (1e12, "bytes"),
    "GB": (1e9, "bytes"),
    "MB": (1e6, "bytes"),
    "bytes": (1.0, "bytes"),
    "TBps": (1e12, "bytes/s"),
    "GBps": (1e9, "bytes/s"),
    "MBps": (1e6, "bytes/s"),
    "TFLOPs": (1e12, "FLOP/s"),
    "GFLOPs": (1e9, "FLOP/s"),
    "GHz": (1e9, "Hz"),
    "MHz": (1e6, "Hz"),
    "s": (1.0, "s"),
    "ms": (1e-3, "s"),
    "us": (1e-6, "s"),
    "ns": (1e-9, "s"),
    "kW": (1e3, "W"),
    "W": (1.0, "W"),
    "fraction": (1.0, "1"),
    "count": (1.0, "1"),
}
_SUFFIXES = sorted(UNIT_FACTORS, key=len, reverse=True)


def split_unit(key: str) -> tuple[str, float, str]:
    """Return ``(si_name, factor, si_unit)`` for a unit-bearing config key.

    ``hbm_bandwidth_GBps`` -> ``("hbm_bandwidth", 1e9, "bytes/s")``. A key without a known unit
    suffix raises :class:`ConfigError`.
    """
    for suffix in _SUFFIXES:
        tail = "_" + suffix
        if key.endswith(tail) and len(key) > len(tail):
            factor, unit = UNIT_FACTORS[suffix]
            return key[: -len(tail)], factor, unit
    raise ConfigError(key, key, "a key ending in a unit: _" + ", _".join(_SUFFIXES))


# Sanity bounds of a config value, in SI, per unit: far outside any real device, but they keep every
# derived time finite (a bandwidth of 1e-300 bytes/s would turn a copy into an infinite time). Times may
# be 0 (an ideal link); every other quantity must be > 0 (leave an absent feature's key out).
SI_RANGES: dict[str, tuple[float, float]] = {
    "bytes": (1.0, 1e18),
    "bytes/s": (1e3, 1e17),
    "FLOP/s": (1e6, 1e21),
    "Hz": (1e6, 1e12),
    "s": (0.0, 1e3),
    "1": (0.0, 1e9),
    "W": (0.0, 1e8),
}


def to_si(section: dict, where: str) -> dict[str, float]:
    """Convert a flat mapping of unit-bearing keys to SI names and values.

    Every value must be a finite number within :data:`SI_RANGES` of its unit: > 0 (times >= 0),
    ``_fraction`` values in (0, 1], ``_count`` values whole numbers >= 1. ``where`` names the file or
    section for error messages; the allowed range is stated in the key's own unit.
    """
    if not isinstance(section, dict):
        raise ConfigError(where, section, "a mapping of unit-bearing keys to numbers")
    out: dict[str, float] = {}
    for key, value in section.items():
        name, factor, unit = split_unit(str(key))
        field = f"{where}.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(field, value, "a finite number")
        low, high = SI_RANGES[unit]
        if key.endswith("_fraction"):
            low, high = 0.0, 1.0
        lo, hi = low / factor, high / factor
        strict = unit != "s"  # only a time may be 0
        if not lo <= value <= hi or (strict and value <= 0):
            bound = "> 0" if strict and lo == 0 else f">= {lo:g}"
            raise ConfigError(field, value, f"a finite number {bound} and <= {hi:g}")
        if key.endswith("_count") and not float(value).is_integer():
            raise ConfigError(field, value, f"a whole number from 1 to {hi:g}")
        out[name] = float(value) * factor
    return out
