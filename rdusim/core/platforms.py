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

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from rdusim.core.checks import check_keys, nearest, whole
from rdusim.core.errors import ConfigError
from rdusim.core.paths import PLATFORM_DIR
from rdusim.core.units import UNIT_FACTORS, split_unit, to_si

KINDS = ("rdu", "gpu")
TOP_LEVEL_KEYS = ("name", "kind", "description", "devices", "device_file", "device", "node", "power", "default_stack")
# The serving stack (rdusim/data/stacks) a platform runs when a prediction names none and its file names none.
DEFAULT_STACK = {"gpu": "nemo-2023", "rdu": "kernels"}
MAX_DEVICES = 4096
# Every value a platform file may carry: SI field name -> SI unit. A key is the field name plus a unit
# suffix of that unit (``hbm_bandwidth`` + ``_GBps``); anything else is an error naming the nearest key.
DEVICE_FIELDS: dict[str, str] = {
    # both kinds
    "hbm_capacity": "bytes", "hbm_bandwidth": "bytes/s", "peak_bf16": "FLOP/s", "host_link": "bytes/s",
    "peak_fp8": "FLOP/s", "peak_int8": "FLOP/s",   # dense FP8 / INT8 tensor rates (issue 21; INT8 ops counted as FLOPs)
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
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "unparsable YAML", f"valid YAML ({exc.__class__.__name__})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), exc.__class__.__name__, "a readable UTF-8 YAML file") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), type(data).__name__, "a mapping of platform fields")
    return data


def _spec_block(data: dict, block: str, where: str) -> tuple[dict[str, float], set[str]]:
    section = data.get(block) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}.{block}", section, "a mapping with 'published' and 'assumed'")
    check_keys(f"{where}.{block}", section, ("published", "assumed", "measured", "fitted", "curves")
               if block == "device" else ("published", "assumed", "measured"))
    known = NODE_FIELDS if block == "node" else DEVICE_FIELDS
    values = {}
    for part in ("published", "assumed", "measured", "fitted"):
        mapping = section.get(part) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"{where}.{block}.{part}", mapping, "a mapping of unit-bearing keys to numbers")
        for key in mapping:
            _check_field(f"{where}.{block}.{part}", str(key), {**known, **FITTED_FIELDS} if part == "fitted" else known)
        values[part] = to_si(mapping, f"{where}.{block}.{part}")
    return ({**values["published"], **values["assumed"], **values["measured"], **values["fitted"]},
            set(values["assumed"]))


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
    spellings = [f"{name}_{suffix}" for name, unit in known.items()
                 for suffix, (_, si_unit) in UNIT_FACTORS.items() if si_unit == unit]
    try:
        name, _, unit = split_unit(key)
    except ConfigError:
        name, unit = None, None
    if name in known and unit == known[name]:
        return
    if name in known:
        units = [s for s in spellings if s.startswith(name + "_") and s[len(name) + 1:] in UNIT_FACTORS]
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


@lru_cache(maxsize=None)
def load_platform(name_or_path: str) -> Platform:
    """Load a platform by built-in name (``sn40l-node``) or by path to a YAML file.

    Unknown names, unknown or misspelt keys (the error suggests the nearest), missing fields, values
    out of range and ``device_file`` references that loop raise :class:`ConfigError` naming the field
    and what is allowed.
    """
    return _load(str(name_or_path), ())


def _load(name_or_path: str, chain: tuple[Path, ...]) -> Platform:
    path = _resolve(name_or_path)
    data = _read_yaml(path)
    where = path.stem
    check_keys(where, data, TOP_LEVEL_KEYS)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigError(f"{where}.kind", kind, ", ".join(KINDS))
    devices = whole(f"{where}.devices", data.get("devices", 1), 1, MAX_DEVICES)
    if "device_file" in data:
        ref = data["device_file"]
        if not isinstance(ref, str) or not ref:
            raise ConfigError(f"{where}.device_file", ref, "a built-in platform name or a .yaml path next to this file")
        target = ref if not ref.endswith((".yaml", ".yml")) else str(path.parent / ref)
        try:
            target_path = _resolve(target)
        except ConfigError as err:
            raise ConfigError(f"{where}.device_file", ref, err.allowed) from None
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
        if "device" in data:  # values of this system that differ from the device file's (sn40l-16)
            override, override_assumed = _spec_block(data, "device", where)  # checks it is a mapping
            if (data["device"] or {}).get("curves"):
                raise ConfigError(f"{where}.device.curves", "curves with device_file", "curves in the device file itself")
            device.update(override)
            assumed = (assumed - set(override)) | override_assumed
    else:
        device, assumed = _spec_block(data, "device", where)
        curves = (data.get("device") or {}).get("curves") or {}
        inherited_stack = DEFAULT_STACK[kind]
        if not isinstance(curves, dict):
            raise ConfigError(f"{where}.device.curves", curves, "a mapping of measured sweeps")
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
    )
