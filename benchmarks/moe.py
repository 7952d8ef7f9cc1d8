"""Mixture-of-experts decoder layers (Mixtral, DeepSeek-V3/R1, Qwen3-MoE) in closed form.

A :class:`MoeConfig` is one entry of ``benchmarks/data/moe_models.yaml`` (copied from each model's
published config.json). A layer is attention, then either a dense SwiGLU MLP (the first
``dense_layers`` layers: DeepSeek-V3's ``first_k_dense_replace = 3``) or a router over ``experts``
routed SwiGLU experts of which each token uses ``top_k``, plus ``shared_experts`` every token uses.

Attention is grouped-query (Q, K, V, O projections; optionally Qwen3's per-head RMSNorm of Q and K)
or DeepSeek's multi-head latent attention (MLA, DeepSeek-V2 paper section 2.1): queries through a
low-rank ``q_lora_rank`` bottleneck, keys and values from one compressed latent of ``kv_lora_rank``
values plus a shared ``qk_rope_head_dim`` rotary key. The KV cache holds only that latent and rotary
key: ``kv_lora_rank + qk_rope_head_dim`` values per token and layer (:func:`kv_values_per_token`).
In decode the up-projections are absorbed (W_UK into the query, W_UV into the output), so attention
runs on the latent directly: per head and cached position ``2 (kv_lora_rank + rope)`` FLOPs for the
score and ``2 kv_lora_rank`` for the value, and the cache is read once per step, not expanded per head.

Experts touched per step (:func:`expected_distinct_experts`): a decode step of ``B`` independent tokens
touches expert ``e`` unless none of them routes to it. With ``q_e`` the probability that one token's
top-k includes e (``top_k / experts`` each when uniform; a popularity vector otherwise, see
:func:`inclusion_probabilities`), ``P(e touched) = 1 - (1 - q_e)^B`` and the expected number of distinct
experts is ``sum_e 1 - (1 - q_e)^B``: the binomial arithmetic of the CoE model
(:mod:`rdusim.scenarios.coe`), so the expert weights a step streams grow with the batch until every
expert is touched.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmarks.hf_config import is_moe_config, moe_fields, read_config
from rdusim.core.checks import check_keys, nearest
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping

MOE_MODELS_FILE = Path(__file__).parent / "data" / "moe_models.yaml"
ATTENTION_KINDS = ("gqa", "mla")
SWIGLU_MATRICES = 3  # gate, up, down


@dataclass(frozen=True)
class MoeConfig:
    """One mixture-of-experts decoder-only model, as published (see ``moe_models.yaml``)."""

    name: str
    source: str
    reference_params: float
    reference_active_params: float
    active_counts_embedding: bool
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    ffn: int
    dense_layers: int
    experts: int
    top_k: int
    shared_experts: int
    expert_ffn: int
    attention: str
    tied_embeddings: bool
    head_dim: int = 0
    context_window: int = 0
    router_bias: bool = False
    qk_norm: bool = False
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int | None = None

    def __post_init__(self):
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError(f"{self.name}.attention", self.attention, ", ".join(ATTENTION_KINDS))
        if self.attention == "mla":
            for key in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                if getattr(self, key) <= 0:
                    raise ConfigError(f"{self.name}.{key}", getattr(self, key), "a whole number > 0 with attention: mla")
        if not 1 <= self.top_k <= self.experts:
            raise ConfigError(f"{self.name}.top_k", self.top_k, f"1 to experts ({self.experts})")
        if not 0 <= self.dense_layers < self.layers:
            raise ConfigError(f"{self.name}.dense_layers", self.dense_layers, f"0 to {self.layers - 1} (layers - 1)")
        if self.heads % self.kv_heads:
            raise ConfigError(f"{self.name}.kv_heads", self.kv_heads, f"a divisor of heads ({self.heads})")

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim


_INT_FIELDS = ("layers", "hidden", "heads", "kv_heads", "vocab", "ffn", "experts", "top_k", "expert_ffn")
_NONNEG_FIELDS = ("dense_layers", "shared_experts", "head_dim", "context_window", "q_lora_rank", "kv_lora_rank",
                  "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")


@lru_cache(maxsize=None)
def load_moe_models(path: str | None = None) -> dict[str, MoeConfig]:
    """All models of the MoE zoo file (default ``benchmarks/data/moe_models.yaml``), by name."""
    where = f"MoE models file {path or MOE_MODELS_FILE}"
    raw = mapping(where, load_yaml(path or MOE_MODELS_FILE, where), "a mapping of model name to fields")
    known = [f.name for f in fields(MoeConfig) if f.name != "name"]
    models = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise ConfigError(str(name), entry, "a mapping of MoE model fields")
        check_keys(str(name), entry, known)
        for key in _INT_FIELDS + _NONNEG_FIELDS:
            v = entry.get(key, 0 if key in _NONNEG_FIELDS else None)
            low = 0 if key in _NONNEG_FIELDS else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"{name}.{key}", v, f"a whole number >= {low}")
        for key in ("reference_params", "reference_active_params"):
            try:
                entry[key] = float(entry[key])
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{name}.{key}", entry.get(key), "a number") from None
        models[str(name)] = MoeConfig(name=str(name), **entry)
    return models


CONFIG_SUFFIX = ".json"


def is_moe(name) -> bool:
    """Whether ``name`` is a model of the MoE zoo, or a path to a mixture-of-experts config.json."""
    if isinstance(name, str) and name.endswith(CONFIG_SUFFIX):
        stamp = _stamp(name)
        return stamp is not None and _is_moe_file(str(Path(name).resolve()), stamp)
    return isinstance(name, str) and name in load_moe_models()


def _stamp(name: str):
    try:
        return Path(name).stat().st_mtime_ns
    except OSError:
        return None


@lru_cache(maxsize=64)
def _is_moe_file(resolved: str, stamp: int) -> bool:
    try:
        return is_moe_config(read_config(resolved))
    except ConfigError:
        return False  # the dense reader reports what is wrong with the file


@lru_cache(maxsize=64)
def _config_moe(name: str, resolved: str, stamp: int) -> MoeConfig:
    return MoeConfig(name=name, **moe_fields(read_config(resolved), Path(name).name))


def get_moe_model(name: str) -> MoeConfig:
    """The MoE zoo model called ``name``, or the model of a mixture-of-experts config.json at path
    ``name`` (:func:`benchmarks.hf_config.moe_fields`); a clear error listing the known names otherwise."""
    if isinstance(name, str) and name.endswith(CONFIG_SUFFIX) and _stamp(name) is not None:
        return _config_moe(name, str(Path(name).resolve()), _stamp(name))
    models = load_moe_models()
    if name not in models:
        raise ConfigError("model", name, ", ".join(models) + (nearest(name, models) if isinstance(name, str) else ""))
    return models[name]


# ------------------------------------------------------------------------------- parameters
def attention_params(m: MoeConfig) -> int:
    """Parameters of one layer's attention (projections and their norms)."""
    if m.attention == "mla":
        qk_head = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            q = m.hidden * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * m.heads * qk_head  # q_a, q_a_norm, q_b
        else:
            q = m.hidden * m.heads * qk_head
        kv = m.hidden * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank  # kv_a_proj_with_mqa, kv_a_norm
        kv += m.kv_lora_rank * m.heads * (m.qk_nope_head_dim + m.v_head_dim)   # kv_b_proj (W_UK, W_UV)
        return q + kv + m.heads * m.v_head_dim * m.hidden
    kv_dim = m.kv_heads * m.head_dim
    attn = m.hidden * (m.q_dim + 2 * kv_dim) + m.q_dim * m.hidden
    return attn + (2 * m.head_dim if m.qk_norm else 0)


def expert_params(m: MoeConfig) -> int:
    """Parameters of one routed (or shared) expert: a SwiGLU MLP of width ``expert_ffn``."""
    return SWIGLU_MATRICES * m.hidden * m.expert_ffn


def router_params(m: MoeConfig) -> int:
    return m.hidden * m.experts + (m.experts if m.router_bias else 0)


def param_breakdown(m: MoeConfig) -> dict[str, int]:
    """Parameters by part: embedding, attention, dense MLPs, routers, shared and routed experts, norms, head."""
    return {
        "embedding": m.vocab * m.hidden,
        "attention": m.layers * attention_params(m),
        "dense_mlp": m.dense_layers * SWIGLU_MATRICES * m.hidden * m.ffn,
        "router": m.moe_layers * router_params(m),
        "shared_experts": m.moe_layers * m.shared_experts * expert_params(m),
        "routed_experts": m.moe_layers * m.experts * expert_params(m),
        "norms": m.layers * 2 * m.hidden + m.hidden,
        "lm_head": 0 if m.tied_embeddings else m.vocab * m.hidden,
    }


def param_count(m: MoeConfig) -> int:
    """Total parameters, computed from the architecture."""
    return sum(param_breakdown(m).values())


def active_param_count(m: MoeConfig, with_embedding: bool | None = None) -> int:
    """Parameters one token uses: everything but the routed experts it does not pick; the input
    embedding counted as the publisher counts it (``active_counts_embedding``) unless told."""
    parts = param_breakdown(m)
    routed = m.moe_layers * m.top_k * expert_params(m)
    total = sum(v for k, v in parts.items() if k not in ("routed_experts", "embedding")) + routed
    counted = m.active_counts_embedding if with_embedding is None else with_embedding
    return total + (parts["embedding"] if counted else 0)


def kv_values_per_token(m: MoeConfig) -> int:
    """KV-cache values one token adds over all layers: keys and values of each KV head (GQA), or the
    compressed latent and the shared rotary key (MLA: ``kv_lora_rank + qk_rope_head_dim`` per layer)."""
    if m.attention == "mla":
        return m.layers * (m.kv_lora_rank + m.qk_rope_head_dim)
    return 2 * m.layers * m.kv_heads * m.head_dim


def kv_bytes_per_token(m: MoeConfig, bytes_per_value: float = 2.0) -> float:
    """KV-cache bytes one token adds (BF16 unless told)."""
    return kv_values_per_token(m) * bytes_per_value


# ------------------------------------------------------------------------------- routing
def zipf_popularity(experts: int, exponent: float) -> np.ndarray:
    """Routing popularity of expert ranks 1..E under Zipf(exponent), most popular first (0: uniform)."""
    ranks = np.arange(1, experts + 1, dtype=float)
    w = ranks ** -float(exponent)
    return w / w.sum()


def inclusion_probabilities(experts: int, top_k: int, popularity=None) -> np.ndarray:
    """``q_e``, the probability that one token's top-k routing includes expert e, most popular first.

    Uniform: ``top_k / experts`` each. With a popularity vector (weights, normalised), ``q_e = top_k p_e``
    where that is below 1; experts that would exceed 1 are capped at 1 and the rest rescaled so the
    ``q_e`` still sum to ``top_k`` (a token picks ``top_k`` distinct experts)."""
    if popularity is None:
        return np.full(experts, top_k / experts)
    p = np.asarray(popularity, dtype=float)
    if p.shape != (experts,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ConfigError("popularity", f"{p.shape} values", f"{experts} finite non-negative weights, not all zero")
    p = np.sort(p / p.sum())[::-1]
    q = np.zeros(experts)
    capped = np.zeros(experts, dtype=bool)
    for _ in range(experts):
        free = top_k - capped.sum()
        rest = p[~capped].sum()
        q[~capped] = free * p[~capped] / rest if rest > 0 else 0.0
        q[capped] = 1.0
        over = (q > 1.0) & ~capped
        if not over.any():
            break
        capped |= over
    return np.minimum(q, 1.0)


def touch_probabilities(q: np.ndarray, batch) -> np.ndarray:
    """``P(expert e touched)`` by a step of ``batch`` independent tokens: ``1 - (1 - q_e)^B``."""
    return 1.0 - (1.0 - np.asarray(q, dtype=float)) ** float(batch)


def expected_distinct_experts(experts: int, top_k: int, batch, popularity=None):
    """Expected distinct routed experts one MoE layer touches in a decode step of ``batch`` tokens:
    ``sum_e 1 - (1 - q_e)^B`` (see the module docstring); ``batch`` may be an array."""
    q = inclusion_probabilities(experts, top_k, popularity)
    b = np.asarray(batch, dtype=float)
    out = experts - np.sum((1.0 - q)[:, None] ** b.ravel()[None, :], axis=0)
    return float(out[0]) if b.ndim == 0 else out.reshape(b.shape)


def sample_distinct_experts(experts: int, top_k: int, batch: int, popularity=None, samples: int = 4000,
                            seed: int = 0) -> float:
    """Monte-Carlo mean of the distinct experts a step of ``batch`` tokens touches (checks
    :func:`expected_distinct_experts`). Each token picks ``top_k`` distinct experts by systematic
    sampling (Madow), which includes expert e with probability exactly ``q_e``."""
    q = inclusion_probabilities(experts, top_k, popularity)
    edges = np.concatenate([[0.0], np.cumsum(q)])
    rng = np.random.default_rng(seed)
    total = 0
    for _ in range(samples):
        u = rng.random(batch)[:, None] + np.arange(top_k)[None, :]      # tokens x k points in [0, k)
        picks = np.searchsorted(edges, u, side="right") - 1
        total += np.unique(np.minimum(picks, experts - 1)).size
    return total / samples


def busy_devices(experts: int, top_k: int, devices: int, batch) -> float:
    """Expected devices holding at least one touched expert when the ``experts`` of a layer are split
    evenly over ``devices`` (expert parallelism) and each of ``batch`` tokens picks ``top_k`` uniformly:
    a token misses one device with probability ``prod_j (E - E/w - j) / (E - j)`` over its k picks. With
    more devices than experts (``w`` a multiple of ``E``), each expert is split over ``w / E`` devices, all
    busy when it is touched."""
    if devices >= experts:
        return devices / experts * expected_distinct_experts(experts, top_k, batch)
    per = experts / devices
    miss = 1.0
    for j in range(top_k):
        miss *= max(0.0, (experts - per - j) / (experts - j))
    return devices * (1.0 - miss ** float(batch))

