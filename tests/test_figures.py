"""Figures: SVG output is byte-identical from one run (process) to the next, and reference marks
come from the claims file."""
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rdusim.report.figstyle import label_overlaps, small_fonts
from rdusim.report.plots import _paper, plot_latency_vs_experts
from rdusim.report.validation import load_claims

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
    claims = {c["id"]: c["paper"] for c in load_claims()}
    assert _paper("fig6_fftconv_speedup") == float(claims["fig6_fftconv_speedup"])
    assert _paper("no_such_claim") is None
    assert _paper("fig6_decode_speedup_range") is None  # a range is not one value


def test_label_check_finds_overlapping_labels_and_labels_on_curves():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 2, 3], label="curve")
    ax.annotate("first", (1.0, 3.0))
    ax.annotate("second", (1.0, 3.0))          # drawn on top of the first
    ax.annotate("on it", (2.0, 2.0), ha="center", va="center")
    ax.annotate("clear", (2.6, 1.0), fontsize=5)
    found = label_overlaps(fig)
    assert any("'first' and 'second'" in f for f in found)
    assert any("'on it' lies on the curve 'curve'" in f for f in found)
    assert not any("clear" in f for f in found)
    assert small_fonts(fig) == ["1 labels at 5 pt (e.g. 'clear')"]
    plt.close(fig)


def test_fig7_labels_are_clear_when_three_dgx_share_an_oom_count(tmp_path, capsys):
    """Fig. 7 with the real shape of the problem: three DGX OOM at 148, SN40L at 890, both token counts."""


    rows = []
    for platform, limit, base in (("sn40l-node", 890, 0.1), ("dgx-a100", 148, 0.2), ("dgx-h100", 148, 0.15),
                                  ("dgx-h200", 148, 0.14)):
        for batch in (1, 8):
            for gen in (20, 200):
                for n in np.unique(np.geomspace(1, 1000, 40).astype(int)):
                    total = base * (1 + np.log10(n)) * (gen / 20) ** 0.6 * (1 + batch / 8) * 1e3
                    rows.append(dict(platform=platform, profile="paper", batch=batch, gen=gen, experts=n,
                                     fits=n <= limit, total_ms=total, max_experts=limit))
    plot_latency_vs_experts(pd.DataFrame(rows), [str(tmp_path / "fig7.png")])
    assert "rdusim: figure" not in capsys.readouterr().err
    assert (tmp_path / "fig7.png").stat().st_size > 0
