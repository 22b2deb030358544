# Searches (docs/search.md). A halving trial trains in rungs: train_rung trains it on to rung r's epochs from
# its own checkpoint when the promotion of rung r-1 chose it, and otherwise only records that it stopped (a
# short job: nothing is trained); one promote job per search and rung, on the submitting machine, ranks every
# trial at the rung and chooses the best 1/eta. Every job is known when planning ends: no checkpoint between
# the rungs.
#
# TPE proposals (ssvae.pipeline.tpe): one ask job per search and batch, on the submitting machine, asks the
# batch's trials of Optuna's TPE sampler, told the rung-0 records of every trial of the batches before it; rung 0
# of a trial takes its batch file. A `method: tpe` trial trains in one rung of max_epochs, so that a diverged
# trial is a result TPE is told of (failed), not a failed job that would hold up every later batch.
#
# A rung job takes the promotion below it as ancient(): when trials are added, the promotion is decided again
# (decisions made before are kept, ssvae.results.halving) and only the new trials' rungs run.


wildcard_constraints:
    rung=r"\d+",
    batch=r"\d+",
    digest=r"[0-9a-f]{16}",
    search=ssvae_naming.NAME_PATTERN,


rule train_rung:
    input:
        rung_below,
    output:
        "results/{name}__{arch}__{ts}/rungs/{rung}.json",
    log:
        "results/{name}__{arch}__{ts}/logs/train_rung{rung}.log",
    benchmark:
        "results/{name}__{arch}__{ts}/benchmarks/train_rung{rung}.tsv"
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
        "{params.script} --run-dir results/{wildcards.name}__{wildcards.arch}__{wildcards.ts} --rung {wildcards.rung}"
        ' --threads {threads} --jax-cache "$SSVAE_JAX_CACHE" 2>&1'
        " | tee -a results/{wildcards.name}__{wildcards.arch}__{wildcards.ts}/logs/train_attempts.log > {log}"


rule promote:
    input:
        rung_records,
    output:
        "results/.search/{search}/rung{rung}.json",
    log:
        "results/.search/{search}/logs/promote{rung}.log",
    benchmark:
        "results/.search/{search}/benchmarks/promote{rung}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings=promotion_settings,
    run:
        promote_trials(wildcards, input, output[0], params.settings, log[0])


rule ask:
    input:
        unpack(told_trials),
    output:
        "results/.search/{search}/tpe/{digest}/batch{batch}.json",
    log:
        "results/.search/{search}/tpe/{digest}/logs/ask{batch}.log",
    benchmark:
        "results/.search/{search}/tpe/{digest}/benchmarks/ask{batch}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    run:
        ask_trials(wildcards, input, output[0], log[0])
