"""The closed-form layer model: mixture-of-experts models and non-BF16 formats on GPUs and the SN40L.

``predict`` sends a row here when its model is a mixture of experts (``benchmarks/data/moe_models.yaml``)
or its weights or KV cache are not BF16; dense BF16 rows keep the operator-graph templates of
:mod:`rdusim.scenarios.predict`. A pass is costed part by part (attention, dense MLP or experts, head),
each part at the longer of its matmul FLOPs over the format's GEMM rate and its bytes over the streaming
rate, the same roofline the graph paths use per kernel, with the same platform files and GPU constants:

* Bytes per weight and per KV value come from ``rdusim/data/precisions.yaml``; on a GPU the GEMM rate is
  the BF16 rate of the mode (measured or carried GEMM rate x fitted efficiency) times the datasheet ratio
  of the format's peak (``peak_fp8`` / ``peak_bf16``) times the format's fitted efficiency relative to
  BF16 (:func:`baselines.gpu.format_gemm_rate`; FP8 and INT8: ``fp8_gemm_efficiency_vs_bf16_fraction``) -
  FP8 on an H100 streams half the weight bytes of BF16 and reaches 2 x that fraction of its GEMM rate.
  The SN40L's matmuls run at its platform file's rate of the format. Embedding, LM head and activations
  stay BF16.
* Experts: a decode step of ``B`` sequences touches ``sum_e 1 - (1 - q_e)^B`` routed experts per MoE
  layer (:func:`benchmarks.moe.expected_distinct_experts`), so expert bytes grow with the batch until
  every expert is read. Experts are spread over the ``tp`` devices (expert parallelism, each device
  holding ``experts / tp`` of every layer; balanced load is assumed); attention, dense MLPs and shared
  experts are tensor-parallel. Tokens reach their experts and come back by two all-to-alls
  (dispatch, combine), each with one collective latency and ``(w - 1)/w`` of the routed activations
  over NVLink (GPU) or the peer links (SN40L); attention ends with an all-reduce.
* GPU: every weight and the KV cache in HBM (else ``fits: false``), kernel fixed costs (the packaged
  kernel counts per layer, ``rdusim/data/layer_model.yaml``), an engine's work per step and request.
* SN40L: KV cache in HBM; the non-expert weights in the rest of HBM (any excess from DDR); then the
  ``hot_experts_in_hbm`` most popular routed experts of every MoE layer in HBM (default: as many as
  fit) and the others in DDR. A step streams the touched hot experts at the HBM rate and the touched
  cold ones at the DDR rate, concurrently (the SN40L kernel cost of :mod:`rdusim.sn40l.cost`):
  ``max(HBM bytes / HBM bw, DDR bytes / DDR bw, P2P bytes / P2P bw)`` against compute at the systolic
  utilisation of the tokens each matmul sees, plus the launch per kernel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from baselines.gpu import GpuDevice, format_gemm_rate
from benchmarks.decoder import allreduces_per_pass
from benchmarks.models import ModelConfig, decoder_layer_params, get_model, load_models
from benchmarks.moe import (
    MoeConfig,
    attention_params,
    busy_devices,
    expert_params,
    get_moe_model,
    inclusion_probabilities,
    is_moe,
    load_moe_models,
    router_params,
    touch_probabilities,
)
from benchmarks.moe import param_count as moe_param_count
from benchmarks.models import param_count as dense_param_count
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import load_platform
from rdusim.core.precision import gemm_peak, kv_precision, weight_precision
from rdusim.core.stacks import Stack, load_stack, resolve_stack
from rdusim.scenarios.predict_light import gpu_constants
from rdusim.sn40l.chip import RduChip

LAYER_MODEL_FILE = DATA_DIR / "layer_model.yaml"
CLOSED_FORM_MODES = {"gpu": ("cuda-graph", "fused"), "rdu": ("fused-so", "fused-ho")}


@lru_cache(maxsize=None)
def layer_constants() -> dict:
    """The assumed kernel counts and BF16 parts of the closed-form model (``layer_model.yaml``)."""
    raw = mapping("layer model", load_yaml(LAYER_MODEL_FILE, "layer model"), "a mapping with assumed")["assumed"]
    return {k.rsplit("_count", 1)[0].rsplit("_bytes_per_value", 1)[0]: v for k, v in raw.items()}


@dataclass(frozen=True)
class Arch:
    """What the closed-form model needs of one model, dense or MoE (parameters per layer part)."""

    name: str
    layers: int
    dense_layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    attn_params: int
    kv_values_layer: int      # KV-cache values one token adds to one layer
    kv_split_by_heads: bool   # GQA: KV heads split over TP; MLA: the latent is whole on every device
    attn_pos_flops: float     # attention FLOPs per token and attended position, all heads
    dense_mlp_params: int
    experts: int
    top_k: int
    shared_experts: int
    expert_params: int
    router_params: int
    embed_params: int
    head_params: int
    norm_params: int
    total_params: int
    sliding_window: int | None
    context_window: int

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers


@lru_cache(maxsize=None)
def arch_of(model: str) -> Arch:
    """The :class:`Arch` of a model of either zoo."""
    if is_moe(model):
        m: MoeConfig = get_moe_model(model)
        if m.attention == "mla":
            kv_layer = m.kv_lora_rank + m.qk_rope_head_dim
            pos_flops = m.heads * (2.0 * (m.kv_lora_rank + m.qk_rope_head_dim) + 2.0 * m.kv_lora_rank)
        else:
            kv_layer = 2 * m.kv_heads * m.head_dim
            pos_flops = 4.0 * m.q_dim
        return Arch(m.name, m.layers, m.dense_layers, m.hidden, m.heads, m.kv_heads, m.vocab, attention_params(m),
                    kv_layer, m.attention != "mla", pos_flops, 3 * m.hidden * m.ffn, m.experts, m.top_k,
                    m.shared_experts, expert_params(m), router_params(m), m.vocab * m.hidden,
                    0 if m.tied_embeddings else m.vocab * m.hidden, (2 * m.layers + 1) * m.hidden, moe_param_count(m),
                    m.sliding_window, m.context_window)
    m: ModelConfig = get_model(model)
    parts = decoder_layer_params(m)
    total = dense_param_count(m)
    head = 0 if m.tied_embeddings else m.vocab * m.hidden
    return Arch(m.name, m.layers, m.layers, m.hidden, m.heads, m.kv_heads, m.vocab, parts["attention"],
                2 * m.kv_dim, True, 4.0 * m.q_dim, parts["mlp"], 0, 0, 0, 0, 0, total - m.layers * (
                    parts["attention"] + parts["mlp"] + parts["norms"]) - head, head, m.layers * parts["norms"], total,
                m.sliding_window, m.context_window)


def known_model(model) -> bool:
    """Whether ``model`` names a model of either zoo (or an MoE config.json)."""
    return isinstance(model, str) and (model in load_models() or is_moe(model))


def _check_tp(a: Arch, tp: int) -> None:
    for field, total in (("heads", a.heads), ("vocab", a.vocab)):
        if total % tp:
            raise ConfigError("tp", tp, f"a divisor of {a.name}.{field} = {total}")
    if a.experts and a.experts % tp and tp % a.experts:
        raise ConfigError("tp", tp, f"a divisor or a multiple of {a.name}.experts = {a.experts} (expert parallelism)")


@dataclass
class Placement:
    """Bytes one device holds, where (SN40L: HBM or DDR), and how many experts per layer are hot."""

    fits: bool
    reason: str
    weights: float
    kv: float
    nonexpert: float
    experts: float
    hbm_fraction_nonexpert: float
    hot_experts: int


def weight_bytes_total(model: str, precision: str) -> float:
    """Bytes of every weight of ``model`` in ``precision`` (embedding and LM head in BF16)."""
    a = arch_of(model)
    wb = weight_precision(precision).bytes_per_value
    hb = layer_constants()["head"]
    return (a.total_params - a.embed_params - a.head_params) * wb + (a.embed_params + a.head_params) * hb


def _device_bytes(a: Arch, tp: int, wb: float, kvb: float, batch: float, positions: float) -> tuple[float, float, float]:
    """(non-expert weights, routed-expert weights, KV cache) bytes on one of ``tp`` devices."""
    hb = layer_constants()["head"]
    body = a.layers * a.attn_params + a.dense_layers * a.dense_mlp_params + a.moe_layers * (
        a.shared_experts * a.expert_params + a.router_params) + a.norm_params
    nonexpert = body * wb / tp + a.embed_params * hb + a.head_params * hb / tp   # embedding replicated
    experts = a.moe_layers * a.experts * a.expert_params * wb / tp
    if a.sliding_window:
        positions = min(positions, a.sliding_window)
    per_layer = a.kv_values_layer
    if a.kv_split_by_heads and tp > 1:
        per_layer = a.kv_values_layer * max(1, a.kv_heads // tp) / a.kv_heads
    kv = a.layers * per_layer * kvb * batch * positions
    return nonexpert, experts, kv


def place(platform: str, a: Arch, tp: int, precision: str, kv_prec: str, batch: int, positions: int,
          hot_experts_in_hbm: int | None = None) -> Placement:
    """Where one device's weights and KV cache go (see the module docstring); ``fits: false`` with a reason."""
    p = load_platform(platform)
    wb = weight_precision(precision).bytes_per_value
    kvb = kv_precision(kv_prec).bytes_per_value
    nonexpert, experts, kv = _device_bytes(a, tp, wb, kvb, batch, positions)
    hbm = p.dev("hbm_capacity")
    weights = nonexpert + experts
    gb = 1e9
    if p.kind == "gpu":
        if hot_experts_in_hbm is not None:
            raise ConfigError("hot_experts_in_hbm", hot_experts_in_hbm, "only on an SN40L platform (a GPU holds every expert in HBM)")
        ok = weights + kv <= hbm
        why = "" if ok else (f"needs {(weights + kv) / gb:.1f} GB per device (weights {weights / gb:.1f}, KV {kv / gb:.1f})"
                             f" > {hbm / gb:.0f} GB HBM")
        return Placement(ok, why, weights, kv, nonexpert, experts, 1.0, a.experts)
    ddr = p.device.get("ddr_capacity", 0.0)
    if kv > hbm:
        return Placement(False, f"KV cache {kv / gb:.1f} GB per socket > {hbm / gb:.0f} GB HBM", weights, kv, nonexpert,
                         experts, 0.0, 0)
    if weights + kv > hbm + ddr:
        return Placement(False, f"needs {(weights + kv) / gb:.1f} GB per socket > {hbm / gb:.0f} GB HBM + "
                         f"{ddr / gb:.0f} GB DDR", weights, kv, nonexpert, experts, 0.0, 0)
    free = hbm - kv
    frac = min(1.0, free / nonexpert) if nonexpert > 0 else 1.0
    free -= min(free, nonexpert)
    per_expert_node = a.moe_layers * a.expert_params * wb  # one expert rank of every MoE layer, over the node
    most = a.experts if not a.experts else min(a.experts, int(free * tp // per_expert_node))
    if hot_experts_in_hbm is None:
        return Placement(True, "", weights, kv, nonexpert, experts, frac, most)
    if not isinstance(hot_experts_in_hbm, (int, np.integer)) or isinstance(hot_experts_in_hbm, bool) \
            or not 0 <= hot_experts_in_hbm <= a.experts:
        raise ConfigError("hot_experts_in_hbm", hot_experts_in_hbm, f"a whole number from 0 to {a.experts} (experts of {a.name})")
    if hot_experts_in_hbm > most:
        return Placement(False, f"hot_experts_in_hbm {hot_experts_in_hbm} needs {hot_experts_in_hbm * per_expert_node / tp / gb:.1f}"
                         f" GB of HBM per socket; {free / gb:.1f} GB free (at most {most})", weights, kv, nonexpert,
                         experts, frac, int(hot_experts_in_hbm))
    return Placement(True, "", weights, kv, nonexpert, experts, frac, int(hot_experts_in_hbm))


# ------------------------------------------------------------------------------- one pass
def _collective_gpu(dev: GpuDevice, tp: int, nbytes: float, allreduce: bool) -> float:
    if tp == 1 or dev.nvlink_bandwidth <= 0:
        return 0.0
    share = 2.0 * (tp - 1) / tp if allreduce else (tp - 1) / tp
    return dev.allreduce_latency + share * nbytes / dev.nvlink_bandwidth


def _systolic(chip: RduChip, rows: float) -> float:
    """Utilisation of the SN40L systolic array for a matmul of ``rows`` token rows (README equation)."""
    r = chip.systolic_rows
    rows = max(1.0, rows)
    return rows / (math.ceil(rows / r) * r)


@dataclass
class PassCost:
    time_s: float
    experts_touched: float     # routed experts per MoE layer (0 for a dense model)
    hbm_bytes: float           # per device
    ddr_bytes: float
    flops: float


def collectives_per_pass(model: str, tp: int) -> int:
    """Collectives one pass of ``model`` issues over ``tp`` devices: a dense decoder's all-reduces (two a layer,
    after attention and after the MLP; one with parallel blocks: :func:`benchmarks.decoder.allreduces_per_pass`),
    an MoE's all-reduce after attention and after each dense MLP, two all-to-alls around each expert layer."""
    if tp <= 1:
        return 0
    if is_moe(model):
        a = arch_of(model)
        return a.dense_layers * 2 + a.moe_layers * 3
    return allreduces_per_pass(get_model(model), tp)


def stack_work(stack: Stack, model: str, batch, prompt, tp: int):
    """``(per pass, per request)`` runtime work of ``stack`` (s; arrays as ``batch``) for passes of ``batch``
    sequences of ``model`` over ``tp`` devices: what every pass adds (per pass, per sequence, per device beyond
    the first, per collective: :meth:`~rdusim.core.stacks.Stack.pass_time`) and what the prompt pass of
    ``prompt``-token requests adds once more (:meth:`~rdusim.core.stacks.Stack.request_time`). The one place
    predict, the sweep and the energy model charge a stack's work."""
    return (stack.pass_time(batch, tp, collectives_per_pass(model, tp)),
            stack.request_time(batch, prompt))


def pass_cost(platform: str, model: str, tp: int, mode: str, precision: str, kv_prec: str, tokens_per_seq: int,
              batch: int, context: int, placement: Placement, popularity=None, const=None,
              stack: Stack | None = None) -> PassCost:
    """Time of one pass on one of ``tp`` devices: a decode step (``tokens_per_seq`` 1, ``context`` cached
    positions) or a prompt pass (``tokens_per_seq`` = prompt, causal over itself), with the serving
    stack's runtime work per pass, per collective and (prompt pass) per request
    (:class:`rdusim.core.stacks.Stack`; default: ``kernels``, none)."""
    stack = stack or load_stack("kernels")
    a = arch_of(model)
    p = load_platform(platform)
    c = layer_constants()
    wb = weight_precision(precision).bytes_per_value
    kvb = kv_precision(kv_prec).bytes_per_value
    hb, act = c["head"], c["activation"]
    tokens = float(batch) * tokens_per_seq
    prefill = tokens_per_seq > 1
    attended = float(context if not prefill else tokens_per_seq / 2.0)
    if a.sliding_window:
        attended = min(attended, a.sliding_window)
    kv_layer = a.kv_values_layer * (max(1, a.kv_heads // tp) / a.kv_heads if a.kv_split_by_heads and tp > 1 else 1.0)
    attn_w = a.attn_params * wb / tp
    attn_kv = (tokens if prefill else batch * attended) * kv_layer * kvb
    attn_flops = 2.0 * tokens * a.attn_params / tp + tokens * attended * a.attn_pos_flops / tp
    mlp_w = a.dense_mlp_params * wb / tp
    mlp_flops = 2.0 * tokens * a.dense_mlp_params / tp
    touched = 0.0
    hot_touch = cold_touch = 0.0
    if a.experts:
        q = inclusion_probabilities(a.experts, a.top_k, popularity)
        probs = touch_probabilities(q, tokens)
        touched = float(probs.sum())
        hot = placement.hot_experts if p.kind == "rdu" else a.experts
        hot_touch, cold_touch = float(probs[:hot].sum()), float(probs[hot:].sum())
    exp_fixed = (a.shared_experts * a.expert_params + a.router_params) * wb / tp
    exp_flops = 2.0 * tokens * ((a.top_k + a.shared_experts) * a.expert_params + a.router_params) / tp
    # the step waits for the busiest device: touched experts spread over the devices that have any
    load_share = 1.0 / max(1.0, busy_devices(a.experts, a.top_k, tp, tokens)) if a.experts else 0.0
    exp_hot = hot_touch * a.expert_params * wb * load_share
    exp_cold = cold_touch * a.expert_params * wb * load_share
    head_w = a.head_params * hb / tp
    head_flops = 2.0 * batch * a.head_params / tp
    routed_act = tokens * a.top_k * a.hidden * act
    layer_act = tokens * a.hidden * act
    hbm_total = a.layers * (attn_w + attn_kv) + a.dense_layers * mlp_w + a.moe_layers * (exp_fixed + exp_hot) + head_w
    ddr_total = a.moe_layers * exp_cold
    flops_total = a.layers * attn_flops + a.dense_layers * mlp_flops + a.moe_layers * exp_flops + head_flops
    per_pass, per_request = stack_work(stack, model, batch, tokens_per_seq, tp)
    runtime = float(per_pass) + (float(per_request) if prefill else 0.0)
    if p.kind == "gpu":
        dev = GpuDevice.from_platform(p, gpu_constants(const))  # the active constants (the pipeline's fit)
        fixed, gemm_bf16, bw = dev.rates(mode)
        gemm = format_gemm_rate(p, precision, gemm_bf16, gpu_constants(const))
        t_attn = max(attn_flops / gemm, (attn_w + attn_kv + 2 * layer_act) / bw) + _collective_gpu(dev, tp, layer_act, True)
        t_dense = max(mlp_flops / gemm, (mlp_w + 2 * layer_act) / bw) + _collective_gpu(dev, tp, layer_act, True)
        t_moe = max(exp_flops * tp * load_share / gemm, (exp_fixed + exp_hot + exp_cold + 2 * routed_act) / bw) + (
            2 * _collective_gpu(dev, tp, routed_act, False))
        kernels = (a.dense_layers * c["gpu_kernels_dense_layer"] + a.moe_layers * (
            c["gpu_kernels_moe_layer"] + (c["gpu_kernels_shared_experts"] if a.shared_experts else 0)) + 2)
        t_head = max(head_flops / gemm_bf16, head_w / bw)
        total = a.layers * t_attn + a.dense_layers * t_dense + a.moe_layers * t_moe + t_head + kernels * fixed + runtime
        return PassCost(total, touched, hbm_total, ddr_total, flops_total)
    chip = RduChip.from_platform(p, tp)
    peak = gemm_peak(p, precision)
    ho = mode == "fused-ho"
    launch = chip.ho_launch if ho else chip.so_launch
    lat_allreduce = 2 * chip.p2p_latency if tp > 1 else 0.0
    f = placement.hbm_fraction_nonexpert

    def kernel(flops, rows, hbm_b, ddr_b, p2p_b, latency):
        compute = flops / (peak * _systolic(chip, rows))
        stream = max(hbm_b / chip.hbm_bandwidth, ddr_b / chip.ddr_bandwidth, p2p_b / chip.p2p_bandwidth if p2p_b else 0.0)
        return (max(compute + latency, stream) if ho else max(compute, stream) + latency) + launch

    share_ar = 2.0 * (tp - 1) / tp
    share_a2a = (tp - 1) / tp
    dense_w = attn_w + mlp_w
    t_dense_layer = kernel(attn_flops + mlp_flops, tokens, f * dense_w + attn_kv, (1 - f) * dense_w,
                           2 * share_ar * layer_act, 2 * lat_allreduce)
    t_moe_layer = kernel(attn_flops, tokens, f * (attn_w + exp_fixed) + attn_kv, (1 - f) * (attn_w + exp_fixed),
                         share_ar * layer_act + share_a2a * routed_act, lat_allreduce + lat_allreduce / 2)
    rows_per_expert = tokens * a.top_k / max(touched, 1.0)
    exp_flops_busy = exp_flops * tp * load_share if a.experts else 0.0
    t_moe_layer += kernel(exp_flops_busy, rows_per_expert, exp_hot, exp_cold, share_a2a * routed_act, lat_allreduce / 2)
    t_head = kernel(head_flops, batch, f * head_w, (1 - f) * head_w, 0.0, 0.0)
    total = a.dense_layers * t_dense_layer + a.moe_layers * t_moe_layer + t_head + runtime
    return PassCost(total, touched, hbm_total, ddr_total, flops_total)



def gpu_dense_pass_times(platform: str, model: str, tp: int, mode: str, precision: str, kv_prec: str, tokens_per_seq,
                         batch, context, stack: Stack | None = None, const=None) -> np.ndarray:
    """:func:`pass_cost`'s ``time_s`` for many passes at once (arrays ``tokens_per_seq``, ``batch``, ``context``,
    broadcast): the same GPU branch for a dense model (no experts) in numpy, so that the serving engine's step
    tables (thousands of batch x context points) cost one array pass instead of a Python call per point. The
    tests hold it equal to :func:`pass_cost` point by point."""
    stack = stack or load_stack("kernels")
    a = arch_of(model)
    p = load_platform(platform)
    if p.kind != "gpu" or a.experts:
        raise ConfigError("model", model, "a dense model on a GPU platform (other passes: pass_cost)")
    c = layer_constants()
    wb = weight_precision(precision).bytes_per_value
    kvb = kv_precision(kv_prec).bytes_per_value
    hb, act = c["head"], c["activation"]
    per_seq = np.asarray(tokens_per_seq, float)
    b = np.asarray(batch, float)
    tokens = b * per_seq
    prefill = per_seq > 1
    attended = np.where(prefill, per_seq / 2.0, np.asarray(context, float))
    if a.sliding_window:
        attended = np.minimum(attended, a.sliding_window)
    kv_layer = a.kv_values_layer * (max(1, a.kv_heads // tp) / a.kv_heads if a.kv_split_by_heads and tp > 1 else 1.0)
    attn_w = a.attn_params * wb / tp
    attn_kv = np.where(prefill, tokens, b * attended) * kv_layer * kvb
    attn_flops = 2.0 * tokens * a.attn_params / tp + tokens * attended * a.attn_pos_flops / tp
    mlp_w = a.dense_mlp_params * wb / tp
    mlp_flops = 2.0 * tokens * a.dense_mlp_params / tp
    head_w = a.head_params * hb / tp
    head_flops = 2.0 * b * a.head_params / tp
    layer_act = tokens * a.hidden * act
    per_pass, per_request = stack_work(stack, model, b, per_seq, tp)
    runtime = per_pass + np.where(prefill, per_request, 0.0)
    dev = GpuDevice.from_platform(p, gpu_constants(const))
    fixed, gemm_bf16, bw = dev.rates(mode)
    gemm = format_gemm_rate(p, precision, gemm_bf16, gpu_constants(const))
    t_attn = np.maximum(attn_flops / gemm, (attn_w + attn_kv + 2 * layer_act) / bw) + _collective_gpu(dev, tp, layer_act, True)
    t_dense = np.maximum(mlp_flops / gemm, (mlp_w + 2 * layer_act) / bw) + _collective_gpu(dev, tp, layer_act, True)
    t_head = np.maximum(head_flops / gemm_bf16, head_w / bw)
    kernels = a.dense_layers * c["gpu_kernels_dense_layer"] + 2
    return a.layers * t_attn + a.dense_layers * t_dense + t_head + kernels * fixed + runtime

# ------------------------------------------------------------------------------- one request
def check_closed_form(platform: str, model: str, tp: int, mode: str | None, precision: str, kv_prec: str,
                      stack: str | None = None) -> tuple[str, str]:
    """Validate what only the closed-form rows have; returns ``(execution, stack)``: the stack's execution,
    else the platform's default stack's (:func:`rdusim.core.stacks.resolve_stack`), else its fastest."""
    p = load_platform(platform)
    if not known_model(model):
        raise ConfigError("model", model, ", ".join(list(load_models()) + list(load_moe_models())))
    weight_precision(precision)
    kv_precision(kv_prec)
    gemm_peak(p, precision)
    if tp > p.devices:
        raise ConfigError("tp", tp, f"1 to {p.devices} (devices of {p.name})")
    _check_tp(arch_of(model), tp)
    modes = CLOSED_FORM_MODES[p.kind]
    key, _, resolved = resolve_stack(p.kind, p.default_stack, mode, stack)
    mode = resolved or modes[-1]
    if mode not in modes:
        raise ConfigError("execution", mode, f"for a mixture-of-experts or non-BF16 row on {p.kind} platforms: "
                          + ", ".join(modes) + " (the closed-form layer model has no per-operator eager or unfused cost)")
    return mode, key


def predict_closed_form(platform: str, model: str, batch: int, tp: int, prompt: int, gen: int, mode: str,
                        precision: str = "bf16", kv_prec: str = "bf16", hot_experts_in_hbm: int | None = None,
                        popularity=None, const=None, stack: str | None = None) -> dict:
    """One request through the closed-form model: ``ttft_s``, ``decode_s`` (mean step at context L + G/2),
    ``fits``, ``reason``, ``weight_bytes``, and the placement: per-device weight bytes in HBM and DDR,
    KV bytes, hot experts per layer, expected routed experts touched per layer and decode step."""
    a = arch_of(model)
    if a.context_window and prompt + gen > a.context_window:
        raise ConfigError("prompt + gen", prompt + gen, f"at most {a.context_window:,} tokens (the context window of {model})")
    pl = place(platform, a, tp, precision, kv_prec, batch, prompt + gen, hot_experts_in_hbm)
    out = {"fits": pl.fits, "reason": pl.reason, "weight_bytes": weight_bytes_total(model, precision),
           "kv_bytes_per_device": pl.kv, "hot_experts_in_hbm": pl.hot_experts if a.experts else None,
           "ttft_s": float("nan"), "decode_s": float("nan"), "experts_touched": float("nan")}
    hot_share = pl.hot_experts / a.experts if a.experts else 1.0
    out["weights_hbm_bytes_per_device"] = pl.hbm_fraction_nonexpert * pl.nonexpert + pl.experts * hot_share
    out["weights_ddr_bytes_per_device"] = pl.weights - out["weights_hbm_bytes_per_device"]
    if not pl.fits:
        return out
    s = load_stack(stack) if stack else load_stack(check_closed_form(platform, model, tp, mode, precision, kv_prec)[1])
    ttft = pass_cost(platform, model, tp, mode, precision, kv_prec, prompt, batch, prompt, pl, popularity, const, s)
    dec = pass_cost(platform, model, tp, mode, precision, kv_prec, 1, batch, prompt + gen // 2, pl, popularity, const, s)
    out.update(ttft_s=ttft.time_s, decode_s=dec.time_s, experts_touched=dec.experts_touched if a.experts else 0.0,
               decode_hbm_bytes=dec.hbm_bytes, decode_ddr_bytes=dec.ddr_bytes)
    return out
