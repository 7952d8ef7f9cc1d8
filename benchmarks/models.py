"""Model architectures and the closed-form sizes that follow from them.

A :class:`ModelConfig` is one entry of ``benchmarks/data/models.yaml`` (copied from each model's
published configuration). The functions here count parameters, weight bytes, forward FLOPs per
token and KV-cache bytes per token from the architecture alone; operator graphs
(:mod:`benchmarks.decoder`) must agree with them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from benchmarks.hf_config import model_fields, read_config
from benchmarks.moe import load_moe_models
from rdusim.core.checks import check_keys, number, plain_key, whole
from rdusim.core.errors import ConfigError, Described
from rdusim.core.loader import load_yaml, mapping, string

MODELS_FILE = Path(__file__).parent / "data" / "models.yaml"
MLP_KINDS = ("swiglu", "gelu", "relu")
NORM_KINDS = ("rmsnorm", "layernorm")
POSITION_KINDS = ("rope", "alibi", "learned")
# How the model's own eager modelling code computes attention: separate operators (scores
# materialised) or one call to torch's scaled_dot_product_attention.
EAGER_ATTENTION_KINDS = ("ops", "sdpa")
BF16_BYTES = 2


@dataclass(frozen=True)
class VisionConfig:
    """A ViT image encoder (CLIP ViT-L/14-336 for LLaVA-1.5): pre-norm, biased, LayerNorm, GELU MLP."""

    layers: int
    hidden: int
    heads: int
    ffn: int
    patch: int
    image: int
    channels: int = 3

    @property
    def patches(self) -> int:
        """Image tokens the tower produces: (image / patch)^2 (576 for 336 px / 14 px)."""
        return (self.image // self.patch) ** 2


@dataclass(frozen=True)
class ModelConfig:
    """One decoder-only language model (optionally with a vision tower), as published."""

    name: str
    source: str
    reference_params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    mlp: str
    norm: str
    norms_per_layer: int
    position: str
    tied_embeddings: bool
    head_dim: int = 0
    attn_bias: bool = False
    mlp_bias: bool = False
    parallel_blocks: bool = False
    sliding_window: int | None = None
    max_positions: int = 0
    context_window: int = 0      # most prompt + output tokens (0: not given, no limit)
    embed_norm: bool = False
    eager_attention: str = "ops"
    rope_theta: float = 0.0      # rotary base (config.json rope_theta; 0: not given). Recorded, not costed
    vision: VisionConfig | None = None
    projector_layers: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        _check(self.name, "mlp", self.mlp, MLP_KINDS)
        _check(self.name, "norm", self.norm, NORM_KINDS)
        _check(self.name, "position", self.position, POSITION_KINDS)
        _check(self.name, "eager_attention", self.eager_attention, EAGER_ATTENTION_KINDS)
        if self.heads % self.kv_heads:
            raise ConfigError(f"{self.name}.kv_heads", self.kv_heads, f"a divisor of heads ({self.heads})")
        if isinstance(self.context_window, bool) or not isinstance(self.context_window, int) or self.context_window < 0:
            raise ConfigError(f"{self.name}.context_window", self.context_window, "a whole number of tokens >= 0")
        if self.position == "learned" and self.max_positions <= 0:
            raise ConfigError(f"{self.name}.max_positions", self.max_positions, "> 0 with learned positions")

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def image_tokens(self) -> int:
        """Prompt positions taken by the image (0 without a vision tower)."""
        return self.vision.patches if self.vision else 0


def _check(model: str, key: str, value, allowed: tuple[str, ...]):
    if value not in allowed:
        raise ConfigError(f"{model}.{key}", value, ", ".join(allowed))


MAX_MODEL_SIZE = 10**9  # bound of every size of a model file (layers, widths, vocab, windows)
_INT_FIELDS = {"layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "norms_per_layer"}


@lru_cache(maxsize=None)
def load_models(path: str | None = None) -> dict[str, ModelConfig]:
    """All models of the zoo file (default ``benchmarks/data/models.yaml``), by name."""
    where = f"models file {path or MODELS_FILE}"
    raw = mapping(where, load_yaml(path or MODELS_FILE, where), "a mapping of model name to fields", optional=False)
    known = [f.name for f in fields(ModelConfig) if f.name != "name"]
    models = {}
    for name, entry in raw.items():
        if not plain_key(name):
            check_keys(where, {name: None}, ())
        entry = dict(mapping(f"{name}", entry, "a mapping of model fields", optional=False))
        check_keys(name, entry, known)
        for key in _INT_FIELDS:
            whole(f"{name}.{key}", entry.get(key), 1, MAX_MODEL_SIZE)
        for key in ("head_dim", "max_positions", "context_window", "projector_layers"):
            if key in entry:
                whole(f"{name}.{key}", entry[key], 0, MAX_MODEL_SIZE)
        if entry.get("sliding_window") is not None:
            whole(f"{name}.sliding_window", entry["sliding_window"], 1, MAX_MODEL_SIZE)
        entry["reference_params"] = number(f"{name}.reference_params", entry.get("reference_params"), 0, 1e15)
        for key in ("source", "mlp", "norm", "position", "eager_attention"):
            if key in entry:
                string(f"{name}.{key}", entry[key], "a text value")
        vision = mapping(f"{name}.vision", entry.pop("vision", None), "a mapping of vision-tower fields")
        if vision:
            check_keys(f"{name}.vision", vision, [f.name for f in fields(VisionConfig)])
            for key in ("layers", "hidden", "heads", "ffn", "patch", "image"):
                whole(f"{name}.vision.{key}", vision.get(key), 1, MAX_MODEL_SIZE)
        try:
            models[name] = ModelConfig(name=name, vision=VisionConfig(**vision) if vision else None, **entry)
        except TypeError as exc:  # a required field missing
            raise ConfigError(str(name), Described("a model entry"), f"every field of ModelConfig ({exc})") from None
    return models


CONFIG_SUFFIX = ".json"


def is_config_path(name) -> bool:
    """Whether a model name is a path to a Hugging Face ``config.json`` (it ends in ``.json``)."""
    return isinstance(name, str) and name.endswith(CONFIG_SUFFIX)


def get_model(name: str) -> ModelConfig:
    """The zoo model called ``name``, or the model of a Hugging Face ``config.json`` when ``name`` is a path
    ending in ``.json`` (read from disk by :func:`benchmarks.hf_config.model_fields`); a clear error
    listing the known names otherwise."""
    if is_config_path(name):
        path = Path(name)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise ConfigError("model", name, "a zoo model name or an existing Hugging Face config.json") from None
        return _config_model(name, str(path.resolve()), stamp)
    models = load_models()
    if isinstance(name, str) and name in load_moe_models():
        raise ConfigError("model", name, "a dense model (" + ", ".join(models) + ", or a Hugging Face config.json): "
                          "this command does not model mixtures of experts; `rdusim predict` does")
    if not isinstance(name, str) or name not in models:
        raise ConfigError("model", name, ", ".join(models) + " or a path to a Hugging Face config.json")
    return models[name]


@lru_cache(maxsize=64)
def _config_model(name: str, resolved: str, stamp: int) -> ModelConfig:
    """The model of a config.json, read once per file version (path and modification time)."""
    fields_ = model_fields(read_config(resolved), Path(name).name)
    return ModelConfig(name=name, reference_params=0.0, **fields_)


def _norm_params(cfg_norm: str, width: int) -> int:
    return width * (2 if cfg_norm == "layernorm" else 1)


def decoder_layer_params(m: ModelConfig) -> dict[str, int]:
    """Parameters of one decoder layer by part: attention, MLP, norms."""
    attn = m.hidden * (m.q_dim + 2 * m.kv_dim) + m.q_dim * m.hidden
    if m.attn_bias:
        attn += m.q_dim + 2 * m.kv_dim + m.hidden
    n_up = 2 if m.mlp == "swiglu" else 1
    mlp = (n_up + 1) * m.hidden * m.ffn
    if m.mlp_bias:
        mlp += n_up * m.ffn + m.hidden
    return {"attention": attn, "mlp": mlp, "norms": m.norms_per_layer * _norm_params(m.norm, m.hidden)}


def vision_params(m: ModelConfig) -> int:
    """Parameters of the vision tower and projector (CLIP ViT layout: biased linears, LayerNorm)."""
    if not m.vision:
        return 0
    v = m.vision
    embed = v.channels * v.patch**2 * v.hidden + v.hidden + (v.patches + 1) * v.hidden  # conv, class, positions
    layer = 4 * (v.hidden * v.hidden + v.hidden) + 2 * v.hidden * v.ffn + v.ffn + v.hidden + 2 * 2 * v.hidden
    norms = 2 * 2 * v.hidden  # pre- and post-LayerNorm
    projector = v.hidden * m.hidden + m.hidden + (m.projector_layers - 1) * (m.hidden * m.hidden + m.hidden)
    return embed + v.layers * layer + norms + projector


def param_breakdown(m: ModelConfig) -> dict[str, int]:
    """Parameter count by part: embedding, positions, layers, final norm, LM head, vision."""
    layer = sum(decoder_layer_params(m).values())
    return {
        "embedding": m.vocab * m.hidden + (_norm_params(m.norm, m.hidden) if m.embed_norm else 0),
        "positions": m.max_positions * m.hidden if m.position == "learned" else 0,
        "layers": m.layers * layer,
        "final_norm": _norm_params(m.norm, m.hidden),
        "lm_head": 0 if m.tied_embeddings else m.vocab * m.hidden,
        "vision": vision_params(m),
    }


def param_count(m: ModelConfig) -> int:
    """Total parameters, computed from the architecture."""
    return sum(param_breakdown(m).values())


def weight_bytes(m: ModelConfig, bytes_per_param: int = BF16_BYTES) -> int:
    """Bytes of the weights at ``bytes_per_param`` (BF16 by default, as the article serves them)."""
    return param_count(m) * bytes_per_param


def matmul_params_per_token(m: ModelConfig) -> int:
    """Weights each language-model token multiplies against: every decoder linear and the LM head."""
    per_layer = decoder_layer_params(m)
    n_up = 2 if m.mlp == "swiglu" else 1
    linear = (m.hidden * (m.q_dim + 2 * m.kv_dim) + m.q_dim * m.hidden) + (n_up + 1) * m.hidden * m.ffn
    assert linear <= per_layer["attention"] + per_layer["mlp"]
    return m.layers * linear + m.vocab * m.hidden


def attended_positions(m: ModelConfig, context: int) -> int:
    """Keys one query attends to at ``context`` tokens (capped by a sliding window)."""
    return min(context, m.sliding_window) if m.sliding_window else context


def flops_per_token(m: ModelConfig, context: int) -> float:
    """Forward FLOPs for one language-model token that attends to ``context`` earlier tokens.

    2 FLOPs per multiply-add: 2 x (decoder linears + LM head) + 4 x layers x q_dim x attended
    positions (QK^T and attention x V). Element-wise work (norms, activations, softmax) is a
    lower-order term and is left out of this closed form; the operator graphs count it.
    """
    return 2.0 * matmul_params_per_token(m) + 4.0 * m.layers * m.q_dim * attended_positions(m, context)


def kv_bytes_per_token(m: ModelConfig, bytes_per_value: int = BF16_BYTES) -> int:
    """KV-cache bytes one token adds: keys and values of every layer's KV heads."""
    return 2 * m.layers * m.kv_dim * bytes_per_value
