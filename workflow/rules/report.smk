rule report:
    input:
        train="results/{name}__{arch}__{ts}/train.json",
        history="results/{name}__{arch}__{ts}/history.csv",
        metrics="results/{name}__{arch}__{ts}/metrics.json",
        predictions="results/{name}__{arch}__{ts}/predictions.npz",
    output:
        summary="results/{name}__{arch}__{ts}/summary.json",
        report_md="results/{name}__{arch}__{ts}/REPORT.md",
        config="results/{name}__{arch}__{ts}/config.yaml",
        report_html=report(
            "results/{name}__{arch}__{ts}/REPORT.html",
            caption="../report/run_report.rst",
            category="Runs",
            labels={"experiment": "{name}", "arch": "{arch}", "timestamp": "{ts}"},
        ),
        figures=report(
            directory("results/{name}__{arch}__{ts}/figures"),
            patterns=["{figure}.png"],
            caption="../report/figures.rst",
            category=figures_category,
            subcategory="{arch}",
            labels={"experiment": "{name}", "figure": "{figure}", "timestamp": "{ts}"},
        ),
    log:
        "results/{name}__{arch}__{ts}/logs/report.log",
    benchmark:
        "results/{name}__{arch}__{ts}/benchmarks/report.tsv"
    group:
        "evaluate_report"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        **SLURM,
        mem_mb=doubling(500),
        runtime=doubling(10),
    params:
        script=script("report.py"),
        section=report_section,
    shell:
        "{params.script} --run-dir results/{wildcards.name}__{wildcards.arch}__{wildcards.ts} > {log} 2>&1"
