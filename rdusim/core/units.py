"""Unit conversion at the configuration boundary.

Config files carry unit-bearing key names (``hbm_bandwidth_GBps``, ``sram_MiB``); inside the code
every quantity is SI: bytes, seconds, FLOP, FLOP/s, bytes/s, Hz. :func:`split_unit` strips the unit
suffix from a key and returns the SI field name with the factor that converts the value. Conversion
happens once, when a config file is loaded.
"""
from __future__ import annotations

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


def to_si(section: dict, where: str) -> dict[str, float]:
    """Convert a flat mapping of unit-bearing keys to SI names and values.

    Every value must be a positive finite number (``_fraction`` values in (0, 1]).
    ``where`` names the file or section for error messages.
    """
    out: dict[str, float] = {}
    for key, value in section.items():
        name, factor, unit = split_unit(key)
        field = f"{where}.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(field, value, "a number")
        if not value >= 0 or value == float("inf"):
            raise ConfigError(field, value, "a finite number >= 0")
        if unit == "1" and key.endswith("_fraction") and value > 1:
            raise ConfigError(field, value, "a fraction between 0 and 1")
        out[name] = float(value) * factor
    return out
