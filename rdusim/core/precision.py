"""Numeric formats of weights and KV cache: bytes per value and the GEMM rate a platform gives them.

Read from ``rdusim/data/precisions.yaml``. :func:`gemm_peak` names the platform field of a format's
matmul rate (``peak_fp8`` for FP8, ``peak_bf16`` for BF16 and weight-only INT4); a platform whose file
lacks it cannot run the format, which is a :class:`ConfigError` naming the platform. ``gpu_gemm_efficiency``
names the GPU model's constant of the format's matmul efficiency relative to BF16
(:func:`baselines.gpu.format_gemm_rate`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from rdusim.core.checks import check_keys
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import Platform

PRECISIONS_FILE = DATA_DIR / "precisions.yaml"
DEFAULT_PRECISION = "bf16"


@dataclass(frozen=True)
class Precision:
    """One numeric format: bytes per value and the platform field of its matmul rate."""

    name: str
    bytes_per_value: float
    gemm_rate: str = "peak_bf16"
    meaning: str = ""
    gpu_gemm_efficiency: str = ""  # a GPU constant: this format's matmul efficiency relative to BF16 (none: 1)


@lru_cache(maxsize=None)
def _table() -> dict[str, dict[str, Precision]]:
    raw = mapping("precisions", load_yaml(PRECISIONS_FILE, "precisions"), "a mapping of precision tables")
    keys = [f.name for f in fields(Precision) if f.name != "name"]
    for part in ("weights", "kv_cache"):
        for name, entry in mapping(f"precisions.{part}", raw.get(part), "a mapping of formats", optional=False).items():
            check_keys(f"precisions.{part}.{name}", mapping(f"precisions.{part}.{name}", entry, "a mapping"), keys)
    return {part: {name: Precision(name=name, **entry) for name, entry in raw[part].items()}
            for part in ("weights", "kv_cache")}


def weight_precisions() -> tuple[str, ...]:
    """Names of the weight formats (``precisions.yaml``, ``weights``)."""
    return tuple(_table()["weights"])


def weight_precision(name) -> Precision:
    """The weight format ``name`` (bf16, fp8, int8, int4); an error listing them otherwise."""
    table = _table()["weights"]
    if not isinstance(name, str) or name not in table:
        raise ConfigError("precision", name, ", ".join(table))
    return table[name]


def kv_precision(name) -> Precision:
    """The KV-cache format ``name`` (bf16, fp8, int8); an error listing them otherwise."""
    table = _table()["kv_cache"]
    if not isinstance(name, str) or name not in table:
        raise ConfigError("kv_precision", name, ", ".join(table))
    return table[name]


def gemm_peak(platform: Platform, precision: str) -> float:
    """Peak matmul FLOP/s of one device of ``platform`` in ``precision`` (its datasheet value, or the
    platform file's ``assumed`` one); a ConfigError naming the platform when the file gives none."""
    fmt = weight_precision(precision)
    if fmt.gemm_rate not in platform.device:
        raise ConfigError("precision", precision, f"one that {platform.name} supports: no {fmt.gemm_rate} rate in its "
                          f"platform file (" + ", ".join(p for p in weight_precisions()
                                                           if weight_precision(p).gemm_rate in platform.device) + ")")
    return platform.device[fmt.gemm_rate]
