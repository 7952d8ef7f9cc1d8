"""Capacity model (Fig. 8) against hand arithmetic and the article's claims."""
import pytest

from benchmarks.models import get_model, weight_bytes
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.report.validation import claims_frame
from rdusim.scenarios.footprint import (
    CoEDeployment,
    experts_in_hbm,
    footprint_claims,
    full_speed_experts,
    max_experts,
    nodes_needed,
)

DEP = CoEDeployment.from_config()
EXPERT = weight_bytes(get_model("llama2-7b"))


def test_expert_is_13_5_gb():
    assert EXPERT == pytest.approx(13.48e9, rel=1e-3)


def test_dgx_hbm_holds_experts_beside_router_and_kv():
    kv = 2**19 * 8 * 4096
    expected = int((640e9 - EXPERT - kv) // EXPERT)
    assert experts_in_hbm(load_platform("dgx-h100"), DEP) == expected == 45


def test_sn40l_node_serves_ddr_capacity():
    assert full_speed_experts(load_platform("sn40l-node"), DEP) == int(12e12 // EXPERT) == 890


def test_exclusive_tiering_adds_tiers():
    dep = CoEDeployment.from_config({"tiering": "exclusive"})
    p = load_platform("dgx-h100")
    assert max_experts(p, dep) == experts_in_hbm(p, dep) + int(2e12 // EXPERT)


def test_reserve_shrinks_capacity():
    dep = CoEDeployment.from_config({"hbm_reserve_fraction": 0.5})
    assert experts_in_hbm(load_platform("dgx-h100"), dep) < experts_in_hbm(load_platform("dgx-h100"), DEP)


def test_nodes_needed_steps_at_capacity():
    p = load_platform("dgx-h100")
    assert nodes_needed(45, p, DEP) == 1
    assert nodes_needed(46, p, DEP) == 2


def test_bad_deployment_values_are_named():
    with pytest.raises(ConfigError, match="coe.tiering"):
        CoEDeployment.from_config({"tiering": "magic"})
    with pytest.raises(ConfigError, match="hbm_reserve_fraction"):
        CoEDeployment.from_config({"hbm_reserve_fraction": 1.5})
    with pytest.raises(ConfigError, match="experts"):
        nodes_needed(0, load_platform("dgx-h100"), DEP)


def test_capacity_claims_pass_and_fail_when_they_drift():
    frame = claims_frame([footprint_claims(DEP)]).set_index("id")
    for claim in ("sn40l_node_max_experts", "dgx_nodes_for_sn40l_node", "dgx_oom_experts",
                  "dgx_spill_experts", "samba_coe_total_params"):
        assert frame.loc[claim, "status"] == "pass", claim
    # With the article's 1.5 TiB reading of DDR or a 30% reserve, the same checks must notice.
    drifted = CoEDeployment.from_config({"slow_tier_reserve_fraction": 0.3})
    frame = claims_frame([footprint_claims(drifted)]).set_index("id")
    assert frame.loc["sn40l_node_max_experts", "status"] == "fail"
