"""Operator graphs of decoder-only language models, from one parameterised decoder layer.

The graph is what an eager framework (PyTorch, Hugging Face modelling code) issues for one device
of a tensor-parallel group: norms, Q/K/V projections, rotary embedding, KV-cache update, repeated KV
heads for grouped-query attention, attention scores, scale, mask or ALiBi bias, softmax, attention x V,
output projection, all-reduce, residual; then the MLP (SwiGLU, GELU or ReLU) with its all-reduce.
Variants come from the model's configuration (``benchmarks/data/models.yaml``): grouped KV heads,
sliding-window attention, ALiBi, LayerNorm vs RMSNorm, biases, parallel attention and MLP (Falcon),
a vision tower and projector (LLaVA).

Phases (article, Table 1): ``prefill`` (the whole prompt, writing the KV cache, logits of the last
token), ``decode`` (one token per sequence against a KV cache of ``seq_len``), ``train`` (forward
over the whole sequence with a loss, backward, Adam step). Tensor parallelism splits heads, the FFN
and the vocabulary ``tp`` ways (Megatron style) with two all-reduces per layer.
"""
from __future__ import annotations

from dataclasses import replace

from rdusim.core.errors import ConfigError
from rdusim.core.graph import (
    Graph,
    Kind,
    Op,
    Role,
    Tensor,
    allreduce,
    attention,
    elementwise,
    gather,
    matmul,
    norm,
    softmax,
    transpose,
)

from .models import ModelConfig, attended_positions

PHASES = ("prefill", "decode", "train")
# eager: attention as the model's eager modelling code issues it: separate PyTorch operators (scores
# materialised), as Hugging Face's eager code, unless the model's code calls SDPA itself
# (``eager_attention: sdpa`` in the zoo, e.g. Falcon);
# sdpa: one fused scaled-dot-product-attention operator (F.scaled_dot_product_attention).
ATTENTION_IMPLS = ("eager", "sdpa")
# Element-wise FLOPs: SiLU and GELU ~4 per element (exp, add, divide, multiply); ReLU 1.
ACTIVATION_FLOPS = {"swiglu": 4.0, "gelu": 4.0, "relu": 1.0}
VISION_LAYER0 = 1000  # layer tag of the first vision-tower layer (vision layers are their own sections)


class _Builder:
    """Adds ops to a graph with unique names and the current layer tag."""

    def __init__(self, graph: Graph, model: ModelConfig, tp: int, sparsity: float, attention_impl: str = "eager"):
        self.attention_impl = "sdpa" if model.eager_attention == "sdpa" else attention_impl
        self.g = graph
        self.m = model
        self.tp = tp
        self.sparsity = sparsity
        self.layer = -1
        self.block = ""

    def add(self, op: Op) -> Tensor:
        if op.layer != self.layer or op.block != self.block:
            op = replace(op, layer=self.layer, block=self.block)
        return self.g.add(op)

    @property
    def tags(self) -> dict:
        """The current layer and block, for op constructors (saves :meth:`add` a copy of the op)."""
        return {"layer": self.layer, "block": self.block}

    def name(self, base: str) -> str:
        return f"L{self.layer}.{base}" if self.layer >= 0 else base

    def weight(self, base: str, shape: tuple[int, ...]) -> Tensor:
        return Tensor(self.name(base), shape, "bf16", Role.WEIGHT)

    def linear(self, x: Tensor, base: str, out_features: int, bias: bool = False, sparse: bool = True) -> Tensor:
        """``x @ W (+ b)``; with weight sparsity the FLOPs and weight bytes shrink (see module doc)."""
        w = self.weight(base + ".weight", (x.shape[-1], out_features))
        op = matmul(self.name(base), x, w, self.name(base + ".out"), **self.tags)
        if bias:
            op = replace(op, inputs=op.inputs + (self.weight(base + ".bias", (out_features,)),))
        if sparse and self.sparsity > 0:
            dense = w.nbytes
            # nonzero BF16 values plus a one-bit-per-element mask as metadata
            kept = dense * (1 - self.sparsity) + w.numel / 8
            op = replace(op, flops=op.flops * (1 - self.sparsity), read_bytes_override={w.name: int(kept)})
        return self.add(op)

    def ew(self, inputs: tuple[Tensor, ...], base: str, flops: float = 1.0, **kw) -> Tensor:
        return self.add(elementwise(self.name(base), inputs, self.name(base + ".out"), flops, **kw, **self.tags))

    def norm(self, x: Tensor, base: str) -> Tensor:
        ln = self.m.norm == "layernorm"
        ws = (self.weight(base + ".weight", (x.shape[-1],)),)
        if ln:
            ws += (self.weight(base + ".bias", (x.shape[-1],)),)
        return self.add(norm(self.name(base), x, ws, self.name(base + ".out"), layernorm=ln, **self.tags))

    def allreduce(self, x: Tensor, base: str) -> Tensor:
        if self.tp == 1:
            return x
        return self.add(allreduce(self.name(base), x, self.tp, self.name(base + ".out"), **self.tags))


def _check(model: ModelConfig, phase: str, batch: int, seq_len: int, tp: int) -> None:
    if phase not in PHASES:
        raise ConfigError("phase", phase, ", ".join(PHASES))
    for field, value in (("batch", batch), ("seq_len", seq_len), ("tp", tp)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(field, value, "a whole number >= 1")
    for field, total in (("heads", model.heads), ("ffn", model.ffn), ("vocab", model.vocab)):
        if total % tp:
            raise ConfigError("tp", tp, f"a divisor of {model.name}.{field} = {total}")


def _attention(b: _Builder, x: Tensor, batch: int, tokens: int, context: int, phase: str) -> Tensor:
    m, tp = b.m, b.tp
    hq = m.heads // tp
    hkv = max(1, m.kv_heads // tp)
    d = m.head_dim
    q = b.linear(x, "q_proj", hq * d, m.attn_bias)
    k = b.linear(x, "k_proj", hkv * d, m.attn_bias)
    v = b.linear(x, "v_proj", hkv * d, m.attn_bias)
    if m.position == "rope":
        for name, t in (("q", q), ("k", k)):
            cos = Tensor(b.name(f"rope_cos_{name}"), (tokens, t.shape[-1]), "bf16", Role.INPUT)
            a = b.ew((t, cos), f"rope_{name}.mul_cos")
            neg = b.ew((t,), f"rope_{name}.neg")
            rot = b.ew((neg,), f"rope_{name}.cat", 0.0)
            s = b.ew((rot, cos), f"rope_{name}.mul_sin")
            t = b.ew((a, s), f"rope_{name}.add")
            if name == "q":
                q = t
            else:
                k = t
    qh = b.add(transpose(b.name("q_heads"), Tensor(q.name, (batch, tokens, hq, d), q.dtype), (0, 2, 1, 3),
                         b.name("q_heads.out")))
    attended = attended_positions(m, context)
    if phase == "decode":
        # append this step's K and V to the cache, then attend over the cached window
        cache_k = Tensor(b.name("k_cache"), (batch, hkv, attended, d), "bf16", Role.KV_CACHE)
        cache_v = Tensor(b.name("v_cache"), (batch, hkv, attended, d), "bf16", Role.KV_CACHE)
        b.ew((k,), "k_cache.update", 0.0)
        b.ew((v,), "v_cache.update", 0.0)
        keys, vals = cache_k, cache_v
    else:
        keys = b.add(transpose(b.name("k_heads"), Tensor(k.name, (batch, tokens, hkv, d), k.dtype), (0, 2, 1, 3),
                               b.name("k_heads.out")))
        vals = b.add(transpose(b.name("v_heads"), Tensor(v.name, (batch, tokens, hkv, d), v.dtype), (0, 2, 1, 3),
                               b.name("v_heads.out")))
        if phase == "prefill":  # the KV cache is written for later decoding
            b.ew((keys,), "k_cache.write", 0.0)
            b.ew((vals,), "v_cache.write", 0.0)
        attended = tokens  # eager attention scores every pair, then masks
    if b.attention_impl == "sdpa":
        ctx = b.add(attention(b.name("sdpa"), qh, keys, vals, b.name("sdpa.out"), causal=phase != "decode"))
        ctx = b.add(transpose(b.name("merge_heads"), ctx, (0, 2, 1, 3), b.name("merge_heads.out")))
        ctx = Tensor(ctx.name, (batch, tokens, hq * d), ctx.dtype)
        return b.linear(ctx, "o_proj", m.hidden, m.attn_bias)
    if hkv < hq:  # grouped-query attention: eager code materialises repeated KV heads
        keys = b.ew((keys,), "repeat_k", 0.0, out_shape=(batch, hq, keys.shape[2], d))
        vals = b.ew((vals,), "repeat_v", 0.0, out_shape=(batch, hq, vals.shape[2], d))
    scores = b.add(matmul(b.name("qk"), qh, keys, b.name("qk.out"), transpose_b=True))
    scores = b.ew((scores,), "scale")
    if m.position == "alibi":
        slopes = Tensor(b.name("alibi"), (hq, 1, attended), "bf16", Role.INPUT)
        scores = b.ew((scores, slopes), "alibi_bias")
    if phase != "decode" or m.sliding_window:
        mask = Tensor(b.name("mask"), (tokens, attended), "bf16", Role.INPUT)
        scores = b.ew((scores, mask), "mask")
    probs = b.add(softmax(b.name("softmax"), scores, b.name("softmax.out")))
    ctx = b.add(matmul(b.name("av"), probs, vals, b.name("av.out")))
    ctx = b.add(transpose(b.name("merge_heads"), ctx, (0, 2, 1, 3), b.name("merge_heads.out")))
    ctx = Tensor(ctx.name, (batch, tokens, hq * d), ctx.dtype)
    return b.linear(ctx, "o_proj", m.hidden, m.attn_bias)


def _mlp(b: _Builder, x: Tensor) -> Tensor:
    m = b.m
    f = m.ffn // b.tp
    if m.mlp == "swiglu":
        gate = b.linear(x, "gate_proj", f)
        up = b.linear(x, "up_proj", f)
        act = b.ew((gate,), "silu", ACTIVATION_FLOPS["swiglu"])
        h = b.ew((act, up), "gate_mul")
    else:
        up = b.linear(x, "fc_in", f, m.mlp_bias)
        h = b.ew((up,), m.mlp, ACTIVATION_FLOPS[m.mlp])
    return b.linear(h, "fc_out" if m.mlp != "swiglu" else "down_proj", m.hidden, m.mlp_bias)


def _decoder_layer(b: _Builder, x: Tensor, batch: int, tokens: int, context: int, phase: str) -> Tensor:
    """One decoder layer (pre-norm; Falcon's parallel attention and MLP when configured)."""
    m = b.m
    b.block = "attention"
    h = b.norm(x, "attn_norm")
    attn = _attention(b, h, batch, tokens, context, phase)
    if m.parallel_blocks:
        b.block = "mlp"
        h2 = b.norm(x, "mlp_norm")
        mlp = _mlp(b, h2)
        both = b.ew((attn, mlp), "attn_plus_mlp")
        both = b.allreduce(both, "allreduce")
        return b.ew((x, both), "residual")
    attn = b.allreduce(attn, "attn_allreduce")
    x = b.ew((x, attn), "attn_residual")
    b.block = "mlp"
    h = b.norm(x, "mlp_norm")
    out = b.allreduce(_mlp(b, h), "mlp_allreduce")
    return b.ew((x, out), "mlp_residual")


def _vision_tower(b: _Builder, batch: int) -> Tensor:
    """CLIP ViT (pre-norm, biased, QuickGELU) and the projector into the language model's width."""
    v = b.m.vision
    tp = b.tp
    tokens = v.patches + 1
    patches = Tensor("image_patches", (batch, v.patches, v.channels * v.patch**2), "bf16", Role.INPUT)
    b.layer, b.block = -1, "vision"
    x = b.linear(patches, "patch_embed", v.hidden, sparse=False)
    x = Tensor(x.name, (batch, v.patches, v.hidden), x.dtype)
    x = b.ew((x,), "add_class_and_positions", out_shape=(batch, tokens, v.hidden))
    for layer in range(v.layers):
        b.layer = VISION_LAYER0 + layer  # vision layers are their own sections
        h = b.add(norm(b.name("v_ln1"), x, (b.weight("v_ln1.w", (v.hidden,)),), b.name("v_ln1.out"), layernorm=True))
        heads = v.heads // tp
        d = v.hidden // v.heads
        q = b.linear(h, "v_q", heads * d, True, sparse=False)
        k = b.linear(h, "v_k", heads * d, True, sparse=False)
        val = b.linear(h, "v_v", heads * d, True, sparse=False)
        qh = Tensor(q.name, (batch, heads, tokens, d), q.dtype)
        kh = Tensor(k.name, (batch, heads, tokens, d), k.dtype)
        vh = Tensor(val.name, (batch, heads, tokens, d), val.dtype)
        s = b.add(matmul(b.name("v_qk"), qh, kh, b.name("v_qk.out"), transpose_b=True))
        s = b.ew((s,), "v_scale")
        p = b.add(softmax(b.name("v_softmax"), s, b.name("v_softmax.out")))
        c = b.add(matmul(b.name("v_av"), p, vh, b.name("v_av.out")))
        c = Tensor(c.name, (batch, tokens, heads * d), c.dtype)
        o = b.allreduce(b.linear(c, "v_o", v.hidden, True, sparse=False), "v_attn_allreduce")
        x = b.ew((x, o), "v_attn_residual")
        h = b.add(norm(b.name("v_ln2"), x, (b.weight("v_ln2.w", (v.hidden,)),), b.name("v_ln2.out"), layernorm=True))
        u = b.linear(h, "v_fc1", v.ffn // tp, True, sparse=False)
        u = b.ew((u,), "v_quick_gelu", ACTIVATION_FLOPS["gelu"])
        o = b.allreduce(b.linear(u, "v_fc2", v.hidden, True, sparse=False), "v_mlp_allreduce")
        x = b.ew((x, o), "v_mlp_residual")
    b.layer, b.block = -1, "projector"
    feats = Tensor(x.name, (batch, tokens, v.hidden), x.dtype)
    p = b.linear(feats, "proj_fc1", b.m.hidden, True, sparse=False)
    p = b.ew((p,), "proj_gelu", ACTIVATION_FLOPS["gelu"])
    return b.linear(p, "proj_fc2", b.m.hidden, True, sparse=False)


def forward_graph(model: ModelConfig, phase: str, batch: int, seq_len: int, tp: int = 1,
                  sparsity: float = 0.0, attention_impl: str = "eager") -> Graph:
    """Forward operator graph of one device for ``phase`` (``prefill``, ``decode``, or the forward of ``train``)."""
    _check(model, phase, batch, seq_len, tp)
    if attention_impl not in ATTENTION_IMPLS:
        raise ConfigError("attention", attention_impl, ", ".join(ATTENTION_IMPLS))
    if not 0 <= sparsity < 1:
        raise ConfigError("sparsity", sparsity, "a fraction in [0, 1)")
    g = Graph(f"{model.name}-{phase}-b{batch}-s{seq_len}-tp{tp}")
    b = _Builder(g, model, tp, sparsity, attention_impl)
    tokens = 1 if phase == "decode" else seq_len
    if model.vision and phase != "decode":
        _vision_tower(b, batch)
    ids = Tensor("token_ids", (batch, tokens), "int32", Role.INPUT)
    table = Tensor("embed.weight", (model.vocab, model.hidden), "bf16", Role.WEIGHT)
    b.layer, b.block = -1, "embedding"
    x = b.add(gather("embed", table, ids, "embed.out"))
    if model.position == "learned":
        pos = Tensor("positions", (tokens, model.hidden), "bf16", Role.INPUT)
        x = b.ew((x, pos), "add_positions")
    if model.embed_norm:
        x = b.norm(x, "embed_norm")
    for layer in range(model.layers):
        b.layer = layer
        x = _decoder_layer(b, x, batch, tokens, seq_len, phase)
    b.layer, b.block = model.layers, "head"
    x = b.norm(x, "final_norm")
    if phase == "prefill":  # only the last position's logits are needed for the first token
        x = b.ew((x,), "last_token", 0.0, out_shape=(batch, 1, model.hidden))
    logits = b.linear(x, "lm_head", model.vocab // tp, sparse=False)
    g.outputs.add(logits.name)
    return g


# Adam keeps two FP32 moments per parameter; gradients are BF16 (mixed precision).
ADAM_STATE_BYTES_PER_PARAM = 8
GRAD_BYTES_PER_PARAM = 2


def _backward_op(op: Op, b: _Builder) -> list[Op]:
    """Backward of one forward op: a matmul gives dX and dW matmuls of equal FLOPs; other ops one op
    of the same element work reading the output gradient and the saved input."""
    grad = Tensor("d." + op.output.name, op.output.shape, op.output.dtype, Role.INPUT)
    if op.kind == Kind.MATMUL:
        a, w = op.inputs[0], op.inputs[1]
        half = op.flops
        dx = replace(op, name="d." + op.name + ".dx", inputs=(grad, w), output=Tensor("d." + a.name, a.shape, a.dtype),
                     flops=half)
        dw_out = Tensor("d." + w.name, w.shape, w.dtype,
                        Role.STATE if w.role == Role.WEIGHT else Role.ACTIVATION)
        dw = replace(op, name="d." + op.name + ".dw", inputs=(a, grad), output=dw_out, flops=half,
                     read_bytes_override={})
        return [dx, dw]
    if op.kind == Kind.COLLECTIVE:
        return [replace(op, name="d." + op.name, inputs=(grad,), output=Tensor("d." + op.inputs[0].name,
                        op.inputs[0].shape, op.inputs[0].dtype))]
    x = op.inputs[0]
    saved = tuple(t if t.role != Role.ACTIVATION else Tensor(t.name, t.shape, t.dtype, Role.INPUT) for t in op.inputs)
    return [replace(op, name="d." + op.name, inputs=(grad,) + saved,
                    output=Tensor("d." + x.name + "." + op.name, x.shape, x.dtype), read_bytes_override={})]


def train_graph(model: ModelConfig, batch: int, seq_len: int, tp: int = 1, sparsity: float = 0.0) -> Graph:
    """Training step of one device: forward with all logits and a loss, backward, Adam update.

    Backward ops read the gradient of their output and the activations saved by the forward (from
    off-chip memory: activation recomputation is not modelled). The Adam step reads weights,
    gradients and two FP32 moments and writes them back, one element-wise op per layer.
    """
    g = forward_graph(model, "train", batch, seq_len, tp, sparsity)
    b = _Builder(g, model, tp, sparsity)
    b.layer, b.block = model.layers, "loss"
    logits = g.ops[-1].output
    b.add(replace(softmax("loss.softmax", logits, "loss.probs"), layer=model.layers))
    forward_ops = list(g.ops)
    for op in reversed(forward_ops):
        if op.kind == Kind.GATHER:
            continue
        for bop in _backward_op(op, b):
            g.add(bop)
    for layer in sorted({op.layer for op in forward_ops}):
        params = sum(t.numel for op in forward_ops if op.layer == layer for t in op.weight_inputs)
        if not params:
            continue
        state = Tensor(f"adam.L{layer}", (params,), "bf16", Role.STATE)
        moments = Tensor(f"adam.L{layer}.moments", (params * ADAM_STATE_BYTES_PER_PARAM // 2,), "bf16", Role.STATE)
        grads = Tensor(f"adam.L{layer}.grads", (params,), "bf16", Role.STATE)
        op = elementwise(f"adam.L{layer}", (state, moments, grads), f"adam.L{layer}.out", 10.0,
                         out_shape=(params * (2 + ADAM_STATE_BYTES_PER_PARAM) // 2,))
        g.add(replace(op, layer=model.layers + 1 + max(layer, -1), block="optimizer"))
    g.name = f"{model.name}-train-b{batch}-s{seq_len}-tp{tp}"
    return g


def layer_graph(model: ModelConfig, phase: str, batch: int, seq_len: int, tp: int = 1,
                sparsity: float = 0.0, attention_impl: str = "eager") -> tuple[Graph, dict[int, int]]:
    """The ``prefill`` or ``decode`` graph of ``model`` with one decoder layer (and one vision layer),
    and how many times each of those layers repeats in the full model: ``{layer tag: count}``.

    The ops of the full :func:`forward_graph` are the head, the one layer repeated, and the tail; the
    SN40L model plans this small graph and repeats the layer's kernels
    (:func:`rdusim.sn40l.tiled.plan_tiled`).
    """
    if phase not in ("prefill", "decode"):
        raise ConfigError("phase", phase, "prefill, decode (a layer graph has no training step)")
    one = replace(model, layers=1, vision=replace(model.vision, layers=1) if model.vision else None)
    graph = forward_graph(one, phase, batch, seq_len, tp, sparsity, attention_impl)
    repeats = {0: model.layers}
    if model.vision and phase != "decode":
        repeats[VISION_LAYER0] = model.vision.layers
    return graph, repeats


def workload_graph(model: ModelConfig, phase: str, batch: int, seq_len: int, tp: int = 1,
                   sparsity: float = 0.0, attention_impl: str = "eager") -> Graph:
    """The graph of ``phase`` (``prefill``, ``decode`` or ``train``) for one device."""
    if phase == "train":
        return train_graph(model, batch, seq_len, tp, sparsity)
    return forward_graph(model, phase, batch, seq_len, tp, sparsity, attention_impl)


def allreduces_per_pass(m: ModelConfig, tp: int) -> int:
    """All-reduces one pass of the language decoder issues on ``tp`` devices: one per layer with parallel
    attention and MLP (Falcon), else two (after attention and after the MLP); none on one device. The
    count of :func:`workload_graph`'s decoder layers (a vision tower's prompt-pass collectives aside)."""
    return 0 if tp <= 1 else m.layers * (1 if m.parallel_blocks else 2)
