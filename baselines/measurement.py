"""The schema of a ``rdusim calibrate-gpu --json`` measurement, checked field by field where it enters
(``--from-json``), with physical bounds.

Every block must be a mapping, every value of the right type, every number finite and within a bound far
outside any real GPU (or CPU stand-in): an HBM of 1e30 GB, a kernel of 1e-30 s or an hour-long launch is
refused here with the field named, not written into a platform file that ``rdusim predict`` then refuses.
The sweeps are checked by the same function as a platform file's ``device.curves``
(:func:`rdusim.core.platforms.check_curves`), so what this module accepts, ``predict`` accepts.
"""
from __future__ import annotations

import re

from rdusim.core.checks import check_keys, number, plain_key, whole
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_json, mapping, redact, string
from rdusim.core.platforms import check_curves

# block -> key -> (minimum, maximum, what): the numbers a measurement may hold (units in the key's name).
NUMBERS: dict[str, dict[str, tuple[float, float, str]]] = {
    "": {"memory_GB": (1e-3, 1e5, "GB of device memory: 1 MB to 100 TB"), "wall_s": (0.0, 1e6, "seconds")},
    "hbm": {"d2d_GBps_rw": (1e-3, 1e5, "GB/s: 1 MB/s to 100 TB/s")},
    "gemm": {"bf16_TFLOPs": (1e-3, 1e5, "TFLOP/s: 1 GFLOP/s to 100 PFLOP/s")},
    "launch": {"eager_us_per_kernel": (1e-3, 1e5, "microseconds: 1 ns to 100 ms"),
               "graph_us_per_kernel": (1e-3, 1e5, "microseconds: 1 ns to 100 ms")},
    "h2d": {"pinned_GBps": (1e-3, 1e5, "GB/s: 1 MB/s to 100 TB/s"), "pageable_GBps": (1e-3, 1e5, "GB/s: 1 MB/s to 100 TB/s")},
}
WHOLE: dict[str, dict[str, tuple[int, int]]] = {
    "": {"sms": (1, 100_000), "threads": (1, 100_000)}, "hbm": {"buffer_bytes": (1, 10**13)}, "gemm": {"n": (1, 10**6)},
    "launch": {"kernels": (1, 10**8)}, "h2d": {"buffer_bytes": (1, 10**13)},
}
TEXT = {"": ("source", "device", "name", "torch", "dtype", "memory_source", "cuda"), "gemm": ("dtype",)}
TOP_KEYS = ("source", "device", "name", "torch", "tiny", "dtype", "memory_GB", "memory_source", "sms", "cuda", "threads",
            "hbm", "gemm", "launch", "h2d", "sweep", "models", "wall_s")
MAX_MODELS = 16
MAX_BATCH = 4096
MAX_TIMINGS = 64  # timed points per model (calibrate-gpu writes 4 to 6): the fit lowers one graph per point
MODEL_NUMBERS = {"params_B": (0.0, 1e4, "billions of parameters"), "peak_memory_GB": (0.0, 1e5, "GB")}
MODEL_WHOLE = {"prompt": (1, 10**6), "decode_steps": (1, 10**5), "cache_positions": (1, 2 * 10**6)}
CONFIG_WHOLE = {"layers": (1, 1000), "hidden": (1, 10**6), "heads": (1, 10**4), "kv_heads": (1, 10**4),
                "ffn": (1, 10**7), "vocab": (1, 10**7)}
TIMING = re.compile(r"(prefill|decode_eager|decode_graph)_ms(?:_per_step)?_bs([0-9]+)")
TIMING_BOUNDS = (1e-4, 1e6, "milliseconds: 100 ns to 1000 s")


def _block_values(where: str, block: dict, name: str) -> None:
    for key, (low, high, what) in NUMBERS.get(name, {}).items():
        if key in block and block[key] is not None:
            number(f"{where}{key}", block[key], low, high, what=what)
    for key, (low, high) in WHOLE.get(name, {}).items():
        if key in block and block[key] is not None:
            whole(f"{where}{key}", block[key], low, high)
    for key in TEXT.get(name, ()):
        if key in block and block[key] is not None:
            string(f"{where}{key}", block[key], "a text value (at most 200 characters)", max_len=200)


def _check_model(where: str, block: dict) -> None:
    if "error" in block:  # a model that failed to run: kept as a note, never fitted
        string(f"{where}.error", block["error"], "a text value")
        return
    for key, (low, high, what) in MODEL_NUMBERS.items():
        if key in block:
            number(f"{where}.{key}", block[key], low, high, what=what)
    for key, (low, high) in MODEL_WHOLE.items():
        if key in block:
            whole(f"{where}.{key}", block[key], low, high)
    config = mapping(f"{where}.config", block.get("config"), "a mapping of decoder sizes (layers, hidden, heads, "
                     "kv_heads, ffn, vocab), as calibrate-gpu --models writes", optional=False)
    check_keys(f"{where}.config", config, CONFIG_WHOLE)
    for key, value in config.items():
        whole(f"{where}.config.{key}", value, *CONFIG_WHOLE[key])
    timings = sum(1 for key in block if TIMING.fullmatch(str(key)))
    if timings > MAX_TIMINGS:
        raise ConfigError(f"{where} timings", timings, f"at most {MAX_TIMINGS} timed points per model")
    for key, value in block.items():
        if key in MODEL_NUMBERS or key in MODEL_WHOLE or key == "config":
            continue
        m = TIMING.fullmatch(str(key))
        if not m:
            check_keys(where, {key: None}, [*MODEL_NUMBERS, *MODEL_WHOLE, "config", "error",
                                            "prefill_ms_bs<B>", "decode_eager_ms_per_step_bs<B>",
                                            "decode_graph_ms_per_step_bs<B>"])
        whole(f"{where}.{key} (batch)", m[2], 1, MAX_BATCH)
        low, high, what = TIMING_BOUNDS
        number(f"{where}.{key}", value, low, high, what=what)


def check_measurement(data, source: str) -> dict:
    """``data`` (a parsed measurement) checked against the schema; returned as it is."""
    data = mapping("--from-json", data, "a measurement written by rdusim calibrate-gpu --json (a JSON object)", optional=False)
    check_keys("measurement", data, TOP_KEYS)
    if "tiny" in data and not isinstance(data["tiny"], bool):
        raise ConfigError("measurement.tiny", redact(data["tiny"]), "true or false")
    _block_values("measurement.", data, "")
    if "hbm" not in data:
        raise ConfigError("measurement.hbm", None, "a block {d2d_GBps_rw: ...} (a measurement written by --json)")
    for name in ("hbm", "gemm", "launch", "h2d"):
        block = mapping(f"measurement.{name}", data.get(name), f"a mapping of {name} values")
        check_keys(f"measurement.{name}", block, [*NUMBERS.get(name, {}), *WHOLE.get(name, {}), *TEXT.get(name, ())])
        _block_values(f"measurement.{name}.", block, name)
    check_curves("measurement.sweep", data.get("sweep"))
    models = mapping("measurement.models", data.get("models"), "a mapping of model name to timings")
    if len(models) > MAX_MODELS:
        raise ConfigError("measurement.models", f"{len(models)} models", f"at most {MAX_MODELS} models")
    for name, block in models.items():
        field = f"measurement.models.{name}" if plain_key(name) else f"measurement.models (a name of {len(str(name))} characters)"
        _check_model(field, mapping(field, block, "a mapping of timings", optional=False))
    return data


def read_measurement(path) -> dict:
    """A measurement saved with ``--json``: read through :func:`rdusim.core.loader.load_json`, then
    :func:`check_measurement`."""
    return check_measurement(load_json(path, "--from-json", what="measurement JSON file"), str(path))
