"""Samba-CoE latency: a router and N experts on one node (article, "Composition of Experts").

A batch of B prompts (over the whole CoE) runs the router on all prompts; each prompt goes to one
expert (uniform by default, or any popularity vector); the distinct experts needed are made resident
in HBM (copied from DDR on the SN40L, from host DRAM on a DGX, when not already there); each runs its
prompts as one sub-batch for G output tokens, one expert after another, every model tensor-parallel
over the node. Router and KV cache stay in HBM. HBM holds the ``experts_in_hbm`` most popular experts
(or, under a profile with ``spilled: copy_every_use``, only the experts of the batch once they spill);
past the node's capacity (``max_experts``) the configuration is OOM.

The latency is the exact expectation over routing draws: with p_e the probability that a prompt
picks expert e, the count of prompts on e is Binomial(B, p_e), so

    E[execution] = sum_e sum_{b>=1} P(count_e = b) * t_expert(b)
    E[switching] = sum_{e not resident} (1 - (1 - p_e)^B) * expert bytes / copy bandwidth

(every e once the experts outgrow HBM under ``copy_every_use``). A profile may replace the platform
model's expert time by a published one (the GPUs under ``paper``) and names the serving stack of each
platform kind (``rdu_stack``, ``gpu_stack``: ``rdusim/data/stacks``), whose runtime work every model
call then pays as ``rdusim predict --stack`` does (:func:`expert_latency_s`, :func:`router_latency_s`).
On the SN40L two rules say where the stack's per-request work falls (issue 20, from the article's
evidence): the router's call pays its passes but not a request of its own (``rdu_router_request``:
the article's "under 50 experts" curves are as far apart as the experts alone), and a batch that
copies experts into HBM pays one request's work for the copy (``rdu_copy_request``: Table 2's overall
cells hold that much beyond the experts and the copy).

:func:`sample_latency` draws routings with a seed to check the expectation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from baselines.gpu import GpuConstants, GpuDevice
from baselines.published import NEMO_GPUS, nemo_latency_s
from benchmarks.models import get_model
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.checks import whole
from rdusim.core.errors import ConfigError
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import Platform, load_platform
from rdusim.core.stacks import list_stacks, load_stack
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm, max_experts
from rdusim.scenarios.predict import clears_with_gpu_constants, predict, predict_one

PROFILES_FILE = DATA_DIR / "coe_profiles.yaml"
GPU_COPIES = ("node_one_link_datasheet", "per_gpu_pinned", "per_gpu_pageable")
RDU_COPIES = ("per_device_ddr_to_hbm",)
# Once a CoE has more experts than HBM holds: `keep_most_popular` keeps the most popular experts
# resident and copies only the others; `copy_every_use` copies every expert a batch uses (HBM only
# stages the batch's experts), the article's arithmetic, which makes latency jump where experts first
# spill ("latency spikes on DGXs (around 50 7B experts)") and makes "BS=8 ... copy a larger number of experts".
SPILL_POLICIES = ("keep_most_popular", "copy_every_use")
# Bounds of a CoE query, (largest, why). The expectation evaluates every sub-batch size 1..B (one
# prediction each), and holds one row of probabilities per expert.
COE_LIMITS = {
    "experts": (100_000, "experts in one CoE"),
    "batch": (1024, "prompts per CoE batch; every sub-batch size is evaluated"),
    "gen": (2**31, "output tokens"),
}


def binomial_pmf(n: int, p: np.ndarray) -> np.ndarray:
    """``(len(p), n + 1)``: the probability that ``k`` of ``n`` independent prompts pick an expert of
    routing probability ``p[i]``, ``k = 0..n`` (binomial: C(n, k) p^k (1 - p)^(n - k))."""
    k = np.arange(n + 1)
    comb = np.array([math.comb(n, j) for j in k], dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)[:, None]
    return comb * p ** k * (1.0 - p) ** (n - k)


@dataclass(frozen=True)
class Profile:
    """How experts run and move on each kind of platform (``rdusim/data/coe_profiles.yaml``)."""

    name: str
    gpu_execution: str
    rdu_execution: str
    gpu_copy: str
    rdu_copy: str
    gpu_published: tuple = ()       # (DGX platform, GPU column of the published NeMo table) pairs
    rdu_stack: str = "kernels"      # the SN40L's serving stack (rdusim/data/stacks): its runtime work per call
    gpu_stack: str | None = None    # the GPUs' stack; None: the platform's default stack for gpu_execution
    rdu_router_request: bool = True  # the SN40L router call pays the stack's per-request work
    rdu_copy_request: bool = False  # a batch that copies experts into HBM pays one request's work (SN40L)
    spilled: str = "keep_most_popular"  # which experts stay in HBM once the CoE outgrows it (SPILL_POLICIES)
    why_differs: tuple = ()         # (cell kind or "", sentence) pairs: why results differ from the article's
    description: str = ""           # what the profile assumes, in a few words

    def why(self, kind: str) -> str:
        """Why a Table 2 cell of this ``kind`` (overall, expert, switching) differs from the article's
        under this profile: the sentence for that kind, else the profile's one sentence, else ''."""
        reasons = dict(self.why_differs)
        return reasons.get(kind, reasons.get("", ""))

    def execution(self, platform: Platform) -> str:
        return self.gpu_execution if platform.kind == "gpu" else self.rdu_execution

    def stack(self, platform: Platform) -> str | None:
        """The serving stack the profile runs on ``platform`` (None: the platform's default for its execution)."""
        return self.gpu_stack if platform.kind == "gpu" else self.rdu_stack


WHY_KINDS = ("overall", "expert", "switching")


def _why_pairs(name: str, why) -> tuple:
    """``why_differs`` of a profile: one sentence for every cell, or a mapping of cell kind to sentence."""
    if isinstance(why, str):
        return (("", why),) if why else ()
    if isinstance(why, dict) and set(why) <= set(WHY_KINDS) and all(isinstance(v, str) for v in why.values()):
        return tuple(sorted(why.items()))
    raise ConfigError(f"profile {name}.why_differs", why, "one sentence, or a mapping of " + ", ".join(WHY_KINDS)
                      + " to a sentence")


def load_profile(name: str) -> Profile:
    """A named assumption profile; unknown names (or a name that is not a str) list the allowed ones."""
    if not isinstance(name, str):
        raise ConfigError("profile", type(name).__name__, "a profile name (a str): " + ", ".join(profile_names()))
    return _load_profile(name)


def profile_names() -> list[str]:
    """Names of the assumption profiles in coe_profiles.yaml."""
    return list(mapping("coe profiles", load_yaml(PROFILES_FILE, "coe profiles"), "a mapping of profiles"))


@lru_cache(maxsize=None)
def _load_profile(name: str) -> Profile:
    profiles = mapping("coe profiles", load_yaml(PROFILES_FILE, "coe profiles"), "a mapping of profiles")
    if not isinstance(name, str) or name not in profiles:
        raise ConfigError("profile", name, ", ".join(profiles))
    p = profiles[name]
    published = p.get("gpu_published") or None
    if published is not None and (not isinstance(published, dict)
                                  or not set(published.values()) <= set(NEMO_GPUS)):
        raise ConfigError(f"profile {name}.gpu_published", published, "a mapping of platform name to " + ", ".join(NEMO_GPUS))
    prof = Profile(name, p["gpu_execution"], p["rdu_execution"], p["gpu_copy"], p["rdu_copy"],
                   tuple(sorted((published or {}).items())), str(p.get("rdu_stack", "kernels")), p.get("gpu_stack"),
                   bool(p.get("rdu_router_request", True)), bool(p.get("rdu_copy_request", False)),
                   p.get("spilled", "keep_most_popular"), _why_pairs(name, p.get("why_differs", "")),
                   p.get("description", ""))
    for kind in ("rdu", "gpu"):
        stack = prof.rdu_stack if kind == "rdu" else prof.gpu_stack
        if stack is not None:
            try:
                st = load_stack(stack)
            except ConfigError as err:
                raise ConfigError(f"profile {name}.{kind}_stack", stack, err.allowed) from None
            if not st.runs_on(kind):
                raise ConfigError(f"profile {name}.{kind}_stack", stack, f"a stack for {kind} platforms: "
                                  + ", ".join(list_stacks(kind)))
    if prof.spilled not in SPILL_POLICIES:
        raise ConfigError(f"profile {name}.spilled", prof.spilled, ", ".join(SPILL_POLICIES))
    if prof.gpu_copy not in GPU_COPIES:
        raise ConfigError(f"profile {name}.gpu_copy", prof.gpu_copy, ", ".join(GPU_COPIES))
    if prof.rdu_copy not in RDU_COPIES:
        raise ConfigError(f"profile {name}.rdu_copy", prof.rdu_copy, ", ".join(RDU_COPIES))
    return prof


def switch_bandwidth(platform: Platform, profile: Profile, tp: int) -> float:
    """Bytes/s at which a node makes one expert resident in HBM (all ``tp`` shards together).

    SN40L: each socket copies its shard from its own DDR (``ddr_to_hbm`` per socket). GPU: per the
    profile, one datasheet PCIe link for the whole node (the article), or every GPU over its own link
    at the measured pinned or pageable host-copy rate.
    """
    if platform.kind == "rdu":
        return tp * platform.dev("ddr_to_hbm")
    if profile.gpu_copy == "node_one_link_datasheet":
        return platform.dev("host_link")

    dev = GpuDevice.from_platform(platform, GpuConstants.load())
    if profile.gpu_copy == "per_gpu_pinned":
        per_gpu = dev.host_link_pinned if "h2d_pinned" in platform.device else dev.host_link * _h100_ratio("h2d_pinned")
    else:
        per_gpu = dev.host_link_pageable if "h2d_pageable" in platform.device else dev.host_link * _h100_ratio("h2d_pageable")
    return tp * per_gpu


def switch_source(platform: Platform, profile: Profile) -> str:
    """Where :func:`switch_bandwidth` takes a node's expert-copy rate from under ``profile`` (the same
    branches, in words)."""
    if platform.kind == "rdu":
        return "datasheet DDR-to-HBM rate per socket"
    if profile.gpu_copy == "node_one_link_datasheet":
        return "datasheet host link, one for the node"
    key = "h2d_pinned" if profile.gpu_copy == "per_gpu_pinned" else "h2d_pageable"
    kind = key.split("_")[1]
    if key in platform.device:
        return f"measured {kind} host copy, per GPU"
    return f"datasheet host link x the H100's measured {kind} ratio, per GPU"


@lru_cache(maxsize=None)
def _h100_ratio(key: str) -> float:
    """Measured / datasheet host-link rate on the one GPU that was measured (H100 SXM)."""
    h100 = load_platform("h100-sxm")
    return h100.dev(key) / h100.dev("host_link")


def request_work_s(platform: Platform, profile: Profile) -> float:
    """Seconds of the per-request work of the stack the profile runs on an SN40L platform (its
    ``request_us``; 0 on GPUs, where no charging rule moves it): what the router's call is spared
    (``rdu_router_request: false``) and what a batch's expert copy pays (``rdu_copy_request``)."""
    if platform.kind != "rdu":
        return 0.0
    return load_stack(profile.rdu_stack).request


def router_request_s(platform: Platform, profile: Profile) -> float:
    """The per-request work the router's call pays beyond its passes (the stack's, unless the profile
    spares the SN40L router it)."""
    return 0.0 if platform.kind == "rdu" and not profile.rdu_router_request else request_work_s(platform, profile)


def copy_request_s(platform: Platform, profile: Profile) -> float:
    """The work one copy of experts into HBM pays besides its bytes (one request's, where the profile says so)."""
    return request_work_s(platform, profile) if platform.kind == "rdu" and profile.rdu_copy_request else 0.0


def published_latency_s(platform_name: str, profile: Profile, model: str, tp: int, batch: int, prompt: int,
                        gen: int) -> float | None:
    """The published latency of one expert call where the profile uses published numbers and the
    table has that point (the article's method: NeMo's TensorRT-LLM latencies [A ref. 10]), else None."""
    gpu = dict(profile.gpu_published).get(platform_name)
    return None if gpu is None else nemo_latency_s(gpu, model, tp, batch, prompt, gen)


def expert_latency_s(platform_name: str, dep: CoEDeployment, profile: Profile, gen: int, max_batch: int) -> np.ndarray:
    """``t[b]``, b = 0..max_batch: seconds for one expert to serve a sub-batch of b prompts (its prompt
    pass and ``gen`` tokens) under ``profile``: ``rdusim predict``'s total in the profile's stack (kernels
    and the stack's runtime work), replaced by the published latency where the profile uses one."""
    platform = load_platform(platform_name)
    tp = min(dep.tensor_parallel, platform.devices)
    t = expert_times_ms(platform_name, dep.expert_model, tp, dep.prompt_tokens, gen, profile.execution(platform),
                        max_batch, profile.stack(platform)) / 1e3
    for b in range(1, max_batch + 1):
        published = published_latency_s(platform_name, profile, dep.expert_model, tp, b, dep.prompt_tokens, gen)
        if published is not None:
            t[b] = published
    return t


def expert_source(platform_name: str, dep: CoEDeployment, profile: Profile, gen: int, batch: int) -> str:
    """Where :func:`expert_latency_s` takes a sub-batch of ``batch`` from: ``published`` or ``model``."""
    platform = load_platform(platform_name)
    tp = min(dep.tensor_parallel, platform.devices)
    hit = published_latency_s(platform_name, profile, dep.expert_model, tp, batch, dep.prompt_tokens, gen)
    return "model" if hit is None else "published"


def router_latency_s(platform_name: str, dep: CoEDeployment, profile: Profile, batch: int) -> float:
    """Seconds of the router's prompt pass over a batch of ``batch`` prompts under ``profile``: its time to
    first token in the profile's stack, less the stack's per-request work where the profile spares the
    router it (:func:`router_request_s`)."""
    platform = load_platform(platform_name)
    tp = min(dep.tensor_parallel, platform.devices)
    stack = profile.stack(platform)
    t = _router_ttft_ms(platform_name, dep.router_model, tp, dep.prompt_tokens, profile.execution(platform), batch,
                        stack) / 1e3
    return t - request_work_s(platform, profile) + router_request_s(platform, profile)


@clears_with_gpu_constants
@lru_cache(maxsize=4096)
def expert_times_ms(platform: str, model: str, tp: int, prompt: int, gen: int, execution: str,
                    max_batch: int, stack: str | None = None) -> np.ndarray:
    """``t[b]`` = time (ms) for one expert to serve a sub-batch of b prompts: its prompt pass plus G
    decode steps (``rdusim predict``'s total_ms in ``stack``; None: the platform's default stack for
    ``execution``), for b = 0..max_batch (t[0] = 0)."""
    rows = pd.DataFrame({"platform": platform, "model": model, "batch": np.arange(1, max_batch + 1), "tp": tp,
                         "prompt": prompt, "gen": gen, "execution": execution, "stack": stack})
    out = predict(rows)
    times = np.concatenate([[0.0], out["total_ms"].to_numpy()])
    if not out["fits"].all():
        times[1:][~out["fits"].to_numpy()] = np.inf
    return times


@dataclass(frozen=True)
class CoELatency:
    """Expected latency of one CoE batch and its parts (seconds)."""

    platform: str
    experts: int
    batch: int
    gen: int
    profile: str
    fits: bool
    reason: str
    router_s: float
    switching_s: float
    execution_s: float
    expected_distinct_experts: float
    expected_misses: float
    experts_in_hbm: int

    @property
    def total_s(self) -> float:
        return self.router_s + self.switching_s + self.execution_s

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_s"] = self.total_s
        return d


def _popularity(n: int, popularity) -> np.ndarray:
    if popularity is None:
        return np.full(n, 1.0 / n)
    try:
        p = np.asarray(popularity, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("popularity", type(popularity).__name__, f"{n} non-negative weights, not all zero") from None
    if p.shape != (n,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ConfigError("popularity", f"{p.shape} values", f"{n} non-negative weights, not all zero")
    return np.sort(p / p.sum())[::-1]


def coe_latency(platform_name: str, experts: int, batch: int, gen: int, profile: str = "paper",
                dep: CoEDeployment | None = None, popularity=None) -> CoELatency:
    """Expected latency of a CoE batch of ``batch`` prompts over ``experts`` experts on one node.

    See the module docstring for the model. Out-of-memory configurations return ``fits=False``.
    """
    for field, value in (("experts", experts), ("batch", batch), ("gen", gen)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(field, value, f"a whole number from 1 to {COE_LIMITS[field][0]:,}")
        whole(field, value, 1, *COE_LIMITS[field])
    if dep is not None and not isinstance(dep, CoEDeployment):
        raise ConfigError("dep", type(dep).__name__, "a CoEDeployment or None (the defaults of coe_defaults.yaml)")
    dep = dep or CoEDeployment.from_config()
    prof = load_profile(profile)
    platform = load_platform(platform_name)
    expert = get_model(dep.expert_model)
    if expert.context_window and dep.prompt_tokens + gen > expert.context_window:
        raise ConfigError("gen", gen, f"at most {expert.context_window - dep.prompt_tokens:,} (the context window of "
                          f"{dep.expert_model}, {expert.context_window:,} tokens, less the {dep.prompt_tokens}-token prompt)")
    tp = min(dep.tensor_parallel, platform.devices)
    resident = experts_in_hbm(platform, dep)
    limit = max_experts(platform, dep)
    nan = float("nan")
    if experts > limit:
        where = "HBM + DDR" if platform.kind == "rdu" else "HBM + host DRAM"
        return CoELatency(platform_name, experts, batch, gen, profile, False,
                          f"{experts} experts > {limit} that fit in {where}", nan, nan, nan, nan, nan, resident)
    execution = prof.execution(platform)
    oom = lambda reason: CoELatency(platform_name, experts, batch, gen, profile, False, reason,  # noqa: E731
                                    nan, nan, nan, nan, nan, resident)
    router_s = router_latency_s(platform_name, dep, prof, batch)
    if not np.isfinite(router_s):
        why = predict_one(platform_name, dep.router_model, batch, tp, dep.prompt_tokens, 1, execution,
                          stack=prof.stack(platform))["reason"]
        return oom(f"the router ({dep.router_model}) at batch {batch} does not fit: {why or 'no finite time'}")
    t = expert_latency_s(platform_name, dep, prof, gen, batch)
    p = _popularity(experts, popularity)
    execution_s, used, reached = _expectation(p, batch, t)
    bad = np.flatnonzero(~np.isfinite(t[1:]) & (reached > 0)) + 1
    if bad.size:
        b = int(bad[0])
        why = predict_one(platform_name, dep.expert_model, b, tp, dep.prompt_tokens, gen, execution,
                          stack=prof.stack(platform))["reason"]
        return oom(f"an expert sub-batch of {b} prompts does not fit: {why or 'no finite time'}")
    misses = expected_copies(used, resident, prof)
    switching_s = (misses * dep.expert_bytes / switch_bandwidth(platform, prof, tp)
                   + copy_probability(p, batch, resident, prof) * copy_request_s(platform, prof))
    if not all(np.isfinite(v) and v >= 0 for v in (router_s, switching_s, execution_s, misses)):
        return oom("no finite time (the platform's values give an infinite or undefined time)")
    return CoELatency(platform_name, experts, batch, gen, profile, True, "", router_s, switching_s, execution_s,
                      float(used.sum()), misses, resident)


def expected_copies(used: np.ndarray, resident: int, profile: Profile) -> float:
    """Expected experts copied into HBM for one batch: ``used[e]`` is the probability that the batch
    uses expert e (most popular first), ``resident`` how many experts HBM holds besides the router
    and the KV cache. Nothing is copied while every expert fits; past that, per ``profile.spilled``,
    the experts beyond the ``resident`` most popular ones, or every expert the batch uses."""
    if len(used) <= resident:
        return 0.0
    return float(np.sum(used if profile.spilled == "copy_every_use" else used[resident:]))


def copy_probability(p: np.ndarray, batch: int, resident: int, profile: Profile) -> float:
    """Probability that a batch of ``batch`` prompts copies at least one expert into HBM (``p``: routing
    probabilities, most popular first): none while every expert fits; past that every batch under
    ``copy_every_use``, else a batch with a prompt for an expert beyond the ``resident`` most popular."""
    if len(p) <= resident:
        return 0.0
    if profile.spilled == "copy_every_use":
        return 1.0
    return float(1.0 - (1.0 - min(1.0, float(np.sum(p[resident:])))) ** batch)


def _expectation(p: np.ndarray, batch: int, t: np.ndarray, chunk: int = 4096) -> tuple[float, np.ndarray, np.ndarray]:
    """E[execution] (sum over experts and sub-batch sizes b of P(count_e = b) t[b]), each expert's
    probability of being used, and the expected number of experts with b prompts (b = 1..B, > 0 where
    that sub-batch size can occur). Experts are taken in chunks so memory stays bounded."""
    finite_t = np.where(np.isfinite(t), t, 0.0)
    execution_s, used, reached = 0.0, [], np.zeros(batch)
    for lo in range(0, len(p), chunk):
        pmf = binomial_pmf(batch, p[lo:lo + chunk])   # experts x (0..B)
        execution_s += float(np.sum(pmf[:, 1:] @ finite_t[1:]))
        used.append(1.0 - pmf[:, 0])
        reached += pmf[:, 1:].sum(axis=0)
    return execution_s, np.concatenate(used), reached


@clears_with_gpu_constants
@lru_cache(maxsize=1024)
def _router_ttft_ms(platform: str, model: str, tp: int, prompt: int, execution: str, batch: int,
                    stack: str | None = None) -> float:
    """The router's prompt pass over the whole batch in ``stack`` (it picks an expert from its first output)."""
    out = predict_one(platform, model, batch, tp, prompt, 1, execution, stack=stack)
    return out["ttft_ms"] if out["fits"] else float("inf")


def sample_latency(platform_name: str, experts: int, batch: int, gen: int, profile: str = "paper",
                   dep: CoEDeployment | None = None, popularity=None, samples: int = 20000, seed: int = 0) -> float:
    """Monte-Carlo mean total latency (s) over ``samples`` seeded routing draws (checks :func:`coe_latency`)."""
    exact = coe_latency(platform_name, experts, batch, gen, profile, dep, popularity)
    if not exact.fits:
        return float("nan")
    dep = dep or CoEDeployment.from_config()
    prof = load_profile(profile)
    platform = load_platform(platform_name)
    tp = min(dep.tensor_parallel, platform.devices)
    t = expert_latency_s(platform_name, dep, prof, gen, batch)
    p = _popularity(experts, popularity)
    rng = np.random.default_rng(seed)
    picks = rng.choice(experts, size=(samples, batch), p=p)
    copy_s = dep.expert_bytes / switch_bandwidth(platform, prof, tp)
    copy_request = copy_request_s(platform, prof)
    total = np.empty(samples)
    for s in range(samples):
        ids, counts = np.unique(picks[s], return_counts=True)
        if experts <= exact.experts_in_hbm:
            copies = 0
        elif prof.spilled == "copy_every_use":
            copies = len(ids)
        else:
            copies = np.count_nonzero(ids >= exact.experts_in_hbm)
        total[s] = t[counts].sum() + copies * copy_s + (copy_request if copies else 0.0)
    return float(total.mean() + exact.router_s)
