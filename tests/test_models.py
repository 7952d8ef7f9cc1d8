"""Parameter counts, FLOPs and KV bytes computed from the architectures, against published values."""
import pytest

from benchmarks.models import (
    attended_positions,
    decoder_layer_params,
    flops_per_token,
    get_model,
    kv_bytes_per_token,
    load_models,
    param_count,
    weight_bytes,
)
from rdusim.core.errors import ConfigError

# Published parameter counts (model cards and papers), independent of models.yaml's own field.
PUBLISHED = {
    "llama2-7b": 6.74e9, "llama2-13b": 13.02e9, "llama2-70b": 68.98e9, "sparsegpt-13b": 12.85e9,
    "bloom-176b": 176.25e9, "mistral-7b": 7.24e9, "falcon-40b": 41.8e9, "llava1.5-7b": 7.06e9,
    # Hugging Face model pages of meta-llama/Meta-Llama-3-8B, -70B, Llama-3.1-8B, -70B, -405B
    "llama3-8b": 8.03e9, "llama3-70b": 70.6e9, "llama3.1-8b": 8.03e9, "llama3.1-70b": 70.6e9, "llama3.1-405b": 406e9,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_param_count_matches_published_size_within_1pct(name):
    assert param_count(get_model(name)) == pytest.approx(PUBLISHED[name], rel=0.01)


def test_llama2_7b_is_6_74_billion():
    assert round(param_count(get_model("llama2-7b")) / 1e9, 2) == 6.74


def test_every_zoo_model_has_a_published_check():
    assert set(load_models()) == set(PUBLISHED)


def test_llama2_7b_layer_by_hand():
    m = get_model("llama2-7b")
    parts = decoder_layer_params(m)
    assert parts["attention"] == 4 * 4096 * 4096
    assert parts["mlp"] == 3 * 4096 * 11008
    assert parts["norms"] == 2 * 4096


def test_gqa_shrinks_kv_projections_and_cache():
    m = get_model("llama2-70b")
    assert decoder_layer_params(m)["attention"] == 8192 * (8192 + 2 * 1024) + 8192 * 8192
    assert kv_bytes_per_token(m) == 2 * 80 * 1024 * 2


def test_weight_bytes_are_bf16():
    m = get_model("llama2-7b")
    assert weight_bytes(m) == 2 * param_count(m)


def test_kv_bytes_llama2_7b_half_mib_per_token():
    assert kv_bytes_per_token(get_model("llama2-7b")) == 2 * 32 * 4096 * 2 == 2**19


def test_flops_per_token_closed_form():
    m = get_model("llama2-7b")
    linears = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096
    assert flops_per_token(m, 4096) == 2 * linears + 4 * 32 * 4096 * 4096


def test_sliding_window_caps_attention():
    m = get_model("mistral-7b")
    assert attended_positions(m, 8192) == 4096
    assert flops_per_token(m, 8192) == flops_per_token(m, 4096)


def test_unknown_model_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="llama2-7b"):
        get_model("gpt-5")


@pytest.mark.parametrize("name, window", [("llama3-8b", 8192), ("llama3-70b", 8192), ("llama3.1-8b", 131072),
                                          ("llama3.1-70b", 131072), ("llama3.1-405b", 131072)])
def test_llama3_entries_share_the_published_layout(name, window):
    m = get_model(name)
    assert (m.vocab, m.kv_heads, m.head_dim, m.rope_theta, m.context_window) == (128256, 8, 128, 500000.0, window)
    assert not m.tied_embeddings and m.mlp == "swiglu"
