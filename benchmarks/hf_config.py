"""A Hugging Face ``config.json`` read from disk (offline) as the fields of a zoo entry.

:func:`model_fields` maps the config of a dense decoder of the Llama, Mistral, Falcon, BLOOM or GPT-NeoX
families (``model_type`` llama, mistral, falcon / RefinedWeb / RefinedWebModel, bloom, gpt_neox) to the
keyword arguments of :class:`benchmarks.models.ModelConfig`; :func:`benchmarks.models.get_model` calls
it for any model name ending in ``.json``. What cannot be mapped is a :class:`ConfigError` naming the
config field and what is allowed: a ``model_type`` outside the families, a missing size, an activation
the graphs do not model, or a mixture-of-experts field (see :data:`MOE_FIELDS`).

Each family is a :class:`Family`: which config keys give each size (the first present wins, so older
names such as Falcon's ``n_layer`` work), and the architecture the family's modelling code fixes
(MLP kind, norm, position encoding, biases, parallel blocks). A later family, or MoE support, is one more
entry: :data:`MOE_FIELDS` lists the keys that today stop the read (a dense model has none of them, or
them at their dense value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rdusim.core.errors import ConfigError, Described
from rdusim.core.loader import load_json, mapping

MAX_CONFIG_BYTES = 1 << 20   # a config.json is a few kB; anything larger is not one
MAX_SIZE = 1 << 24           # bound of every size field (hidden, layers, vocab, ...): far above any model


@dataclass(frozen=True)
class Family:
    """How one ``model_type``'s config maps to a zoo entry."""

    name: str
    sizes: dict[str, tuple[str, ...]]            # zoo field -> config keys, first present wins
    fixed: dict = field(default_factory=dict)    # zoo fields the family's code fixes
    flags: dict[str, tuple[str, bool]] = field(default_factory=dict)  # zoo field -> (config key, default)
    activations: tuple[str, ...] = ()            # accepted hidden_act values
    act_keys: tuple[str, ...] = ("hidden_act",)


_LLAMA_SIZES = {"layers": ("num_hidden_layers",), "hidden": ("hidden_size",), "heads": ("num_attention_heads",),
                "kv_heads": ("num_key_value_heads",), "ffn": ("intermediate_size",), "vocab": ("vocab_size",),
                "head_dim": ("head_dim",), "context_window": ("max_position_embeddings",)}
_LLAMA = dict(mlp="swiglu", norm="rmsnorm", norms_per_layer=2, position="rope")
FAMILIES: dict[str, Family] = {
    "llama": Family("Llama", _LLAMA_SIZES, dict(_LLAMA),
                    {"tied_embeddings": ("tie_word_embeddings", False), "attn_bias": ("attention_bias", False),
                     "mlp_bias": ("mlp_bias", False)}, ("silu",)),
    "mistral": Family("Mistral", {**_LLAMA_SIZES, "sliding_window": ("sliding_window",)}, dict(_LLAMA),
                      {"tied_embeddings": ("tie_word_embeddings", False)}, ("silu",)),
    "falcon": Family("Falcon", {"layers": ("num_hidden_layers", "n_layer"), "hidden": ("hidden_size",),
                                "heads": ("num_attention_heads", "n_head"), "kv_heads": ("num_kv_heads", "n_head_kv"),
                                "ffn": ("ffn_hidden_size",), "vocab": ("vocab_size",),
                                "context_window": ("max_position_embeddings",)},
                     dict(mlp="gelu", norm="layernorm", eager_attention="sdpa"),
                     {"tied_embeddings": ("tie_word_embeddings", True), "attn_bias": ("bias", False),
                      "mlp_bias": ("bias", False), "parallel_blocks": ("parallel_attn", True)},
                     ("gelu",), ("activation", "hidden_act")),
    "bloom": Family("BLOOM", {"layers": ("n_layer", "num_hidden_layers"), "hidden": ("hidden_size", "n_embed"),
                              "heads": ("n_head", "num_attention_heads"), "vocab": ("vocab_size",),
                              "context_window": ("seq_length",)},
                    dict(mlp="gelu", norm="layernorm", norms_per_layer=2, position="alibi", attn_bias=True,
                         mlp_bias=True, embed_norm=True),
                    {"tied_embeddings": ("tie_word_embeddings", True)}, ()),
    "gpt_neox": Family("GPT-NeoX", {"layers": ("num_hidden_layers",), "hidden": ("hidden_size",),
                                    "heads": ("num_attention_heads",), "ffn": ("intermediate_size",),
                                    "vocab": ("vocab_size",), "context_window": ("max_position_embeddings",)},
                       dict(mlp="gelu", norm="layernorm", norms_per_layer=2, position="rope", mlp_bias=True),
                       {"tied_embeddings": ("tie_word_embeddings", False), "attn_bias": ("attention_bias", True),
                        "parallel_blocks": ("use_parallel_residual", True)},
                       ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh")),
}
ALIASES = {"RefinedWeb": "falcon", "RefinedWebModel": "falcon"}
# Keys of mixture-of-experts configs (Mixtral, DeepSeek, Qwen-MoE, ...) with their dense value (None: the
# key must be absent or null). A config with any other value is refused until MoE is modelled.
MOE_FIELDS = {"num_local_experts": 1, "num_experts": 1, "n_routed_experts": None, "num_experts_per_tok": None,
              "moe_intermediate_size": None, "kv_lora_rank": None, "q_lora_rank": None, "n_shared_experts": None}


def read_config(path: str | Path) -> dict:
    """The JSON object of a ``config.json`` on disk, through :func:`rdusim.core.loader.load_json` (size, UTF-8,
    strict JSON); one-line errors for a missing, huge or bad file that never show its content."""
    try:
        data = load_json(path, "model", MAX_CONFIG_BYTES, "Hugging Face config.json")
    except ConfigError as err:
        if not err.field.startswith("model line"):
            raise  # missing, huge, binary: the field is the --model argument
        raise ConfigError(str(path), Described(f"{err.given!r} on {err.field[len('model '):]}"), err.allowed) from None
    return mapping(str(path), data, "a JSON object (a Hugging Face config.json)", optional=False)


def _size(where: str, cfg: dict, keys: tuple[str, ...], required: bool):
    for key in keys:
        if key in cfg and cfg[key] is not None:
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
                raise ConfigError(f"{where}.{key}", value, f"a whole number from 1 to {MAX_SIZE:,}")
            return value
    if required:
        raise ConfigError(f"{where}.{keys[0]}", None, "a whole number (the field is missing)")
    return None


def model_fields(cfg: dict, where: str) -> dict:
    """Keyword arguments of :class:`~benchmarks.models.ModelConfig` (less ``name``) from a config.json
    object ``cfg``; ``where`` names the file in errors."""
    for key, dense in MOE_FIELDS.items():
        if cfg.get(key) not in (None, dense):
            raise ConfigError(f"{where}.{key}", cfg[key], "absent or " + ("null" if dense is None else str(dense))
                              + " for a dense model (a mixture-of-experts config of type " + ", ".join(MOE_FAMILIES)
                              + " is read by benchmarks.moe, as predict does)")
    mtype = cfg.get("model_type")
    mtype = ALIASES.get(mtype, mtype) if isinstance(mtype, str) else mtype
    if mtype not in FAMILIES:
        raise ConfigError(f"{where}.model_type", cfg.get("model_type"),
                          "a dense decoder of type " + ", ".join(FAMILIES) + " (Llama, Mistral, Falcon, BLOOM, GPT-NeoX)")
    fam = FAMILIES[mtype]
    out = dict(fam.fixed)
    for name, keys in fam.sizes.items():
        value = _size(where, cfg, keys, required=name in ("layers", "hidden", "heads", "vocab"))
        if value is not None:
            out[name] = value
    for name, (key, default) in fam.flags.items():
        value = cfg.get(key, default)
        if value is None:
            value = default
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}", value, "true or false")
        out[name] = value
    out.setdefault("kv_heads", out["heads"])
    out.setdefault("ffn", 4 * out["hidden"])
    if mtype == "falcon":
        _falcon(cfg, where, out)
    if mtype == "gpt_neox" and out.get("parallel_blocks") is False:
        out["norms_per_layer"] = 2
    if fam.activations:
        act = next((cfg[k] for k in fam.act_keys if cfg.get(k) is not None), fam.activations[0])
        if act not in fam.activations:
            raise ConfigError(f"{where}.{fam.act_keys[0]}", act, f"{' or '.join(fam.activations)} for {fam.name} models")
    if out["heads"] % out["kv_heads"]:
        raise ConfigError(f"{where}.num_key_value_heads", out["kv_heads"], f"a divisor of the attention heads ({out['heads']})")
    if "head_dim" not in out and out["hidden"] % out["heads"]:
        raise ConfigError(f"{where}.head_dim", None, f"given, since hidden_size {out['hidden']} is not a multiple of the heads")
    theta = cfg.get("rope_theta", cfg.get("rotary_emb_base"))
    if out.get("position") == "rope" and theta is not None:
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not math.isfinite(theta) or theta <= 0:
            raise ConfigError(f"{where}.rope_theta", theta, "a number > 0")
        out["rope_theta"] = float(theta)
    out.setdefault("context_window", 0)
    out["max_positions"] = out["context_window"] if out.get("position") == "learned" else 0
    arch = cfg.get("architectures")
    out["source"] = f"{where} (Hugging Face config.json, model_type {cfg.get('model_type')}" + (
        f", {arch[0]}" if isinstance(arch, list) and arch and isinstance(arch[0], str) else "") + ")"
    return out


def _falcon(cfg: dict, where: str, out: dict) -> None:
    """Falcon's layouts: new_decoder_architecture (grouped KV, two LayerNorms), multi-query (one KV head,
    one LayerNorm before the parallel blocks), ALiBi or rotary positions."""
    new = cfg.get("new_decoder_architecture", False) is True
    if not new:
        out["kv_heads"] = 1 if cfg.get("multi_query", True) else out["heads"]
    norms_in_parallel = 2 if new else 1
    if new and cfg.get("num_ln_in_parallel_attn") is not None:
        norms_in_parallel = _size(where, cfg, ("num_ln_in_parallel_attn",), True)
    out["norms_per_layer"] = norms_in_parallel if out["parallel_blocks"] else 2
    out["position"] = "alibi" if cfg.get("alibi", False) else "rope"


# ------------------------------------------------------------------------------- mixture of experts (issue 21)
# model_type -> (attention, config key of the routed experts, of one expert's width, of the dense layers'
# width). Mixtral's experts have the model's intermediate_size; DeepSeek and Qwen3 name moe_intermediate_size.
MOE_FAMILIES = {
    "mixtral": ("gqa", "num_local_experts", "intermediate_size"),
    "deepseek_v2": ("mla", "n_routed_experts", "moe_intermediate_size"),
    "deepseek_v3": ("mla", "n_routed_experts", "moe_intermediate_size"),
    "qwen3_moe": ("gqa", "num_experts", "moe_intermediate_size"),
}


def is_moe_config(cfg: dict) -> bool:
    """Whether a config.json object describes a mixture-of-experts model (an MoE field at a non-dense value)."""
    return any(cfg.get(key) not in (None, dense) for key, dense in MOE_FIELDS.items())


def moe_fields(cfg: dict, where: str) -> dict:
    """Keyword arguments of :class:`benchmarks.moe.MoeConfig` (less ``name``) from a mixture-of-experts
    config.json (``model_type`` mixtral, deepseek_v2, deepseek_v3, qwen3_moe); ``where`` names the file."""
    mtype = cfg.get("model_type")
    if mtype not in MOE_FAMILIES:
        raise ConfigError(f"{where}.model_type", mtype, "a mixture-of-experts model of type " + ", ".join(MOE_FAMILIES))
    attention, experts_key, width_key = MOE_FAMILIES[mtype]
    size = lambda keys, required=True: _size(where, cfg, keys, required)  # noqa: E731
    out = {"layers": size(("num_hidden_layers",)), "hidden": size(("hidden_size",)),
           "heads": size(("num_attention_heads",)), "vocab": size(("vocab_size",)),
           "experts": size((experts_key,)), "top_k": size(("num_experts_per_tok",)),
           "expert_ffn": size((width_key,)), "attention": attention}
    out["kv_heads"] = size(("num_key_value_heads",), False) or out["heads"]
    out["ffn"] = size(("intermediate_size",), False) or out["expert_ffn"]
    out["head_dim"] = size(("head_dim",), False) or 0
    out["context_window"] = size(("max_position_embeddings",), False) or 0
    dense = cfg.get("first_k_dense_replace", 0) or 0
    shared = cfg.get("n_shared_experts", 0) or 0
    for key, value in (("first_k_dense_replace", dense), ("n_shared_experts", shared)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < out["layers"]:
            raise ConfigError(f"{where}.{key}", value, f"a whole number from 0 to {out['layers'] - 1}")
    out["dense_layers"], out["shared_experts"] = dense, shared
    if mtype == "qwen3_moe":
        if cfg.get("mlp_only_layers") not in (None, []) or cfg.get("decoder_sparse_step", 1) != 1:
            raise ConfigError(f"{where}.mlp_only_layers", cfg.get("mlp_only_layers"),
                              "empty, with decoder_sparse_step 1 (every layer a mixture of experts)")
        out["qk_norm"] = True
    if attention == "mla":
        out["q_lora_rank"] = size(("q_lora_rank",), False) or 0
        for key in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            out[key] = size((key,))
        out["router_bias"] = cfg.get("topk_method") == "noaux_tc"  # DeepSeek-V3's e_score_correction_bias
    tied = cfg.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise ConfigError(f"{where}.tie_word_embeddings", tied, "true or false")
    out["tied_embeddings"] = tied
    arch = cfg.get("architectures")
    out["source"] = f"{where} (Hugging Face config.json, model_type {mtype}" + (
        f", {arch[0]}" if isinstance(arch, list) and arch and isinstance(arch[0], str) else "") + ")"
    out.update(reference_params=0.0, reference_active_params=0.0, active_counts_embedding=True)
    return out
