rule table1:
    output:
        "results/tables/table1_benchmarks.csv",
    params:
        cfg=cfg("benchmarks"),
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/table1.log",
    benchmark:
        "results/benchmarks/table1.tsv"
    script:
        "../scripts/table1.py"
