# Beyond the article: trace-driven serving simulation and design-space sweeps in shards.


rule serving_tables:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        load="results/tables/serving_load.csv",
        policies="results/tables/serving_policies.csv",
        cost="results/tables/serving_cost.csv",
    params:
        cfg=cfg("serving", deployment=True),
        code=CODE_VERSION,
    threads: 1
    conda:
        "../../environment.yml"
    log:
        "results/logs/serving_tables.log",
    benchmark:
        "results/benchmarks/serving_tables.tsv"
    script:
        "../scripts/serving_tables.py"


rule serving_figures:
    input:
        load="results/tables/serving_load.csv",
        policies="results/tables/serving_policies.csv",
        cost="results/tables/serving_cost.csv",
    output:
        load=report("results/figures/serving_load.png", caption="../report/serving.rst", category="Serving simulation"),
        load_svg="results/figures/serving_load.svg",
        policies=report("results/figures/serving_policies.png", caption="../report/serving_policies.rst",
                        category="Serving simulation"),
        policies_svg="results/figures/serving_policies.svg",
        cost=report("results/figures/serving_cost.png", caption="../report/serving_cost.rst",
                    category="Serving simulation"),
        cost_svg="results/figures/serving_cost.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/serving_figures.log",
    benchmark:
        "results/benchmarks/serving_figures.tsv"
    script:
        "../scripts/serving_figures.py"


rule sweep_shard:
    input:
        numba=NUMBA_KERNELS,  # its kernels compiled (common.smk)
    output:
        "results/sweeps/{sweep}/shard_{shard}.csv",
    params:
        spec=lambda wc: config["sweeps"][wc.sweep],
        coe=coe_params(),
        code=CODE_VERSION,
    wildcard_constraints:
        shard=r"\d+",
    resources:
        runtime=120,
        mem_mb=2000,
    conda:
        "../../environment.yml"
    log:
        "results/logs/sweeps/{sweep}/shard_{shard}.log",
    benchmark:
        "results/benchmarks/sweeps/{sweep}/shard_{shard}.tsv"
    script:
        "../scripts/sweep_shard.py"


rule sweep_gather:
    input:
        shards=sweep_shards,
    output:
        "results/tables/sweep_{sweep}.csv",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/sweep_gather_{sweep}.log",
    benchmark:
        "results/benchmarks/sweep_gather_{sweep}.tsv"
    script:
        "../scripts/sweep_gather.py"


rule sweep_figure:
    input:
        table="results/tables/sweep_{sweep}.csv",
    output:
        png=report("results/figures/sweep_{sweep}.png", caption="../report/sweep.rst", category="Design-space sweeps"),
        svg="results/figures/sweep_{sweep}.svg",
    params:
        cfg=cfg("platforms", "coe"),  # the default point outlined: shipped platforms, Table 2's experts
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/sweep_figure_{sweep}.log",
    benchmark:
        "results/benchmarks/sweep_figure_{sweep}.tsv"
    script:
        "../scripts/sweep_figure.py"


rule serving_engine_tables:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        engines="results/tables/serving_engines.csv",
        capacity="results/tables/serving_capacity.csv",
        placement="results/tables/serving_placement.csv",
    params:
        cfg=cfg("serving.engine", "serving.placement", "serving.policy", "serving.max_batch", "serving.max_wait_s",
                "serving.gen", "serving.seed", deployment=True),
        code=CODE_VERSION,
    priority: 50  # a long job: start it as soon as its inputs exist, so the short ones fill around it
    threads: 1
    conda:
        "../../environment.yml"
    log:
        "results/logs/serving_engine_tables.log",
    benchmark:
        "results/benchmarks/serving_engine_tables.tsv"
    script:
        "../scripts/serving_engine_tables.py"


rule serving_engine_figure:
    input:
        engines="results/tables/serving_engines.csv",
        capacity="results/tables/serving_capacity.csv",
        placement="results/tables/serving_placement.csv",
    output:
        png=report("results/figures/serving_engines.png", caption="../report/serving_engines.rst",
                   category="Serving simulation"),
        svg="results/figures/serving_engines.svg",
        placement=report("results/figures/serving_placement.png", caption="../report/serving_placement.rst",
                         category="Serving simulation"),
        placement_svg="results/figures/serving_placement.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/serving_engine_figure.log",
    benchmark:
        "results/benchmarks/serving_engine_figure.tsv"
    script:
        "../scripts/serving_engine_figure.py"
