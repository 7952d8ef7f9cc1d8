import pytest
import yaml

from rdusim.core.errors import ConfigError
from rdusim.core.platforms import builtin_names, load_platform
from rdusim.core.units import split_unit, to_si


def test_units_convert_once_to_si():
    assert split_unit("hbm_bandwidth_GBps") == ("hbm_bandwidth", 1e9, "bytes/s")
    assert to_si({"sram_MiB": 520}, "x") == {"sram": 520 * 2**20}
    assert to_si({"p2p_latency_us": 5}, "x") == {"p2p_latency": pytest.approx(5e-6)}


def test_key_without_unit_is_rejected_with_allowed_suffixes():
    with pytest.raises(ConfigError, match="_GBps"):
        split_unit("hbm_bandwidth")


def test_sn40l_node_from_socket_file():
    node = load_platform("sn40l-node")
    assert node.devices == 8
    assert node.hbm_total == 8 * 64e9
    assert node.ddr_total == 8 * 1.5e12
    assert node.dev("peak_bf16") == 638e12
    assert node.dev("pcus") == 1040
    assert "clock" in node.assumed and "pcus" not in node.assumed


def test_dgx_capacities():
    for name in ("dgx-a100", "dgx-h100"):
        p = load_platform(name)
        assert p.hbm_total == 640e9 and p.host_memory == 2e12


def test_unknown_platform_lists_allowed():
    with pytest.raises(ConfigError) as err:
        load_platform("tpu-v9")
    assert "sn40l-node" in str(err.value) and "dgx-h100" in str(err.value)


def test_platform_from_path(tmp_path):
    spec = {"name": "mygpu", "kind": "gpu", "devices": 2,
            "device": {"published": {"hbm_capacity_GB": 96, "hbm_bandwidth_GBps": 4000}}}
    path = tmp_path / "mygpu.yaml"
    path.write_text(yaml.safe_dump(spec))
    p = load_platform(str(path))
    assert p.hbm_total == 192e9
    assert (p.default_stack, p.serving_stack) == ("nemo-2023", "trtllm")  # the kind's defaults
    mine = tmp_path / "mygpu2.yaml"
    mine.write_text(yaml.safe_dump({**spec, "serving_stack": "vllm"}))
    assert load_platform(str(mine)).serving_stack == "vllm"
    bad = tmp_path / "mygpu3.yaml"
    bad.write_text(yaml.safe_dump({**spec, "serving_stack": 7}))
    with pytest.raises(ConfigError, match="serving_stack"):
        load_platform(str(bad))


def test_bad_field_in_platform_file_is_named(tmp_path):
    spec = {"kind": "gpu", "device": {"published": {"hbm_capacity_GB": "lots"}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="hbm_capacity_GB"):
        load_platform(str(path))


def test_schema_platform_enums_match_builtin_files(repo_root):
    schema = yaml.safe_load((repo_root / "workflow/schemas/config.schema.yaml").read_text())
    plats = schema["properties"]["platforms"]["properties"]
    assert sorted(plats["rdu"]["items"]["enum"] + plats["gpu"]["items"]["enum"]) == builtin_names()
