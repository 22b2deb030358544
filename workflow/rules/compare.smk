rule compare:
    input:
        summaries_of_good_runs,
    output:
        table="results/COMPARISON.md",
        html="results/COMPARISON.html",
        report_table=report(
            "results/.report/comparison.html",
            caption="../report/comparison_table.rst",
            category="Comparison",
            labels={"item": "1. ranked table of every run"},
        ),
        csv="results/comparison.csv",
        # every run the comparison lists, whatever config list this invocation names: the report's run pages
        pages=report(
            directory("results/.report/runs"),
            patterns=["{name}__{arch}__{ts}.html"],
            caption="../report/run_pages.rst",
            category="Runs",
            # One label: the report's viewer turns a second label with two values, each on half the rows,
            # into a toggle, and then fails to open rows that do not pair up (two runs, or two archs x two seeds).
            labels={"run": "{name} · {arch} · {ts}"},
        ),
        accuracy=report(
            "results/comparison_accuracy.png",
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"item": "2. accuracy per run (plot)"},
        ),
        elbo=report(
            "results/comparison_elbo.png",
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"item": "3. ELBO per run, one panel per likelihood (plot)"},
        ),
    log:
        "results/logs/compare.log",
    benchmark:
        "results/benchmarks/compare.tsv"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        script=script("compare.py"),
    shell:
        "{params.script} --results results --pages {output.pages} > {log} 2>&1"


rule naming_legend:
    input:
        NAMING_SOURCE,
    output:
        "results/NAMING_LEGEND.md",
    log:
        "results/logs/naming_legend.log",
    benchmark:
        "results/benchmarks/naming_legend.tsv"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        script=script("naming_legend.py"),
    shell:
        "{params.script} --out {output} > {log} 2>&1"
