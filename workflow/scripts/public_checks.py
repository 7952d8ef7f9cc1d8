"""Write the table of public per-user rates against the model (rdusim/data/public_checks.yaml)."""
from baselines.gpu import GpuConstants
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.speculative import draft_length_sensitivity, public_checks_table
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821  (the gpu_calibration rule's fit)
    write_csv(public_checks_table(), snakemake.output.table)  # noqa: F821
    write_csv(draft_length_sensitivity(), snakemake.output.draft_tokens)  # noqa: F821
