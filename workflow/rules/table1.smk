rule table1:
    input:
        code=LIBRARY_CODE,
    output:
        report(
            "results/tables/table1_benchmarks.csv",
            caption="../report/table1.rst",
            category="Table 1: benchmarks",
        ),
    params:
        benchmarks=config["benchmarks"],
    conda:
        "../../environment.yml"
    log:
        "results/logs/table1.log",
    benchmark:
        "results/benchmarks/table1.tsv"
    script:
        "../scripts/table1.py"
