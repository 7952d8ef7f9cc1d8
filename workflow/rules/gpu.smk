# GPU baselines: fit the GPU model's free constants to the H100 measurements, an engine's kernel efficiency
# to LMDeploy's A100 batch-1 decode and its runtime work to NeMo's H100 rows (the article's GPU source),
# and check it on held-out and unseen data (median/max error per split, GPU, mode; NeMo's A100 rows).


rule gpu_calibration:
    input:
        numba=NUMBA_KERNELS,  # its kernels compiled (common.smk)
    output:
        constants="results/calibration/gpu_constants.yaml",
        table="results/validation/gpu_calibration.csv",
        summary="results/validation/gpu_calibration_summary.csv",
        engine="results/validation/gpu_engine_nemo.csv",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/gpu_calibration.log",
    benchmark:
        "results/benchmarks/gpu_calibration.tsv"
    script:
        "../scripts/gpu_calibration.py"


rule gpu_calibration_figure:
    input:
        table="results/validation/gpu_calibration.csv",
    output:
        png=report(
            "results/figures/gpu_calibration.png",
            caption="../report/gpu_calibration.rst",
            category="GPU baselines",
        ),
        svg="results/figures/gpu_calibration.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/gpu_calibration_figure.log",
    benchmark:
        "results/benchmarks/gpu_calibration_figure.tsv"
    script:
        "../scripts/gpu_calibration_figure.py"


rule gpu_engine_figure:
    input:
        table="results/validation/gpu_engine_nemo.csv",
    output:
        png=report(
            "results/figures/gpu_engine_nemo.png",
            caption="../report/gpu_engine_nemo.rst",
            category="GPU baselines",
        ),
        svg="results/figures/gpu_engine_nemo.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/gpu_engine_figure.log",
    benchmark:
        "results/benchmarks/gpu_engine_figure.tsv"
    script:
        "../scripts/gpu_engine_figure.py"


# The GPU model against 834 independent measurements (Argonne, Splitwise, TensorRT-LLM docs): every row
# with its prediction, error, stack and fitted/predicted split; the summary per source x GPU x stack x
# metric; the cross-validation across GPUs (rdusim/report/gpu_validation.py).
rule gpu_validation:
    input:
        data=str(BASELINES_DATA / "published" / "validation" / "measured_latency.csv"),
        numba=NUMBA_KERNELS,  # its kernels compiled (common.smk)
    output:
        table="results/validation/measured_latency.csv",
        summary="results/validation/gpu_validation_summary.csv",
        crossval="results/validation/gpu_validation_crossval.csv",
    params:
        code=CODE_VERSION,
    priority: 50  # a long job: start it as soon as its inputs exist, so the short ones fill around it
    conda:
        "../../environment.yml"
    log:
        "results/logs/gpu_validation.log",
    benchmark:
        "results/benchmarks/gpu_validation.tsv"
    script:
        "../scripts/gpu_validation.py"


rule gpu_validation_figures:
    input:
        table="results/validation/measured_latency.csv",
    output:
        scatter_png=report("results/figures/gpu_validation.png", caption="../report/gpu_validation.rst",
                           category="GPU validation"),
        scatter_svg="results/figures/gpu_validation.svg",
        errors_png=report("results/figures/gpu_validation_errors.png", caption="../report/gpu_validation_errors.rst",
                          category="GPU validation"),
        errors_svg="results/figures/gpu_validation_errors.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/gpu_validation_figures.log",
    benchmark:
        "results/benchmarks/gpu_validation_figures.tsv"
    script:
        "../scripts/gpu_validation_figures.py"
