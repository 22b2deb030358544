rule compare:
    input:
        *[run_outputs_of(key, ["results/{run_id}/summary.json"]) for key in PLANS],
    output:
        table="results/COMPARISON.md",
        csv="results/comparison.csv",
        accuracy=report(
            "results/comparison_accuracy.png",
            caption="../report/comparison.rst",
            category="Comparison",
        ),
        elbo=report(
            "results/comparison_elbo.png",
            caption="../report/comparison.rst",
            category="Comparison",
        ),
    log:
        "results/logs/compare.log",
    benchmark:
        "results/benchmarks/compare.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/ssvae.yaml"
    shell:
        "python {SCRIPTS}/compare.py --results results > {log} 2>&1"


rule naming_legend:
    input:
        NAMING_SOURCE,
    output:
        "results/NAMING_LEGEND.md",
    log:
        "results/logs/naming_legend.log",
    benchmark:
        "results/benchmarks/naming_legend.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/ssvae.yaml"
    shell:
        "python {SCRIPTS}/naming_legend.py --out {output} > {log} 2>&1"
