"""Beyond the article: CoE vs MoE on the three memory tiers (issue 21).

One node serves either a Composition of Experts (``experts`` whole Llama-2-7B models, each prompt
routed to one of them: :func:`rdusim.scenarios.coe.coe_latency`) or a mixture-of-experts model of similar
total parameters (DeepSeek-V3, 671B: experts inside every layer, :mod:`rdusim.scenarios.closed_form`).
For each batch: latency per output token (the request's whole time over its output tokens) and output
tokens per second of the node, with where the weights live: for the CoE, how many whole experts are in
HBM and how many in DDR (SN40L) or host DRAM (DGX); for the MoE, how many routed experts of each layer are
in HBM, and the weight gigabytes per device in HBM and in DDR.
"""
from __future__ import annotations

import pandas as pd

from benchmarks.moe import get_moe_model, param_count, zipf_popularity
from rdusim.core.platforms import load_platform
from rdusim.scenarios.closed_form import CLOSED_FORM_MODES, predict_closed_form
from rdusim.scenarios.coe import coe_latency, load_profile
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm
from benchmarks.models import get_model, param_count as dense_params

GB = 1e9


def coe_vs_moe(cfg: dict) -> pd.DataFrame:
    """The CoE vs MoE table for the config section ``coe_vs_moe`` (platforms, experts, moe_model,
    moe_precisions, batches, gen, profile) and the deployment keys of ``coe``."""
    c = cfg["coe_vs_moe"]
    dep = CoEDeployment.from_config(cfg.get("coe"))
    moe = get_moe_model(c["moe_model"])
    profile = load_profile(c["profile"])
    rows = []
    for platform in c["platforms"]:
        p = load_platform(platform)
        stack = profile.stack(p) or p.default_stack  # the MoE rows run on the CoE profile's stack: like with like
        tp = min(dep.tensor_parallel, p.devices)
        resident = experts_in_hbm(p, dep)
        slow = "DDR" if p.kind == "rdu" else "host DRAM"
        coe_params = c["experts"] * dense_params(get_model(dep.expert_model))
        for batch in c["batches"]:
            r = coe_latency(platform, c["experts"], batch, c["gen"], c["profile"], dep)
            total = r.total_s
            in_hbm = min(resident, c["experts"])
            rows.append({
                "platform": platform, "workload": f"CoE {c['experts']} x {dep.expert_model}", "kind": "CoE", "stack": stack,
                "precision": "bf16", "total_params_B": coe_params / GB, "batch": batch, "gen": c["gen"],
                "fits": r.fits, "reason": r.reason,
                "ms_per_token": total / c["gen"] * 1e3 if r.fits else float("nan"),
                "tokens_per_s_node": batch * c["gen"] / total if r.fits else float("nan"),
                "placement": f"{in_hbm} whole experts in HBM, {c['experts'] - in_hbm} in {slow}",
                "experts_in_hbm": in_hbm, "experts_total": c["experts"],
                "weights_hbm_GB_per_device": in_hbm * dep.expert_bytes / p.devices / GB,
                "weights_slow_GB_per_device": (c["experts"] - in_hbm) * dep.expert_bytes / p.devices / GB,
                "expected_experts_used": r.expected_distinct_experts, "basis": "predicted",
            })
        for precision in c["moe_precisions"]:
            for batch in c["batches"]:
                mode = CLOSED_FORM_MODES[p.kind][-1]
                r = predict_closed_form(platform, moe.name, batch, tp, dep.prompt_tokens, c["gen"], mode, precision,
                                        stack=stack)
                ok = r["fits"]
                total = r["ttft_s"] + c["gen"] * r["decode_s"]
                hot = r["hot_experts_in_hbm"]
                where = (f"{hot} of {moe.experts} routed experts per layer in HBM, {moe.experts - hot} in DDR"
                         if p.kind == "rdu" else f"all {moe.experts} routed experts per layer in HBM")
                rows.append({
                    "platform": platform, "workload": f"MoE {moe.name}", "kind": "MoE", "precision": precision, "stack": stack,
                    "total_params_B": param_count(moe) / GB, "batch": batch, "gen": c["gen"], "fits": ok,
                    "reason": r["reason"],
                    "ms_per_token": total / c["gen"] * 1e3 if ok else float("nan"),
                    "tokens_per_s_node": batch * c["gen"] / total if ok else float("nan"),
                    "placement": where if ok else "does not fit",
                    "experts_in_hbm": hot, "experts_total": moe.experts,
                    "weights_hbm_GB_per_device": r["weights_hbm_bytes_per_device"] / GB,
                    "weights_slow_GB_per_device": r["weights_ddr_bytes_per_device"] / GB,
                    "expected_experts_used": r["experts_touched"], "basis": "predicted",
                })
    return pd.DataFrame(rows)


def hot_experts_effect(cfg: dict) -> pd.DataFrame:
    """How the SN40L's decode step moves with ``hot_experts_in_hbm`` (routed experts per layer kept in HBM,
    most popular first), for the config section ``moe_hot_experts`` (platforms, model, precision, batches,
    hot, zipf, prompt, gen): step time, bytes a step streams from HBM and from DDR per socket, and the share
    of touched experts served from HBM. ``hot: max`` is as many as fit."""
    c = cfg["moe_hot_experts"]
    moe = get_moe_model(c["model"])
    rows = []
    for platform in c["platforms"]:
        tp = load_platform(platform).devices
        for zipf in c["zipf"]:
            pop = zipf_popularity(moe.experts, zipf) if zipf else None
            for batch in c["batches"]:
                for hot in c["hot"]:
                    h = None if hot == "max" else int(hot)
                    r = predict_closed_form(platform, moe.name, batch, tp, c["prompt"], c["gen"], "fused-ho", c["precision"],
                                            hot_experts_in_hbm=h, popularity=pop)
                    ok = r["fits"]
                    rows.append({
                        "platform": platform, "model": moe.name, "precision": c["precision"], "zipf": zipf,
                        "batch": batch, "hot_requested": hot, "hot_experts_in_hbm": r["hot_experts_in_hbm"],
                        "fits": ok, "reason": r["reason"],
                        "decode_ms_per_token": r["decode_s"] * 1e3 if ok else float("nan"),
                        "tokens_per_s_per_user": 1.0 / r["decode_s"] if ok else float("nan"),
                        "experts_touched": r["experts_touched"] if ok else float("nan"),
                        "hbm_GB_per_step_per_socket": r.get("decode_hbm_bytes", float("nan")) / GB,
                        "ddr_GB_per_step_per_socket": r.get("decode_ddr_bytes", float("nan")) / GB,
                        "weights_hbm_GB_per_socket": r["weights_hbm_bytes_per_device"] / GB,
                        "weights_ddr_GB_per_socket": r["weights_ddr_bytes_per_device"] / GB,
                        "basis": "predicted",
                    })
    return pd.DataFrame(rows)
