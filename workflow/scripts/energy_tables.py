"""Write the energy and cost tables (Table 2's scenarios, Fig. 8's footprint) and the power model's
validation (Splitwise's A100 power, public NVML readings), with the GPU constants of the calibration rule."""
from baselines.gpu import GpuConstants
from rdusim.report.energy_tables import fig8_energy, table2_energy
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.power_validation import public_table, splitwise_table
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    cfg, out = snakemake.params.cfg, snakemake.output  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821
    write_csv(table2_energy(cfg), out.table2)
    write_csv(fig8_energy(cfg), out.fig8)
    write_csv(splitwise_table(), out.splitwise)
    write_csv(public_table(), out.public)
