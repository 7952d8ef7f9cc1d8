"""How many experts a node holds, and how many nodes N experts need (article Fig. 8, Table 2 OOM).

Capacity model (article, "Model Hosting and Switching Costs" and "System Footprint Impact"):
experts are BF16 copies of one model. HBM also holds the router and the KV cache (article: "The
router and KV-cache is always in HBM"). The slow tier is the device DDR on the SN40L and host DRAM
on a DGX. With ``inclusive`` tiering the slow tier holds every expert and HBM caches some; with
``exclusive`` tiering HBM and the slow tier add up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import pandas as pd

from benchmarks.models import get_model, kv_bytes_per_token, weight_bytes
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.errors import ConfigError
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import Platform, load_platform

COE_DEFAULTS_FILE = DATA_DIR / "coe_defaults.yaml"
TIERINGS = ("inclusive", "exclusive")
SAMBA_COE_EXPERTS = 150  # the article's Samba-CoE configuration: 150 Llama-2-7B experts (an input, not a result)


@dataclass(frozen=True)
class CoEDeployment:
    """The deployment choices that decide memory use (defaults in ``rdusim/data/coe_defaults.yaml``)."""

    expert_model: str
    router_model: str
    tensor_parallel: int
    kv_batch: int
    kv_context_tokens: int
    hbm_reserve_fraction: float
    slow_tier_reserve_fraction: float
    tiering: str
    prompt_tokens: int = 128
    table2_experts: str | int = "largest_common"

    def __post_init__(self):
        for name in ("tensor_parallel", "kv_batch", "kv_context_tokens", "prompt_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"coe.{name}", value, "a whole number >= 1")
        for name in ("hbm_reserve_fraction", "slow_tier_reserve_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"coe.{name}", value, "a fraction in [0, 1)")
        if self.table2_experts != "largest_common" and (
                isinstance(self.table2_experts, bool) or not isinstance(self.table2_experts, int) or self.table2_experts < 1):
            raise ConfigError("coe.table2_experts", self.table2_experts, "largest_common or a whole number >= 1")
        if self.tiering not in TIERINGS:
            raise ConfigError("coe.tiering", self.tiering, ", ".join(TIERINGS))
        get_model(self.expert_model)
        get_model(self.router_model)

    @classmethod
    def from_config(cls, overrides: dict | None = None) -> "CoEDeployment":
        """Defaults from ``coe_defaults.yaml`` with ``overrides`` (a config's ``coe`` section) on top.

        Keys that are not deployment fields are ignored, so a whole ``coe`` section can be passed.
        """
        values = dict(_coe_defaults())
        names = {f.name for f in fields(cls)}
        values.update({k: v for k, v in (overrides or {}).items() if k in names})
        return cls(**{k: values[k] for k in names})

    @property
    def expert_bytes(self) -> int:
        """Bytes of one expert's BF16 weights."""
        return weight_bytes(get_model(self.expert_model))

    @property
    def hbm_fixed_bytes(self) -> int:
        """HBM bytes that are never experts: the router's weights and the reserved KV cache."""
        expert = get_model(self.expert_model)
        kv = kv_bytes_per_token(expert) * self.kv_batch * self.kv_context_tokens
        return weight_bytes(get_model(self.router_model)) + kv


@lru_cache(maxsize=1)
def _coe_defaults() -> dict:
    """``coe_defaults.yaml``, read once per process (copy before changing it)."""
    return mapping("coe defaults", load_yaml(COE_DEFAULTS_FILE, "coe defaults"), "a mapping of CoE defaults")


def slow_tier_bytes(platform: Platform) -> float:
    """The node's second tier for experts: device DDR (RDU) or host DRAM (GPU)."""
    return platform.ddr_total if platform.kind == "rdu" else platform.host_memory


def experts_in_hbm(platform: Platform, dep: CoEDeployment) -> int:
    """Experts that fit in the node's HBM beside the router and KV cache (>= 0)."""
    free = platform.hbm_total * (1 - dep.hbm_reserve_fraction) - dep.hbm_fixed_bytes
    return max(0, math.floor(free / dep.expert_bytes))


def experts_in_slow_tier(platform: Platform, dep: CoEDeployment) -> int:
    """Experts that fit in the node's slow tier (DDR or host DRAM)."""
    return math.floor(slow_tier_bytes(platform) * (1 - dep.slow_tier_reserve_fraction) / dep.expert_bytes)


def max_experts(platform: Platform, dep: CoEDeployment) -> int:
    """Most experts one node can host at all (beyond it the CoE is OOM on that node).

    Inclusive tiering: the larger of what HBM and the slow tier hold (the slow tier keeps every
    expert; HBM caches). Exclusive tiering: their sum.
    """
    fast, slow = experts_in_hbm(platform, dep), experts_in_slow_tier(platform, dep)
    return fast + slow if dep.tiering == "exclusive" else max(fast, slow)


def full_speed_experts(platform: Platform, dep: CoEDeployment) -> int:
    """Experts one node serves at its TP8 latency: HBM plus DDR on the SN40L, HBM alone on a GPU.

    The SN40L streams an expert from DDR to HBM at node-level DDR bandwidth while a GPU must cross
    PCIe from host DRAM; the article (Fig. 8) counts the first as full speed and the second not.
    """
    return max_experts(platform, dep) if platform.kind == "rdu" else experts_in_hbm(platform, dep)


def nodes_needed(n_experts: int, platform: Platform, dep: CoEDeployment) -> int | None:
    """Nodes of ``platform`` needed to serve ``n_experts`` at full speed; None if one node holds no expert."""
    if n_experts < 1:
        raise ConfigError("experts", n_experts, "a whole number >= 1")
    per_node = full_speed_experts(platform, dep)
    return None if per_node == 0 else math.ceil(n_experts / per_node)


def footprint_frame(platform_names: list[str], expert_counts: list[int], dep: CoEDeployment):
    """Fig. 8 capacity table: nodes per platform for each expert count, plus single-node OOM flag."""

    rows = []
    for name in platform_names:
        platform = load_platform(name)
        per_node = full_speed_experts(platform, dep)
        one_node_max = max_experts(platform, dep)
        for n in expert_counts:
            rows.append({
                "platform": name,
                "experts": n,
                "nodes": nodes_needed(n, platform, dep),
                "experts_per_node_full_speed": per_node,
                "experts_in_hbm_per_node": experts_in_hbm(platform, dep),
                "max_experts_one_node": one_node_max,
                "one_node_oom": n > one_node_max,
                "expert_bytes": dep.expert_bytes,
            })
    return pd.DataFrame.from_records(rows)


def footprint_claims(dep: CoEDeployment, rdu: str = "sn40l-node", gpu: str = "dgx-h100"):
    """Reproduced values for the article's capacity claims (ids of ``paper_claims.yaml``)."""

    rdu_p, gpu_p = load_platform(rdu), load_platform(gpu)
    sn_max = full_speed_experts(rdu_p, dep)
    gb = dep.expert_bytes / 1e9
    rows = [
        ("sn40l_node_max_experts", sn_max,
         f"{dep.tiering} tiering: {slow_tier_bytes(rdu_p) / 1e12:.1f} TB DDR / {gb:.2f} GB per expert"),
        ("dgx_nodes_for_sn40l_node", nodes_needed(sn_max, gpu_p, dep),
         f"{sn_max} experts at {full_speed_experts(gpu_p, dep)} per {gpu} node (HBM less router and KV cache)"),
        ("dgx_oom_experts", max_experts(gpu_p, dep),
         f"{gpu}: {dep.tiering} tiering over {gpu_p.host_memory / 1e12:.1f} TB host DRAM and "
         f"{gpu_p.hbm_total / 1e9:.0f} GB HBM; the claim passes if the largest CoE is under 150"),
        ("dgx_spill_experts", experts_in_hbm(gpu_p, dep), f"experts in {gpu} HBM beside router and KV cache"),
        ("samba_coe_total_params", SAMBA_COE_EXPERTS * dep.expert_bytes / 2, "150 experts x parameters of one"),
    ]
    return pd.DataFrame(rows, columns=["id", "reproduced", "note"])
