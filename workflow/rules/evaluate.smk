rule evaluate:
    input:
        # a TPE trial's stages read the values asked for it
        asked_batch,
        train="results/{name}__{arch}__{ts}/train.json",
        best="results/{name}__{arch}__{ts}/checkpoints/best.msgpack",
    output:
        metrics="results/{name}__{arch}__{ts}/metrics.json",
        predictions="results/{name}__{arch}__{ts}/predictions.npz",
    log:
        "results/{name}__{arch}__{ts}/logs/evaluate.log",
    benchmark:
        "results/{name}__{arch}__{ts}/benchmarks/evaluate.tsv"
    group:
        "evaluate_report"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        **SLURM,
        mem_mb=doubling(1000),
        runtime=doubling(10),
    params:
        script=script("evaluate.py"),
        evaluation=evaluation_section,
    shell:
        "{params.script} --run-dir results/{wildcards.name}__{wildcards.arch}__{wildcards.ts}"
        ' --threads {threads} --jax-cache "$SSVAE_JAX_CACHE" > {log} 2>&1'
