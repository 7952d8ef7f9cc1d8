"""A Hugging Face config.json read offline (benchmarks/hf_config.py): the model it gives, and its errors."""
import json
from dataclasses import fields
from pathlib import Path

import pytest

from benchmarks.models import get_model, param_count
from rdusim.core.errors import ConfigError

CONFIGS = Path(__file__).parent / "data" / "hf_configs"
ARCHITECTURE = [f.name for f in fields(get_model("llama2-7b")) if f.name not in ("name", "source", "reference_params",
                                                                                 "extra", "rope_theta")]


def _arch(m):
    return {k: getattr(m, k) for k in ARCHITECTURE}


@pytest.mark.parametrize("config, zoo", [("llama-2-7b", "llama2-7b"), ("llama-3-8b", "llama3-8b"),
                                         ("llama-3.1-70b", "llama3.1-70b"), ("mistral-7b-v0.1", "mistral-7b")])
def test_config_gives_the_zoo_entry(config, zoo):
    """Every architecture field read from the published config equals the zoo's hand-copied entry."""
    assert _arch(get_model(str(CONFIGS / f"{config}.json"))) == _arch(get_model(zoo))


@pytest.mark.parametrize("config, params", [
    ("bloom-560m", 559_214_592),        # bigscience/bloom-560m model card
    ("gpt-neox-20b", 20_554_567_680),   # EleutherAI/gpt-neox-20b (Black et al. 2022: 20.6B)
    ("falcon-7b", 6.92e9),              # tiiuae/falcon-7b, the 7B model with a tied 65,024-token embedding
])
def test_other_families_count_their_published_parameters(config, params):
    assert param_count(get_model(str(CONFIGS / f"{config}.json"))) == pytest.approx(params, rel=0.002)


def test_family_layouts():
    falcon = get_model(str(CONFIGS / "falcon-7b.json"))
    assert (falcon.kv_heads, falcon.parallel_blocks, falcon.norms_per_layer, falcon.ffn, falcon.eager_attention) == (
        1, True, 1, 4 * 4544, "sdpa")
    bloom = get_model(str(CONFIGS / "bloom-560m.json"))
    assert (bloom.position, bloom.embed_norm, bloom.attn_bias, bloom.tied_embeddings) == ("alibi", True, True, True)
    neox = get_model(str(CONFIGS / "gpt-neox-20b.json"))
    assert (neox.parallel_blocks, neox.mlp, neox.norm, neox.context_window) == (True, "gelu", "layernorm", 2048)


def _write(tmp_path, **cfg):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


LLAMA = json.loads((CONFIGS / "llama-3-8b.json").read_text())


@pytest.mark.parametrize("change, field", [
    ({"model_type": "t5"}, "model_type"),
    ({"num_hidden_layers": None}, "num_hidden_layers"),
    ({"hidden_size": 0}, "hidden_size"),
    ({"hidden_size": True}, "hidden_size"),
    ({"hidden_act": "relu"}, "hidden_act"),
    ({"num_key_value_heads": 5}, "num_key_value_heads"),
    ({"num_local_experts": 8}, "num_local_experts"),
    ({"kv_lora_rank": 512}, "kv_lora_rank"),
    ({"tie_word_embeddings": "yes"}, "tie_word_embeddings"),
    ({"rope_theta": -1}, "rope_theta"),
])
def test_unmappable_field_is_named(tmp_path, change, field):
    cfg = {**LLAMA, **change}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        get_model(_write(tmp_path, **cfg))
    assert err.value.field == f"config.json.{field}"
    assert "\n" not in str(err.value)


def test_mixtral_is_refused_by_its_expert_count():
    with pytest.raises(ConfigError, match="num_local_experts.*mixture-of-experts"):
        get_model(str(CONFIGS / "mixtral-8x7b.json"))


@pytest.mark.parametrize("text, field", [("{", "config.json"), ("[1, 2]", "config.json")])
def test_bad_json_is_one_error(tmp_path, text, field):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        get_model(str(path))
    assert err.value.field.endswith(field)


def test_missing_file_names_model(tmp_path):
    with pytest.raises(ConfigError) as err:
        get_model(str(tmp_path / "nothing.json"))
    assert err.value.field == "model"
