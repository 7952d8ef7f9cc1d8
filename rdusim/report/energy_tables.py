"""The article's comparison in energy and money: Table 2's scenarios and Fig. 8's footprint in joules per
token and dollars per million tokens, SN40L node vs DGX A100/H100/H200, with the SN40L node power at
which its energy per token would equal each DGX's (the break-even power).

Every SN40L energy figure rests on assumed socket and node power (``energy_basis``); the break-even
power says how far that assumption may move before the energy conclusion flips. Power and the
validation of the power model: :mod:`rdusim.core.power`, :mod:`rdusim.report.power_validation`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rdusim.core.platforms import load_platform
from rdusim.core.power import power_spec
from rdusim.report.coe_tables import TABLE2_METRICS, table2_experts
from rdusim.scenarios.coe import coe_latency
from rdusim.scenarios.coe_energy import coe_energy
from rdusim.scenarios.energy import node_price
from rdusim.scenarios.footprint import CoEDeployment, max_experts, nodes_needed

SCENARIOS = {k: v for k, v in TABLE2_METRICS.items() if v[0] == "overall"}  # the four overall cells
ENERGY_PROFILES = ("paper", "model")


def _dep(config: dict) -> CoEDeployment:
    return CoEDeployment.from_config(config["coe"])


def table2_energy(config: dict) -> pd.DataFrame:
    """``table2_energy.csv``: each overall Table 2 scenario (batch, tokens; the largest CoE every node
    hosts) under the ``paper`` and ``model`` profiles, per node: latency, average power, energy per batch
    and per token, tokens per joule, cost per million tokens; on DGX rows the ratios to the SN40L node
    and ``breakeven_sn40l_node_w``, the SN40L node's average power at which its energy per token equals
    that DGX's (its energy per batch over the SN40L's batch time)."""
    dep = _dep(config)
    rdu = config["platforms"]["rdu"][0]
    gpus = list(config["platforms"]["gpu"])
    n = table2_experts(config, dep)
    rows = []
    for profile in ENERGY_PROFILES:
        for scenario, (_, batch, gen) in SCENARIOS.items():
            ref = None
            for platform in [rdu, *gpus]:
                lat = coe_latency(platform, n, batch, gen, profile, dep)
                e = coe_energy(lat, dep)
                row = {"scenario": scenario, "profile": profile, "platform": platform, "experts": n, "batch": batch,
                       "gen": gen, "latency_s": lat.total_s, "router_s": lat.router_s, "switching_s": lat.switching_s,
                       "execution_s": lat.execution_s, **{k: e[k] for k in e}}
                if platform == rdu:
                    ref = row
                    row.update(energy_ratio_vs_sn40l=1.0, cost_ratio_vs_sn40l=1.0, breakeven_sn40l_node_w=np.nan)
                else:
                    row.update(energy_ratio_vs_sn40l=row["energy_j_per_token"] / ref["energy_j_per_token"],
                               cost_ratio_vs_sn40l=row["cost_usd_per_mtok"] / ref["cost_usd_per_mtok"],
                               breakeven_sn40l_node_w=row["energy_j"] / ref["latency_s"])
                rows.append(row)
    out = pd.DataFrame(rows)
    out["sn40l_assumed_node_w"] = out.groupby(["profile", "scenario"])["avg_power_w"].transform("first")
    return out


def fig8_energy(config: dict, profile: str = "paper", batch: int = 8, gen: int = 20) -> pd.DataFrame:
    """``fig8_energy.csv``: Fig. 8's footprint in energy and money. For N experts each platform needs
    ``nodes`` nodes (Fig. 8); they serve one stream of CoE batches (``batch`` prompts, ``gen`` tokens, the
    ``profile``), one node busy at a time on its share of the experts while the others idle, so per batch
    energy = busy node's energy + (nodes - 1) x idle node power x batch time, and cost = nodes x price x
    batch time."""
    dep = _dep(config)
    platforms = [*config["platforms"]["rdu"], *config["platforms"]["gpu"]]
    top = int(config["coe"]["experts_max"])
    counts = sorted({int(round(v)) for v in np.geomspace(1, top, 16)} | {850, top})
    rows = []
    for platform in platforms:
        p = load_platform(platform)
        spec = power_spec(p)
        price, price_basis = node_price(platform)
        limit = max_experts(p, dep)
        for experts in counts:
            k = nodes_needed(experts, p, dep)
            if not k:
                continue
            per_node = math.ceil(experts / k)
            lat = coe_latency(platform, min(per_node, limit), batch, gen, profile, dep)
            e = coe_energy(lat, dep)
            energy = e["energy_j"] + (k - 1) * spec.node_idle_w * lat.total_s
            tokens = batch * gen
            rows.append({"platform": platform, "experts": experts, "nodes": k, "experts_per_node": per_node,
                         "profile": profile, "batch": batch, "gen": gen, "batch_latency_s": lat.total_s,
                         "busy_node_w": e["avg_power_w"], "idle_node_w": spec.node_idle_w,
                         "footprint_avg_power_w": energy / lat.total_s, "energy_j": energy,
                         "energy_j_per_token": energy / tokens, "tokens_per_joule": tokens / energy,
                         "price_usd_per_hour": price, "cost_usd_per_mtok": k * price / 3600.0 * lat.total_s / tokens * 1e6,
                         "energy_basis": e["energy_basis"], "price_basis": price_basis})
    return pd.DataFrame(rows)
