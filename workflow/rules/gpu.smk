# GPU baselines: fit the GPU model's free constants to the H100 measurements and check it.


rule gpu_calibration:
    output:
        constants="results/calibration/gpu_constants.yaml",
        table="results/validation/gpu_calibration.csv",
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
