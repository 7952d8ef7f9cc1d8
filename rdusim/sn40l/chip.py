"""The SN40L chip as the performance model sees it: rates and capacities per socket, in SI units.

Derived from a platform file (``rdusim/data/platforms/sn40l.yaml``): published values (article
section "SN40L Architecture"; [P] Table II) and explicit assumptions for what is not published.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rdusim.core.errors import ConfigError
from rdusim.core.platforms import Platform, load_platform


@dataclass(frozen=True)
class RduChip:
    """One SN40L socket: compute, on-chip memory, off-chip tiers, links and launch costs (SI)."""

    pcus: int
    pmus: int
    sram_bytes: float
    peak_flops: float            # BF16 FLOP/s over all PCUs
    clock_hz: float
    pmu_bandwidth: float         # bytes/s one PMU reads plus writes
    simd_lanes: int
    simd_stages: int
    systolic_rows: int
    systolic_cols: int
    hbm_bytes: float
    hbm_bandwidth: float
    ddr_bytes: float
    ddr_bandwidth: float
    p2p_bandwidth: float
    p2p_latency: float
    host_link: float
    ddr_to_hbm: float
    stage_fill_cycles: float
    stream_tile_rows: int
    so_launch: float
    ho_launch: float
    op_config_bytes: float       # configuration of one operator's stage programs, loaded at each launch

    @property
    def pmu_bytes(self) -> float:
        """SRAM of one PMU (520 MiB / 1040 = 512 KiB)."""
        return self.sram_bytes / self.pmus

    @property
    def mm_flops_per_pcu(self) -> float:
        """Peak matmul FLOP/s of one PCU's systolic array."""
        return self.peak_flops / self.pcus

    @property
    def simd_elements_per_pcu(self) -> float:
        """Elements per second one PCU pushes through its SIMD pipeline (one pass of simd_stages ops)."""
        return self.simd_lanes * self.clock_hz

    @property
    def stage_fill_s(self) -> float:
        return self.stage_fill_cycles / self.clock_hz

    def launch_s(self, orchestration: str) -> float:
        """Per-kernel launch cost: software (``so``) or hardware (``ho``) orchestrated."""
        if orchestration == "so":
            return self.so_launch
        if orchestration == "ho":
            return self.ho_launch
        raise ConfigError("orchestration", orchestration, "so, ho")

    def config_s_per_op(self, orchestration: str) -> float:
        """Time to load one operator's configuration at a kernel launch: over the host link when the
        host orchestrates (``so``), from device memory (HBM) by the AGCUs when they do (``ho``)."""
        if orchestration == "so":
            return self.op_config_bytes / self.host_link
        if orchestration == "ho":
            return self.op_config_bytes / self.hbm_bandwidth
        raise ConfigError("orchestration", orchestration, "so, ho")

    def with_(self, **changes) -> "RduChip":
        """A copy with some values changed (what-if studies)."""
        return replace(self, **changes)

    @classmethod
    def from_platform(cls, platform: Platform | str = "sn40l", tp: int = 1) -> "RduChip":
        """Build from a platform (or its name); every key must be present in the file. ``tp``, the
        sockets one model spans, matters on a system of halves: a group wider than a half all-reduces
        across them (:func:`group_links`)."""
        p = load_platform(platform) if isinstance(platform, str) else platform
        if p.kind != "rdu":
            raise ConfigError("platform", p.name, "an RDU platform (kind: rdu)")
        d = p.dev
        p2p_bandwidth, p2p_latency = group_links(p, tp)
        return cls(
            pcus=int(d("pcus")), pmus=int(d("pmus")), sram_bytes=d("sram"), peak_flops=d("peak_bf16"),
            clock_hz=d("clock"), pmu_bandwidth=d("pmu_bandwidth"), simd_lanes=int(d("simd_lanes")),
            simd_stages=int(d("simd_stages")), systolic_rows=int(d("systolic_rows")),
            systolic_cols=int(d("systolic_cols")), hbm_bytes=d("hbm_capacity"), hbm_bandwidth=d("hbm_bandwidth"),
            ddr_bytes=d("ddr_capacity"), ddr_bandwidth=d("ddr_bandwidth"), p2p_bandwidth=p2p_bandwidth,
            p2p_latency=p2p_latency, host_link=d("host_link"), ddr_to_hbm=d("ddr_to_hbm"),
            stage_fill_cycles=d("stage_fill_cycles"), stream_tile_rows=int(d("stream_tile_rows")),
            so_launch=d("so_launch"), ho_launch=d("ho_launch"), op_config_bytes=d("op_config"),
        )


def group_links(p: Platform, tp: int) -> tuple[float, float]:
    """``(bandwidth, step latency)`` that the cost model's all-reduce (``2 (w-1)/w`` of the tensor per
    socket at the peer bandwidth, two latency-bound steps) should use for a group of ``tp`` sockets.

    Within a node (or a half of a system built of halves, ``node.half_sockets``) these are the socket's
    peer link values. A group spanning g halves of h sockets moves its bytes hierarchically: a
    reduce-scatter and an all-gather inside each half (``2 (h-1)/h`` of the tensor over the peer links)
    and an all-reduce of each socket's ``1/h`` chunk with its partners in the other halves over the
    cross-half link (``2 (g-1)/g`` of the chunk); the returned bandwidth gives that schedule's time for
    any tensor size. The two steps stay two, each as long as its slower link's step
    (``max(p2p_latency, cross_half_latency)``): the chunk exchange across the halves runs inside them.
    """
    bandwidth, latency = p.dev("p2p_bandwidth"), p.dev("p2p_latency")
    half = int(p.node.get("half_sockets", 0))
    if not half or tp <= half:
        return bandwidth, latency
    groups = math.ceil(tp / half)
    cross_bw = p.node.get("cross_half_bandwidth", bandwidth)
    seconds_per_byte = 2 * (half - 1) / half / bandwidth + 2 * (groups - 1) / groups / half / cross_bw
    return 2 * (tp - 1) / tp / seconds_per_byte, max(latency, p.node.get("cross_half_latency", latency))
