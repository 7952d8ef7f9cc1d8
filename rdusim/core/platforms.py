"""Hardware platforms, loaded from YAML files with unit-bearing keys and converted to SI once.

A platform is a node of ``devices`` identical devices (SN40L sockets or GPUs) plus node-level
values (host memory). A device block has ``published`` values (datasheets, papers), ``assumed``
values (not published; each with a reason in a comment) and optionally ``measured`` values (from a
measurement run such as ``rdusim calibrate-gpu``), plus an optional ``curves`` block of measured sweeps
(lists of points, kept as read; :mod:`baselines.gpu` checks and uses them). Device values come from the platform's own ``device`` block or, for a node,
from the single-device file it names in ``device_file``. Built-in files live in
``rdusim/data/platforms``; any path to a ``.yaml`` file with the same layout works too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from rdusim.core.errors import ConfigError
from rdusim.core.paths import PLATFORM_DIR
from rdusim.core.units import to_si

KINDS = ("rdu", "gpu")


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
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "unparsable YAML", f"valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), type(data).__name__, "a mapping of platform fields")
    return data


def _spec_block(data: dict, block: str, where: str) -> tuple[dict[str, float], set[str]]:
    section = data.get(block) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}.{block}", section, "a mapping with 'published' and 'assumed'")
    unknown = set(section) - {"published", "assumed", "measured", "curves"}
    if unknown:
        raise ConfigError(f"{where}.{block}", sorted(unknown), "'published', 'assumed', 'measured', 'curves'")
    published = to_si(section.get("published") or {}, f"{where}.{block}.published")
    assumed = to_si(section.get("assumed") or {}, f"{where}.{block}.assumed")
    measured = to_si(section.get("measured") or {}, f"{where}.{block}.measured")
    return {**published, **assumed, **measured}, set(assumed)


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

    Unknown names, missing fields and non-SI-convertible keys raise :class:`ConfigError` naming
    the field and what is allowed.
    """
    path = _resolve(name_or_path)
    data = _read_yaml(path)
    where = path.stem
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind", kind, ", ".join(KINDS))
    devices = data.get("devices", 1)
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise ConfigError(f"{where}.devices", devices, "a whole number >= 1")
    if "device_file" in data:
        base = load_platform(str(data["device_file"]) if not str(data["device_file"]).endswith(".yaml")
                             else str(path.parent / data["device_file"]))
        device, assumed, curves = dict(base.device), set(base.assumed), base.curves
    else:
        device, assumed = _spec_block(data, "device", where)
        curves = (data.get("device") or {}).get("curves") or {}
        if not isinstance(curves, dict):
            raise ConfigError(f"{where}.device.curves", curves, "a mapping of measured sweeps")
    node, node_assumed = _spec_block(data, "node", where)
    if "hbm_capacity" not in device:
        raise ConfigError(f"{where}.device.published.hbm_capacity_GB", None, "a capacity in GB")
    return Platform(
        name=str(data.get("name", where)),
        kind=kind,
        description=str(data.get("description", "")),
        devices=devices,
        device=device,
        node=node,
        assumed=frozenset(assumed | {f"node.{k}" for k in node_assumed}),
        source=str(path),
        curves=curves,
    )
