"""Figures: SVG output is byte-identical from one run (process) to the next, and reference marks
come from the claims file."""
import subprocess
import sys

from rdusim.report.plots import _paper

SCRIPT = """
import sys
import pandas as pd
from rdusim.report.plots import plot_footprint
table = pd.DataFrame({"platform": ["sn40l-node"] * 3 + ["dgx-h100"] * 3, "experts": [1, 500, 900] * 2,
                      "nodes": [1, 1, 2, 1, 12, 20], "experts_per_node_full_speed": [890] * 3 + [45] * 3})
plot_footprint(table, [sys.argv[1]])
"""


def test_svg_is_byte_identical_across_runs(tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"fig{k}.svg"
        subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert b"<dc:date>" not in outs[0]


def test_reference_values_come_from_the_claims_file():
    from rdusim.report.validation import load_claims

    claims = {c["id"]: c["paper"] for c in load_claims()}
    assert _paper("fig6_fftconv_speedup") == float(claims["fig6_fftconv_speedup"])
    assert _paper("no_such_claim") is None
    assert _paper("fig6_decode_speedup_range") is None  # a range is not one value

