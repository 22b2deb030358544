# Searches (docs/search.md). A halving trial trains in rungs: train_rung trains it on to rung r's epochs from
# its own checkpoint when the promotion of rung r-1 chose it, and otherwise only records that it stopped (no
# training, no JAX); one promote job per search and rung, on the submitting machine, ranks every trial at the
# rung and chooses the best 1/eta. Every job is known when planning ends: no checkpoint between the rungs.
#
# A rung job takes the promotion below it as ancient(): when trials are added, the promotion is decided again
# (decisions made before are kept, ssvae.results.halving) and only the new trials' rungs run.

from ssvae.results import halving as ssvae_halving


wildcard_constraints:
    rung=r"\d+",
    search=ssvae_naming.NAME_PATTERN,


def run_document_of(wildcards):
    """run.json of the run folder named by the wildcards."""
    return _run_documents()["documents"][plan_of_run(wildcards)]


def run_folder(wildcards):
    return f"results/{wildcards.name}__{wildcards.arch}__{wildcards.ts}"


def rung_below(wildcards):
    """A rung's inputs: the trial's record of the rung below, and that rung's promotion."""
    rung = int(wildcards.rung)
    if rung == 0:
        return []
    search = run_document_of(wildcards)["search"]["name"]
    return [
        f"{run_folder(wildcards)}/rungs/{rung - 1}.json",
        ancient(f"results/.search/{search}/rung{rung - 1}.json"),
    ]


def trial_rungs(wildcards):
    """train's input for a halving trial: its record of the top rung (trained there, or stopped below)."""
    search = run_document_of(wildcards).get("search")
    if not search or search["method"] != "halving":
        return []
    return [f"{run_folder(wildcards)}/rungs/{len(search['rungs']) - 1}.json"]


def trials_of(search):
    """run id of every planned trial of a search, by trial number."""
    return {
        run["search"]["trial"]: run["run_id"]
        for run in planned_runs().values()
        if run["ok"] and run.get("search") and run["search"]["name"] == search
    }


def rung_records(wildcards):
    return [
        f"results/{run_id}/rungs/{wildcards.rung}.json"
        for _, run_id in sorted(trials_of(wildcards.search).items())
    ]


def promotion_settings(wildcards):
    """eta, metric, its direction and the rung's epochs, from the search's trials."""
    runs = planned_runs().values()
    search = next(
        run["search"]
        for run in runs
        if run["ok"] and run.get("search", {}).get("name") == wildcards.search
    )
    return {
        "eta": search["eta"],
        "mode": search["mode"],
        "metric": search["metric"],
        "epochs": search["rungs"][int(wildcards.rung)],
    }


def promote_trials(wildcards, records, out, settings, log_file):
    """promote: rank the rung's trials and write who goes on (and the decisions ledger)."""
    with readable_write_faults(), open(log_file, "w") as handle:
        by_run = {Path(path).parent.parent.name: path for path in records}
        document = ssvae_halving.promote_rung(
            "results", wildcards.search, int(wildcards.rung), by_run, out, **settings
        )
        print(
            f"rung {document['rung']} ({document['epochs']} epochs): {document['reached']} trials trained, "
            f"promoted {document['promoted']}",
            file=handle,
        )


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
