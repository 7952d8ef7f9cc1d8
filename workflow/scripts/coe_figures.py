"""Draw Figures 2 and 7, Table 2 against the article, and the sensitivity heatmaps."""
from rdusim.core.tables import read_table
from rdusim.report.coe_tables import sensitivity_default
from rdusim.report.pipeline import logged
from rdusim.report.plots import (
    plot_breakdown,
    plot_latency_vs_experts,
    plot_overall_vs_experts,
    plot_sensitivity,
    plot_table2,
)

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_breakdown(read_table(inp.fig2), [out.fig2, out.fig2_svg])
    fig7 = read_table(inp.fig7)
    plot_latency_vs_experts(fig7, [out.fig7, out.fig7_svg], "paper")
    plot_latency_vs_experts(fig7, [out.fig7m, out.fig7m_svg], "measured")
    plot_table2(read_table(inp.table2), [out.table2, out.table2_svg])
    plot_sensitivity(read_table(inp.sensitivity), [out.sens, out.sens_svg],
                     sensitivity_default(snakemake.params.cfg))  # noqa: F821
    plot_overall_vs_experts(read_table(inp.vs_experts), [out.vs_experts, out.vs_experts_svg])
