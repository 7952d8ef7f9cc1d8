"""The table "CoE vs MoE on the three tiers" (issue 21)."""
import numpy as np
import pytest

from rdusim.report.moe_tables import coe_vs_moe, hot_experts_effect

CFG = {"coe_vs_moe": {"platforms": ["sn40l-node", "dgx-h100", "dgx-h200"], "experts": 150, "moe_model": "deepseek-v3",
                      "moe_precisions": ["bf16", "fp8"], "batches": [1, 8, 64], "gen": 20, "profile": "model"}}


@pytest.fixture(scope="module")
def table():
    return coe_vs_moe(CFG)


def test_placement_of_the_moe_on_the_sn40l_is_in_the_table(table):
    moe = table[(table.platform == "sn40l-node") & (table.kind == "MoE")]
    assert moe.fits.all()
    bf16 = moe[moe.precision == "bf16"].iloc[0]
    assert 0 < bf16.experts_in_hbm < 256 and "routed experts per layer in HBM" in bf16.placement
    assert bf16.weights_hbm_GB_per_device <= 64 and bf16.weights_slow_GB_per_device > 0
    # FP8 halves the expert bytes: more of them fit in HBM
    assert moe[moe.precision == "fp8"].experts_in_hbm.iloc[0] > bf16.experts_in_hbm


def test_moe_latency_grows_with_batch_as_more_experts_are_touched(table):
    moe = table[(table.platform == "sn40l-node") & (table.kind == "MoE") & (table.precision == "bf16")]
    assert np.all(np.diff(moe.expected_experts_used) > 0) and np.all(np.diff(moe.ms_per_token) > 0)


def test_dgx_rows_that_do_not_fit_say_why(table):
    dgx = table[table.platform.str.startswith("dgx")]
    bad = dgx[~dgx.fits]
    assert (bad.reason.str.len() > 0).all()
    assert bad[bad.kind == "CoE"].reason.str.contains("148").all()
    h200_fp8 = dgx[(dgx.platform == "dgx-h200") & (dgx.kind == "MoE") & (dgx.precision == "fp8")]
    assert h200_fp8.fits.all() and (h200_fp8.tokens_per_s_node > 0).all()


def test_hot_experts_in_hbm_effect_table():
    cfg = {"moe_hot_experts": {"platforms": ["sn40l-node"], "model": "deepseek-v3", "precision": "bf16", "batches": [8],
                               "hot": [0, 32, "max"], "zipf": [0.0, 1.0], "prompt": 128, "gen": 16}}
    t = hot_experts_effect(cfg)
    for _, g in t.groupby("zipf"):
        assert np.all(np.diff(g.decode_ms_per_token) < 0) and np.all(np.diff(g.ddr_GB_per_step_per_socket) < 0)
    uniform, skewed = (t[(t.zipf == z) & (t.hot_requested == 32)].decode_ms_per_token.iloc[0] for z in (0.0, 1.0))
    assert skewed < uniform  # under skew the hot experts catch more of the traffic
