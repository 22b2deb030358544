# Searches (docs/search.md). A halving trial trains in rungs: train_rung trains it on to rung r's epochs from
# its own checkpoint when the promotion of rung r-1 chose it, and otherwise only records that it stopped (a
# short job: nothing is trained); one promote job per search and rung, on the submitting machine, ranks every
# trial at the rung and chooses the best 1/eta. Every job is known when planning ends: no checkpoint between
# the rungs.
#
# A rung job takes the promotion below it as ancient(): when trials are added, the promotion is decided again
# (decisions made before are kept, ssvae.results.halving) and only the new trials' rungs run.


wildcard_constraints:
    rung=r"\d+",
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
