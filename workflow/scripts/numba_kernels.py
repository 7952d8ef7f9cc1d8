"""Compile every numba kernel the pipeline runs once into numba's on-disk cache (rdusim.scenarios.warm),
before the jobs that run them fan out; the output file records how long it took."""
from pathlib import Path

from rdusim.report.pipeline import logged
from rdusim.scenarios.warm import warm_numba_cache

with logged(snakemake.log[0]):  # noqa: F821
    seconds = warm_numba_cache()
    Path(snakemake.output[0]).write_text(f"numba kernels compiled and cached in {seconds:.1f} s\n")  # noqa: F821
