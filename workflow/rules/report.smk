rule report:
    input:
        # a TPE trial's stages read the values asked for it
        asked_batch,
        train="results/{name}__{arch}__{ts}/train.json",
        history="results/{name}__{arch}__{ts}/history.csv",
        metrics="results/{name}__{arch}__{ts}/metrics.json",
        predictions="results/{name}__{arch}__{ts}/predictions.npz",
    output:
        summary="results/{name}__{arch}__{ts}/summary.json",
        report_md="results/{name}__{arch}__{ts}/REPORT.md",
        config="results/{name}__{arch}__{ts}/config.yaml",
        # shown in the Snakemake report through the compare job's copy (results/.report/runs/), so that the
        # report has a page for every run of the workspace, not only for this invocation's
        report_html="results/{name}__{arch}__{ts}/REPORT.html",
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
