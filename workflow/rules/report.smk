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
            # One label: the report's viewer turns a second label with two values, each on half the rows,
            # into a toggle, and then fails to open rows that do not pair up (two runs, or two archs x two seeds).
            labels={"run": "{name} · {arch} · {ts}"},
        ),
        figures=report(
            directory("results/{name}__{arch}__{ts}/figures"),
            patterns=["{figure}.png"],
            caption="../report/figures.rst",
            category=figures_category,
            subcategory="{arch}",
            labels={"run": "{name} · {ts}", "figure": "{figure}"},
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
