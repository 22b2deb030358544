# The helpers of search.smk (docs/search.md): which trials a search has, the inputs of each rung, and the
# promotion job's work.

from ssvae.results import halving as ssvae_halving


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
