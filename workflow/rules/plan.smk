# Planning runs once per invocation over every plan, inside Snakemake's own process (`force-use-threads` in
# the profiles; without it each of the two jobs is one spawned process), so it costs seconds at thousands of
# configs. Neither job fails for a bad config: each plan's errors go to its validated.json and log, and the
# plan's own invalid_config job fails with them, so --keep-going finishes every other experiment.
#
# Snakemake records every input and log of a job in the metadata of each of its outputs, so a job with N
# inputs (or logs) and N outputs costs N^2 (25 million input checksums at 5,000 configs). So validate_config
# tracks the configs by a hash of their paths and contents (a param: an edit reruns it, a `touch` does not),
# derive_arch_code reads one manifest of the plan set instead of every validated.json, and each writes one
# log for all plans.


rule validate_config:
    output:
        plan_files("validated.json"),
        manifest=PLAN_MANIFEST,
    log:
        f"results/.plan/logs/validate_config.{PLAN_SET}.log",
    benchmark:
        f"results/.plan/benchmarks/validate_config.{PLAN_SET}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        configs=CONFIGS_DIGEST,
    run:
        with readable_write_faults():
            ssvae_planning.validate_job(
                PLANS, output.manifest, CONFIGS_DIGEST, log[0]
            )


checkpoint derive_arch_code:
    input:
        PLAN_MANIFEST,
    output:
        # first: the checkpoint's target (see PLAN_DERIVED)
        derived=PLAN_DERIVED,
        runs=plan_files("run.json"),
    log:
        f"results/.plan/logs/derive_arch_code.{PLAN_SET}.log",
    benchmark:
        f"results/.plan/benchmarks/derive_arch_code.{PLAN_SET}.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    run:
        with readable_write_faults():
            ssvae_planning.derive_job(
                PLANS, log[0], derived=output.derived, configs_digest=CONFIGS_DIGEST
            )


# The error target of a plan that cannot run: never produced; the job prints the plan's errors and fails.
rule invalid_config:
    input:
        ancient("results/.plan/{plan}/run.json"),
    output:
        "results/.plan/{plan}/invalid",
    log:
        "results/.plan/{plan}/logs/invalid_config.log",
    benchmark:
        "results/.plan/{plan}/benchmarks/invalid_config.tsv"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    shell:
        "cat results/.plan/{wildcards.plan}/errors.txt | tee {log} >&2; exit 1"
