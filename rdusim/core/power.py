"""Power of a device and a node from the activity of a pass: the energy side of every prediction.

One device (a GPU board or an SN40L socket) draws

    P = P_idle + (P_board - P_idle) * min(1, u_c / c_limit + m_full * u_m)

where ``u_c`` is the pass's FLOP rate over the device's peak dense BF16 rate and ``u_m`` its HBM byte
rate over the HBM bandwidth (both from the kernel model: the pass's FLOPs and bytes over its time).
``P_board`` (the board or socket power limit) and ``P_idle`` come from the platform file's ``power``
block; ``c_limit`` (the share of peak at which compute alone reaches the board limit) and ``m_full``
(the share of the dynamic range that streaming at full HBM bandwidth draws) are the model's two
constants, in ``rdusim/data/power_model.yaml`` with what they rest on (a platform may override them
under ``power.fitted``, with its own data). A node adds, per node, ``node_overhead_power`` (host CPUs, NICs, switches,
fans) and the idle power of the devices a run leaves unused. Memory-bound decode streams weights at a
fraction of the bandwidth and does little arithmetic, so it draws less than compute-bound prefill; a
pass never draws more than the board limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rdusim.core.checks import check_keys
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import Platform

POWER_MODEL_FILE = DATA_DIR / "power_model.yaml"
MODEL_CONSTANTS = ("compute_at_limit", "memory_at_full_bandwidth")
IDLE_SHARE = "assumed_idle_share"
CONSTANT_KEYS = ("value", "unit", "meaning", "basis", "data")
SN40L_LABEL = "assumed: SN40L socket and node power are not published (rdusim/data/platforms/sn40l.yaml power.sources)"


@lru_cache(maxsize=None)
def _power_model_file() -> dict[str, dict]:
    """Every entry of ``rdusim/data/power_model.yaml``: name -> {value, unit, meaning, basis, data}; each
    value a fraction in (0, 1]."""
    data = load_yaml(POWER_MODEL_FILE, "power model")
    if not isinstance(data, dict):
        raise ConfigError(str(POWER_MODEL_FILE), type(data).__name__, "a mapping of power-model constants")
    check_keys(str(POWER_MODEL_FILE), data, MODEL_CONSTANTS + (IDLE_SHARE,))
    out = {}
    for name in MODEL_CONSTANTS + (IDLE_SHARE,):
        entry = data.get(name)
        if not isinstance(entry, dict):
            raise ConfigError(f"power_model.{name}", entry, "a mapping with " + ", ".join(CONSTANT_KEYS))
        check_keys(f"power_model.{name}", entry, CONSTANT_KEYS)
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"power_model.{name}.value", value, "a fraction in (0, 1]")
        out[name] = {**entry, "value": float(value)}
    return out


def model_constants() -> dict[str, dict]:
    """The power model's constants from ``rdusim/data/power_model.yaml``: name -> {value, unit, meaning,
    basis, data}; each value is a fraction in (0, 1]."""
    return {name: _power_model_file()[name] for name in MODEL_CONSTANTS}


def assumed_idle_share() -> float:
    """The idle draw assumed, as a share of the board limit, for a GPU whose idle power is not given
    (``power_model.yaml``, ``assumed_idle_share``; the packaged GPU files assume the same)."""
    return _power_model_file()[IDLE_SHARE]["value"]


@dataclass(frozen=True)
class PowerSpec:
    """The power figures of one platform in W, and the model's two constants (fractions)."""

    platform: str
    devices: int
    board_w: float
    idle_w: float
    node_overhead_w: float
    compute_at_limit: float
    memory_at_full_bandwidth: float
    peak_flops: float
    hbm_bandwidth: float
    basis: str

    @property
    def node_idle_w(self) -> float:
        """The node with every device idle: devices x idle + the node's overheads."""
        return self.devices * self.idle_w + self.node_overhead_w

    @property
    def node_limit_w(self) -> float:
        """The node with every device at its board limit, plus the node's overheads."""
        return self.devices * self.board_w + self.node_overhead_w


def power_spec(p: Platform) -> PowerSpec:
    """The :class:`PowerSpec` of platform ``p``; a platform file without board and idle power is an error
    naming the missing key. ``basis`` is ``assumed: ...`` when any figure it uses is assumed (every SN40L
    result), else the basis of the GPU figures."""
    for key in ("board_power", "idle_power"):
        if key not in p.power:
            raise ConfigError(f"{p.name}.power.published.{key}_W", None,
                              "a power block with board_power_W and idle_power_W (see examples/my-gpu.yaml)")
    const = model_constants()
    values = {name: p.power.get(name, const[name]["value"]) for name in MODEL_CONSTANTS}
    for name, v in values.items():
        if not 0 < v <= 1:
            raise ConfigError(f"{p.name}.power.fitted.{name}_fraction", v, "a fraction in (0, 1]")
    assumed = sorted(k.split(".", 1)[1] for k in p.assumed if k.startswith("power."))
    own = [k for k in MODEL_CONSTANTS if k in p.power and k not in assumed]
    shared = [k for k in ("memory_at_full_bandwidth",) if k not in p.power]
    parts = ([f"calibrated: {', '.join(own)} (the platform file's power.fitted)"] if own else []) + \
        ([f"calibrated: {', '.join(shared)} to Splitwise's A100 power (power_model.yaml)"] if shared else []) + \
        (["assumed: " + ", ".join(assumed)] if assumed else [])
    basis = SN40L_LABEL if p.kind == "rdu" else "; ".join(parts)
    return PowerSpec(p.name, p.devices, p.power["board_power"], p.power["idle_power"],
                     p.power.get("node_overhead_power", 0.0), values["compute_at_limit"],
                     values["memory_at_full_bandwidth"], p.dev("peak_bf16"), p.dev("hbm_bandwidth"), basis)


def device_power_w(spec: PowerSpec, flops, nbytes, seconds):
    """Power (W) of one device that does ``flops`` FLOPs and moves ``nbytes`` HBM bytes in ``seconds``
    (arrays broadcast): idle plus the dynamic range times the activity, capped at the board limit."""
    t = np.asarray(seconds, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_c = np.asarray(flops, dtype=float) / (t * spec.peak_flops)
        u_m = np.asarray(nbytes, dtype=float) / (t * spec.hbm_bandwidth)
    activity = np.minimum(1.0, u_c / spec.compute_at_limit + spec.memory_at_full_bandwidth * u_m)
    return spec.idle_w + (spec.board_w - spec.idle_w) * activity


def node_power_w(spec: PowerSpec, active_devices, device_w):
    """Power (W) of the whole platform: ``active_devices`` at ``device_w`` each, the other devices idle,
    and the node's overheads."""
    n = np.asarray(active_devices, dtype=float)
    return n * np.asarray(device_w, dtype=float) + (spec.devices - n) * spec.idle_w + spec.node_overhead_w
