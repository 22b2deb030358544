rule train:
    input:
        trial_rungs,
    output:
        train="results/{name}__{arch}__{ts}/train.json",
        history="results/{name}__{arch}__{ts}/history.csv",
        best="results/{name}__{arch}__{ts}/checkpoints/best.msgpack",
    log:
        "results/{name}__{arch}__{ts}/logs/train.log",
    benchmark:
        "results/{name}__{arch}__{ts}/benchmarks/train.tsv"
    conda:
        "../../envs/ssvae.yaml"
    threads: train_threads
    resources:
        **TRAIN_SLURM,
        mem_mb=doubling(3000),
        runtime=doubling(30),
        gres=train_gres,
    params:
        script=script("train.py"),
    shell:
        "{params.script} --run-dir results/{wildcards.name}__{wildcards.arch}__{wildcards.ts}"
        ' --threads {threads} --jax-cache "$SSVAE_JAX_CACHE" 2>&1'
        # Snakemake empties {log} before every attempt; logs/train_attempts.log keeps them all (a retry
        # after a time limit, a resumed run after a kill).
        " | tee -a results/{wildcards.name}__{wildcards.arch}__{wildcards.ts}/logs/train_attempts.log > {log}"
