# GPU baselines: fit the GPU model's free constants to the H100 measurements and check it.


rule gpu_calibration:
    input:
        code=LIBRARY_CODE,
    output:
        constants="results/calibration/gpu_constants.yaml",
        table=report(
            "results/validation/gpu_calibration.csv",
            caption="../report/gpu_calibration.rst",
            category="GPU baselines",
        ),
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
        code=LIBRARY_CODE,
    output:
        png=report(
            "results/figures/gpu_calibration.png",
            caption="../report/gpu_calibration.rst",
            category="GPU baselines",
        ),
        svg="results/figures/gpu_calibration.svg",
    conda:
        "../../environment.yml"
    log:
        "results/logs/gpu_calibration_figure.log",
    benchmark:
        "results/benchmarks/gpu_calibration_figure.tsv"
    script:
        "../scripts/gpu_calibration_figure.py"
