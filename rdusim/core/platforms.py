"""Hardware platforms, loaded from YAML files with unit-bearing keys and converted to SI once.

A platform is a node of ``devices`` identical devices (SN40L sockets or GPUs) plus node-level
values (host memory), and a ``power`` block (board and idle power per device, node overheads, each
with its source or reasoning; see :mod:`rdusim.core.power`). A device block has ``published`` values (datasheets, papers), ``assumed``
values (not published; each with a reason in a comment) and optionally ``measured`` values (from a
measurement run such as ``rdusim calibrate-gpu``) and ``fitted`` values (a GPU's own model constants written by ``calibrate-gpu --models``, which
:mod:`baselines.gpu` reads), plus an optional ``curves`` block of measured sweeps
(lists of points, kept as read; :mod:`baselines.gpu` checks and uses them). Device values come from the platform's own ``device`` block or, for a node,
from the single-device file it names in ``device_file``; a ``device`` block beside ``device_file``
overrides some of that file's values (a system whose sockets are published with other figures). Built-in files live in
``rdusim/data/platforms``; any path to a ``.yaml`` file with the same layout works too.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rdusim.core.checks import check_keys, nearest, plain_key, whole
from rdusim.core.errors import ConfigError, Described
from rdusim.core.loader import load_yaml, mapping, redact
from rdusim.core.paths import PLATFORM_DIR
from rdusim.core.units import UNIT_FACTORS, split_unit, to_si

KINDS = ("rdu", "gpu")
TOP_LEVEL_KEYS = ("name", "kind", "description", "devices", "device_file", "device", "node", "power", "default_stack",
                  "serving_stack")
# The serving stack (rdusim/data/stacks) a platform runs when a prediction names none and its file names none.
DEFAULT_STACK = {"gpu": "nemo-2023", "rdu": "kernels"}
# the stack `rdusim serve --model` runs when none is named: a serving engine with its scheduler (a 2024
# TensorRT-LLM on GPUs; on the SN40L its default stack), unless the file names another (`serving_stack`)
DEFAULT_SERVING_STACK = {"gpu": "trtllm", "rdu": None}
MAX_DEVICES = 4096
# Every value a platform file may carry: SI field name -> SI unit. A key is the field name plus a unit
# suffix of that unit (``hbm_bandwidth`` + ``_GBps``); anything else is an error naming the nearest key.
DEVICE_FIELDS: dict[str, str] = {
    # both kinds
    "hbm_capacity": "bytes", "hbm_bandwidth": "bytes/s", "peak_bf16": "FLOP/s", "host_link": "bytes/s",
    "peak_fp8": "FLOP/s", "peak_int8": "FLOP/s",   # dense FP8 / INT8 tensor rates (issue 21; INT8 ops counted as FLOPs)
    "peak_fp32": "FLOP/s",   # GPUs: FP32 rate of the CUDA cores (no tensor cores): engines' decode attention
    # GPUs (published, and measured by rdusim calibrate-gpu)
    "nvlink_bandwidth": "bytes/s", "hbm_copy": "bytes/s", "gemm_bf16": "FLOP/s", "launch_eager": "s",
    "launch_graph": "s", "h2d_pinned": "bytes/s", "h2d_pageable": "bytes/s", "sm_clock": "Hz",
    "gemm_model": "FLOP/s", "allreduce_bus": "bytes/s",  # model-shaped GEMM rate; all-reduce bus bandwidth
    # SN40L sockets
    "pcus": "1", "pmus": "1", "sram": "bytes", "clock": "Hz", "pmu_bandwidth": "bytes/s", "simd_lanes": "1",
    "simd_stages": "1", "ddr_capacity": "bytes", "ddr_bandwidth": "bytes/s", "p2p_bandwidth": "bytes/s",
    "p2p_latency": "s", "ddr_to_hbm": "bytes/s", "systolic_rows": "1", "systolic_cols": "1",
    "stage_fill_cycles": "1", "stream_tile_rows": "1", "so_launch": "s", "ho_launch": "s", "op_config": "bytes",
}
NODE_FIELDS: dict[str, str] = {
    "host_memory": "bytes",
    # an RDU system built of halves (sn40l-16: two 8-socket halves): sockets per half, and the peer link
    # that joins a socket to the other half (per socket) with the latency of one step across it
    "half_sockets": "1", "cross_half_bandwidth": "bytes/s", "cross_half_latency": "s",
}
# The ``power`` block (rdusim.core.power): per device (``board_power`` limit, ``idle_power``), per node
# (``node_overhead_power``: host CPUs, NICs, switches, fans besides the devices; ``node_max_power``: the
# node's rated maximum), and optional per-platform overrides of the power model's fitted constants.
# A node file inherits the device values of its ``device_file`` and adds its own.
POWER_DEVICE_FIELDS: dict[str, str] = {"board_power": "W", "idle_power": "W"}
POWER_NODE_FIELDS: dict[str, str] = {"node_overhead_power": "W", "node_max_power": "W"}
POWER_FITTED_FIELDS: dict[str, str] = {"compute_at_limit": "1", "memory_at_full_bandwidth": "1"}
POWER_PARTS = ("published", "assumed", "fitted", "sources")
# Besides device fields, a ``fitted`` block may hold the GPU model's own constants for that GPU (written by
# rdusim calibrate-gpu --models, fitted to that GPU's own timings; read by baselines.gpu).
FITTED_FIELDS: dict[str, str] = {"stream_efficiency": "1", "gemm_efficiency": "1", "kernel_ramp": "s", "eager_host": "s"}
# Dimensionless fields: counts (whole numbers, key suffix _count) and fractions (suffix _fraction).
FRACTION_FIELDS = ("stream_efficiency", "gemm_efficiency", "compute_at_limit", "memory_at_full_bandwidth")
# Physical bounds of each field (SI; checked once, when a platform file is read): far beyond any device
# built or announced, so that an absurd value (a typo, a unit slip, a corrupt measurement) is refused here
# and never turns into a denormal or infinite time later.
_BYTES, _RATE, _LAUNCH = (1e6, 1e14, "1 MB to 100 TB"), (1e6, 1e14, "1 MB/s to 100 TB/s"), (0.0, 0.1, "0 to 100 ms")
FIELD_BOUNDS: dict[str, tuple[float, float, str]] = {
    "hbm_capacity": _BYTES, "ddr_capacity": _BYTES, "host_memory": (1e6, 1e15, "1 MB to 1 PB"),
    "sram": (1e3, 1e11, "1 kB to 100 GB"), "op_config": (1.0, 1e9, "1 byte to 1 GB"),
    "hbm_bandwidth": _RATE, "host_link": _RATE, "nvlink_bandwidth": _RATE, "hbm_copy": _RATE, "h2d_pinned": _RATE,
    "h2d_pageable": _RATE, "pmu_bandwidth": _RATE, "ddr_bandwidth": _RATE, "p2p_bandwidth": _RATE, "ddr_to_hbm": _RATE,
    "peak_bf16": (1e9, 1e17, "1 GFLOP/s to 100 PFLOP/s"), "peak_fp32": (1e9, 1e17, "1 GFLOP/s to 100 PFLOP/s"),
    "gemm_bf16": (1e9, 1e17, "1 GFLOP/s to 100 PFLOP/s"),
    "sm_clock": (1e7, 1e10, "10 MHz to 10 GHz"), "clock": (1e7, 1e10, "10 MHz to 10 GHz"),
    "launch_eager": _LAUNCH, "launch_graph": _LAUNCH, "p2p_latency": _LAUNCH, "so_launch": (0.0, 1.0, "0 to 1 s"),
    "ho_launch": (0.0, 1.0, "0 to 1 s"),
    "kernel_ramp": (0.0, 1e-3, "0 to 1 ms"), "eager_host": (1e-8, 1e-2, "10 ns to 10 ms"),
    "stream_efficiency": (0.01, 1.0, "below 1% is no working GPU"), "gemm_efficiency": (0.01, 1.0, "below 1% is no working GPU"),
    "pcus": (1, 1e6, "1 to 1,000,000"), "pmus": (1, 1e6, "1 to 1,000,000"), "simd_lanes": (1, 4096, "1 to 4,096"),
    "simd_stages": (1, 256, "1 to 256"), "systolic_rows": (1, 4096, "1 to 4,096"), "systolic_cols": (1, 4096, "1 to 4,096"),
    "stage_fill_cycles": (0, 1e6, "0 to 1,000,000"), "stream_tile_rows": (1, 1e7, "1 to 10,000,000"),
}
# Measured sweeps a GPU platform may carry (device.curves, written by calibrate-gpu): fields and bounds.
CURVE_FIELDS = {"stream_copy": ("bytes", "time_us"), "stream_gemv": ("bytes", "time_us"),
                "gemm": ("m", "n", "k", "time_us")}
CURVE_BOUNDS = {"bytes": (1.0, 1e13, "1 byte to 10 TB"), "time_us": (1e-3, 1e7, "1 ns to 10 s, in microseconds"),
                "m": (1, 1e6, "1 to 1,000,000"), "n": (1, 1e6, "1 to 1,000,000"), "k": (1, 1e6, "1 to 1,000,000")}
MAX_CURVE_POINTS = 1000


@dataclass(frozen=True)
class Platform:
    """One node (or one device) with its hardware values in SI units.

    ``device`` holds per-device values (bytes, bytes/s, FLOP/s, s, Hz, counts); ``node`` holds
    node-level ones. ``assumed`` lists the keys that no public source gives.
    """

    name: str
    kind: str
    description: str
    devices: int
    device: dict[str, float]
    node: dict[str, float] = field(default_factory=dict)
    assumed: frozenset[str] = frozenset()
    source: str = ""
    curves: dict = field(default_factory=dict)
    power: dict[str, float] = field(default_factory=dict)
    power_sources: dict[str, str] = field(default_factory=dict)
    default_stack: str = ""     # stack of a prediction that names none (``default_stack`` in the file)
    serving_stack: str = ""     # stack of `rdusim serve --model` that names none (``serving_stack``; see DEFAULT_SERVING_STACK)

    def dev(self, key: str) -> float:
        """Per-device value ``key`` (SI); a clear error if this platform lacks it."""
        try:
            return self.device[key]
        except KeyError:
            raise ConfigError(f"{self.name}.device.{key}", None,
                              "one of " + ", ".join(sorted(self.device))) from None

    @property
    def hbm_total(self) -> float:
        """HBM bytes over all devices of the node."""
        return self.devices * self.dev("hbm_capacity")

    @property
    def ddr_total(self) -> float:
        """Device-attached DDR bytes over all devices (0 for GPUs)."""
        return self.devices * self.device.get("ddr_capacity", 0.0)

    @property
    def host_memory(self) -> float:
        """Host DRAM bytes of the node (0 when not given)."""
        return self.node.get("host_memory", 0.0)


def builtin_names() -> list[str]:
    """Names of the platform files shipped with rdusim."""
    return sorted(p.stem for p in PLATFORM_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    data = load_yaml(path, f"platform file {path}", what="platform YAML file")
    return mapping(f"platform file {path}", data, "a mapping of platform fields", optional=False)


def _spec_block(data: dict, block: str, where: str) -> tuple[dict[str, float], set[str]]:
    section = mapping(f"{where}.{block}", data.get(block), "a mapping with 'published' and 'assumed'")
    check_keys(f"{where}.{block}", section, ("published", "assumed", "measured", "fitted", "curves")
               if block == "device" else ("published", "assumed", "measured"))
    known = NODE_FIELDS if block == "node" else DEVICE_FIELDS
    values = {}
    for part in ("published", "assumed", "measured", "fitted"):
        entries = mapping(f"{where}.{block}.{part}", section.get(part), "a mapping of unit-bearing keys to numbers")
        for key in entries:
            _check_field(f"{where}.{block}.{part}", str(key), {**known, **FITTED_FIELDS} if part == "fitted" else known)
        values[part] = to_si(entries, f"{where}.{block}.{part}")
        for key in entries:
            _check_bounds(f"{where}.{block}.{part}.{key}", str(key), entries[key], values[part])
    return ({**values["published"], **values["assumed"], **values["measured"], **values["fitted"]},
            set(values["assumed"]))


def _check_bounds(field: str, key: str, given, si: dict[str, float]) -> None:
    """The value of ``key`` (already in SI in ``si``) within :data:`FIELD_BOUNDS`, stated in the key's unit."""
    name, factor, _ = split_unit(key)
    if name not in FIELD_BOUNDS:
        return
    low, high, text = FIELD_BOUNDS[name]
    value = si[name]
    if not low <= value <= high:
        raise ConfigError(field, given, f"{low / factor:g} to {high / factor:g} ({text}; a physical bound)")
    if key.endswith("_count"):
        whole(field, given, int(low), int(high))


def _suffixes(name: str, unit: str) -> list[str]:
    """The unit suffixes a field may take: counts only _count, fractions only _fraction."""
    if unit == "1":
        return ["fraction"] if name in FRACTION_FIELDS else ["count"]
    return [suffix for suffix, (_, si_unit) in UNIT_FACTORS.items() if si_unit == unit]


def _power_block(data: dict, where: str, known: dict[str, str]) -> tuple[dict[str, float], set[str], dict[str, str]]:
    """The ``power`` block: ``(values in W or 1, assumed keys, sources)``. Every value key needs a
    ``sources`` entry (a published source, or for an ``assumed`` value the reasoning), so that no power
    figure enters without its basis."""
    section = data.get("power") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}.power", section, "a mapping with 'published', 'assumed', 'fitted' and 'sources'")
    check_keys(f"{where}.power", section, POWER_PARTS)
    sources = section.get("sources") or {}
    if not isinstance(sources, dict) or not all(isinstance(v, str) and v.strip() for v in sources.values()):
        raise ConfigError(f"{where}.power.sources", sources, "a mapping of power keys to non-empty source or reason strings")
    values: dict[str, float] = {}
    assumed: set[str] = set()
    for part in ("published", "assumed", "fitted"):
        mapping = section.get(part) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"{where}.power.{part}", mapping, "a mapping of unit-bearing keys to numbers")
        allowed = POWER_FITTED_FIELDS if part == "fitted" else {**known, **POWER_FITTED_FIELDS} if part == "assumed" else known
        for key in mapping:
            _check_field(f"{where}.power.{part}", str(key), allowed)
            if key not in sources:
                raise ConfigError(f"{where}.power.sources.{key}", None,
                                  "a source (published) or the reasoning (assumed, fitted) for every power value")
        converted = to_si(mapping, f"{where}.power.{part}")
        values.update(converted)
        if part == "assumed":
            assumed |= set(converted)
    unknown = sorted(set(sources) - {str(k) for p in ("published", "assumed", "fitted") for k in (section.get(p) or {})})
    if unknown:
        raise ConfigError(f"{where}.power.sources.{unknown[0]}", unknown[0], "a key of this power block's published, assumed or fitted values")
    if "idle_power" in values and "board_power" in values and values["idle_power"] >= values["board_power"]:
        raise ConfigError(f"{where}.power.idle_power_W", values["idle_power"], f"less than board_power_W ({values['board_power']:g} W)")
    return values, assumed, {str(k): str(v) for k, v in sources.items()}


def _check_field(where: str, key: str, known: dict[str, str]) -> None:
    """A key must be a known field with a suffix of its unit; the error suggests the nearest valid key."""
    spellings = [f"{name}_{suffix}" for name, unit in known.items() for suffix in _suffixes(name, unit)]
    if not plain_key(key):  # never echo a file's content
        raise ConfigError(f"{where} (an unknown key)", Described(f"a key of {len(key)} characters"),
                          "a known platform field with a unit suffix, as in rdusim/data/platforms/*.yaml")
    try:
        name, _, unit = split_unit(key)
    except ConfigError:
        name, unit = None, None
    if name in known and unit == known[name] and key[len(name) + 1:] in _suffixes(name, unit):
        return
    if name in known:
        units = [f"{name}_{suffix}" for suffix in _suffixes(name, known[name])]
        raise ConfigError(f"{where}.{key}", key, f"{name} in {known[name]}: " + ", ".join(units))
    raise ConfigError(f"{where}.{key}", key, "a known platform field with a unit suffix, as in "
                      "rdusim/data/platforms/*.yaml" + nearest(key, spellings))


def _resolve(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ConfigError("platform", name_or_path, "an existing .yaml file or one of " + ", ".join(builtin_names()))
        return candidate
    path = PLATFORM_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError("platform", name_or_path, ", ".join(builtin_names()) + " or a path to a .yaml file")
    return path


def load_platform(name_or_path: str) -> Platform:
    """Load a platform by built-in name (``sn40l-node``) or by path to a YAML file.

    Unknown names, unknown or misspelt keys (the error suggests the nearest), missing fields, values
    out of range and ``device_file`` references that loop raise :class:`ConfigError` naming the field
    and what is allowed; so does a name that is not a str or path.
    """
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path or len(name_or_path) > 4096:
        raise ConfigError("platform", redact(name_or_path), "a platform name (" + ", ".join(builtin_names())
                          + ") or a path to a .yaml file")
    return _load_cached(name_or_path)


@lru_cache(maxsize=None)
def _load_cached(name_or_path: str) -> Platform:
    return _load(name_or_path, ())


load_platform.cache_clear = _load_cached.cache_clear


def _load(name_or_path: str, chain: tuple[Path, ...]) -> Platform:
    path = _resolve(name_or_path)
    data = _read_yaml(path)
    where = path.stem
    check_keys(where, data, TOP_LEVEL_KEYS)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"{where}.kind", redact(kind), ", ".join(KINDS))
    for key in ("name", "description"):
        if key in data and (not isinstance(data[key], str) or len(data[key]) > 1000):
            raise ConfigError(f"{where}.{key}", redact(data[key]), "a text value (at most 1,000 characters)")
    devices = whole(f"{where}.devices", data.get("devices", 1), 1, MAX_DEVICES)
    if "device_file" in data:
        ref = data["device_file"]
        if not isinstance(ref, str) or not ref or len(ref) > 1000:
            raise ConfigError(f"{where}.device_file", redact(ref), "a built-in platform name or a .yaml path next to this file")
        target = ref if not ref.endswith((".yaml", ".yml")) else str(path.parent / ref)
        try:
            target_path = _resolve(target)
        except ConfigError as err:
            raise ConfigError(f"{where}.device_file", redact(ref), err.allowed) from None
        seen = chain + (path.resolve(),)
        if target_path.resolve() in seen:
            loop = " -> ".join(p.stem for p in seen + (target_path.resolve(),))
            raise ConfigError(f"{where}.device_file", ref, f"a file that does not lead back to itself (loop: {loop})")
        base = _load(target, seen)
        if base.kind != kind:
            raise ConfigError(f"{where}.device_file", ref, f"a {kind} device file (it is kind {base.kind})")
        device, assumed, curves = dict(base.device), set(base.assumed), base.curves
        base_power, base_sources = dict(base.power), dict(base.power_sources)
        inherited_stack = base.default_stack
        inherited_serving = base.serving_stack
        if "device" in data:  # values of this system that differ from the device file's (sn40l-16)
            override, override_assumed = _spec_block(data, "device", where)  # checks it is a mapping
            if (data["device"] or {}).get("curves"):
                raise ConfigError(f"{where}.device.curves", "curves with device_file", "curves in the device file itself")
            device.update(override)
            assumed = (assumed - set(override)) | override_assumed
    else:
        device, assumed = _spec_block(data, "device", where)
        curves = check_curves(f"{where}.device.curves", (data.get("device") or {}).get("curves"))
        inherited_stack = DEFAULT_STACK[kind]
        inherited_serving = ""
        base_power, base_sources = {}, {}
    power_fields = {**POWER_NODE_FIELDS, **({} if "device_file" in data else POWER_DEVICE_FIELDS)}
    power, power_assumed, power_sources = _power_block(data, where, power_fields)
    power = {**base_power, **power}
    power_sources = {**base_sources, **power_sources}
    if "node_max_power" in power and "board_power" in power:
        need = devices * power["board_power"] + power.get("node_overhead_power", 0.0)
        if need > power["node_max_power"]:
            raise ConfigError(f"{where}.power.node_overhead_power_W", power.get("node_overhead_power", 0.0),
                              f"at most node_max_power_W - devices x board_power_W = "
                              f"{power['node_max_power'] - devices * power['board_power']:g} W")
    node, node_assumed = _spec_block(data, "node", where)
    default_stack = data.get("default_stack", inherited_stack)
    if not isinstance(default_stack, str) or not default_stack:
        raise ConfigError(f"{where}.default_stack", default_stack, "a stack name (rdusim/data/stacks) or a stack .yaml path")
    serving_stack = data.get("serving_stack", inherited_serving or DEFAULT_SERVING_STACK[kind] or default_stack)
    if not isinstance(serving_stack, str) or not serving_stack:
        raise ConfigError(f"{where}.serving_stack", serving_stack, "a stack name (rdusim/data/stacks) or a stack .yaml path")
    if "hbm_capacity" not in device:
        raise ConfigError(f"{where}.device.published.hbm_capacity_GB", None, "a capacity in GB")
    return Platform(
        name=str(data.get("name", where)),
        kind=kind,
        description=str(data.get("description", "")),
        devices=devices,
        device=device,
        node=node,
        assumed=frozenset(assumed | {f"node.{k}" for k in node_assumed} | {f"power.{k}" for k in power_assumed}),
        source=str(path),
        curves=curves,
        power=power,
        power_sources=power_sources,
        default_stack=default_stack,
        serving_stack=serving_stack,
    )


def check_curves(where: str, curves) -> dict:
    """A ``device.curves`` block: known sweeps (:data:`CURVE_FIELDS`), each field a list of 2 to
    :data:`MAX_CURVE_POINTS` finite numbers within :data:`CURVE_BOUNDS` (m, n, k whole), all of one length, with
    at least two distinct sizes. Returned as read (lists of floats)."""
    curves = mapping(where, curves, "a mapping of measured sweeps")
    out = {}
    for name, curve in curves.items():
        if name not in CURVE_FIELDS:
            check_keys(where, {name: None}, CURVE_FIELDS)
        want = CURVE_FIELDS[name]
        curve = mapping(f"{where}.{name}", curve, "a mapping of fields " + ", ".join(want), optional=False)
        check_keys(f"{where}.{name}", curve, want)
        lists = {}
        for key in want:
            field = f"{where}.{name}.{key}"
            low, high, text = CURVE_BOUNDS[key]
            allowed = f"a list of 2 to {MAX_CURVE_POINTS:,} numbers from {low:g} to {high:g} ({text})"
            values = curve.get(key)
            if not isinstance(values, list) or not 2 <= len(values) <= MAX_CURVE_POINTS:
                raise ConfigError(field, redact(values), allowed)
            for i, v in enumerate(values):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:
                    raise ConfigError(f"{field}.{i}", redact(v), allowed)
                if key in ("m", "n", "k"):
                    whole(f"{field}.{i}", v, int(low), int(high))
            lists[key] = [float(v) for v in values]
        if len({len(v) for v in lists.values()}) != 1:
            raise ConfigError(f"{where}.{name}", {k: len(v) for k, v in lists.items()}, "lists of equal length")
        size = lists["bytes"] if "bytes" in lists else [m * n * k for m, n, k in zip(lists["m"], lists["n"], lists["k"])]
        if len(set(size)) < 2:
            raise ConfigError(f"{where}.{name}", Described(f"{len(size)} points of one size"), "points of at least two sizes")
        out[name] = lists
    return out
