"""Write results/validation/sn40l_public.csv: every public SN40L number, published against predicted."""
from rdusim.core.tables import read_table
from baselines.gpu import GpuConstants
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.sn40l_public import public_rows
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    inp = snakemake.input  # noqa: F821
    use_gpu_constants(GpuConstants.load(inp.constants))
    write_csv(public_rows(read_table(inp.table2), read_table(inp.fig7), read_table(inp.inferred)),
              snakemake.output[0])  # noqa: F821
