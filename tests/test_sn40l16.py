"""The 16-socket SN40L system (rdusim/data/platforms/sn40l-16.yaml): [HC]'s per-socket figures on top of
the socket file, the all-reduce across its two 8-socket halves, TP16, and weights in DDR when HBM is full."""
import pytest
import yaml

from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.scenarios.predict import predict_one, rdu_chip
from rdusim.sn40l.chip import group_links


def test_sn40l_16_takes_hot_chips_figures_over_the_socket_file():
    sys16, socket = load_platform("sn40l-16"), load_platform("sn40l")
    assert sys16.devices == 16
    assert sys16.hbm_total == 1e12 * 1.024 and sys16.ddr_total == 24e12       # [HC]: 1 TB HBM, 24 TB DDR
    assert sys16.devices * sys16.dev("hbm_bandwidth") == pytest.approx(25.6e12)  # [HC] 25.6 TB/s
    assert sys16.devices * sys16.dev("ddr_bandwidth") == pytest.approx(1.6e12)   # [HC] 1600 GB/s
    assert socket.dev("hbm_bandwidth") == 2e12 and socket.dev("ddr_bandwidth") == 200e9  # the node keeps [A]/[P]
    assert sys16.dev("ddr_to_hbm") == sys16.dev("ddr_bandwidth")
    assert "ddr_to_hbm" in sys16.assumed and "hbm_bandwidth" not in sys16.assumed
    assert {"node.half_sockets", "node.cross_half_bandwidth", "node.cross_half_latency"} <= sys16.assumed
    assert sys16.dev("pcus") == 1040 and sys16.dev("p2p_latency") == socket.dev("p2p_latency")


def test_device_override_beside_device_file_is_checked(tmp_path):
    spec = {"kind": "rdu", "device_file": "sn40l", "devices": 2,
            "device": {"published": {"hbm_bandwith_GBps": 1600}}}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="hbm_bandwidth_GBps"):
        load_platform(str(path))


def test_all_reduce_across_halves():
    p = load_platform("sn40l-16")
    assert group_links(p, 8) == (p.dev("p2p_bandwidth"), p.dev("p2p_latency"))   # inside one half
    bw, lat = group_links(p, 16)
    # 2 (w-1)/w S at the returned rate == 2 (h-1)/h S in the half + 2 (g-1)/g S/h across, h = 8, g = 2
    s = 1e6
    intra, cross = p.dev("p2p_bandwidth"), p.node["cross_half_bandwidth"]
    assert 2 * 15 / 16 * s / bw == pytest.approx(2 * 7 / 8 * s / intra + 1 / 8 * s / cross)
    assert lat == max(p.dev("p2p_latency"), p.node["cross_half_latency"])
    assert rdu_chip("sn40l-16", 16).p2p_bandwidth == bw and rdu_chip("sn40l-16", 8).p2p_bandwidth == intra


def test_tp16_runs_and_is_faster_than_tp8():
    tp8 = predict_one("sn40l-16", "llama2-7b", tp=8, prompt=1000, gen=500)
    tp16 = predict_one("sn40l-16", "llama2-7b", tp=16, prompt=1000, gen=500)
    assert tp8["fits"] and tp16["fits"]
    assert 0.5 < tp16["decode_ms_per_token"] / tp8["decode_ms_per_token"] < 0.9
    with pytest.raises(ConfigError, match="1 to 16"):
        predict_one("sn40l-16", "llama2-7b", tp=32)


def test_weights_past_hbm_stream_from_ddr():
    """bloom-176b (352 GB) on 4 sockets: 88 GB of weights per socket, more than its 64 GB of HBM. It fits
    with the rest of its weights in DDR, and decode slows by the DDR share (100 GB/s against 1.6 TB/s)."""
    spill = predict_one("sn40l-16", "bloom-176b", tp=4, prompt=128, gen=16)
    held = predict_one("sn40l-16", "bloom-176b", tp=8, prompt=128, gen=16)
    assert spill["fits"] and held["fits"]
    assert spill["decode_ms_per_token"] > 4 * held["decode_ms_per_token"]


@pytest.mark.parametrize("device", [1.0, "x", [1]])
def test_device_override_that_is_not_a_mapping_is_a_config_error(tmp_path, device):
    path = tmp_path / "me.yaml"
    path.write_text(yaml.safe_dump({"kind": "gpu", "device_file": "h100-sxm", "device": device}))
    with pytest.raises(ConfigError, match="device"):
        load_platform(str(path))


def test_sn40l_node_hc_is_one_half_of_sn40l_16():
    """The source choice as a platform: the 8-socket node with [HC]'s per-socket figures."""
    hc, sys16, node = load_platform("sn40l-node-hc"), load_platform("sn40l-16"), load_platform("sn40l-node")
    assert hc.devices == 8 and hc.default_stack == "sambaflow-2024"
    for key in ("hbm_bandwidth", "ddr_bandwidth", "ddr_to_hbm", "hbm_capacity", "ddr_capacity", "p2p_latency"):
        assert hc.dev(key) == sys16.dev(key)
    assert hc.dev("hbm_bandwidth") < node.dev("hbm_bandwidth")
    a = predict_one("sn40l-node-hc", "llama2-7b", tp=8, prompt=128, gen=20, stack="kernels")
    b = predict_one("sn40l-16", "llama2-7b", tp=8, prompt=128, gen=20, stack="kernels")
    assert a["total_ms"] == pytest.approx(b["total_ms"], rel=1e-12)  # TP8 stays inside one half
