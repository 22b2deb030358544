# The helpers of search.smk (docs/search.md): which trials a search has, the inputs of each rung, and the
# promotion job's work.

from ssvae.results import halving as ssvae_halving
from ssvae.pipeline import tpe as ssvae_tpe


def run_document_of(wildcards):
    """run.json of the run folder named by the wildcards."""
    return _run_documents()["documents"][plan_of_run(wildcards)]


def run_folder(wildcards):
    return f"results/{wildcards.name}__{wildcards.arch}__{wildcards.ts}"


def batch_file(search):
    """The batch file that holds a TPE trial's values."""
    return str(
        ssvae_tpe.batch_path(
            "results", search["name"], search["digest"], search["batch_index"]
        )
    )


def asked_batch(wildcards):
    """The batch file of a TPE trial, which its stages read (ancient: a batch written again from its ledger
    reruns nothing); nothing for any other run."""
    search = run_document_of(wildcards).get("search")
    return [ancient(batch_file(search))] if search and search.get("digest") else []


def rung_below(wildcards):
    """A rung's inputs: the trial's record of the rung below, and that rung's promotion; for rung 0 of a TPE
    trial, its batch file.
    """
    rung = int(wildcards.rung)
    if rung == 0:
        return asked_batch(wildcards)
    search = run_document_of(wildcards)["search"]["name"]
    return [
        f"{run_folder(wildcards)}/rungs/{rung - 1}.json",
        ancient(f"results/.search/{search}/rung{rung - 1}.json"),
    ]


def trial_rungs(wildcards):
    """train's input for a halving trial: its record of the top rung (trained there, or stopped below)."""
    search = run_document_of(wildcards).get("search")
    if not search or search["method"] == "random":
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


def tpe_trials(search, digest):
    """run document of every planned trial of a TPE search (its name and digest), by trial number."""
    return {
        run["search"]["trial"]: run
        for run in planned_runs().values()
        if run["ok"]
        and run.get("search")
        and run["search"]["name"] == search
        and run["search"].get("digest") == digest
    }


def told_trials(wildcards):
    """ask's inputs: the batch files before this one and the rung-0 record of each of their trials (ancient: a
    trial trained again later never makes a batch asked again)."""
    batch = int(wildcards.batch)
    trials = tpe_trials(wildcards.search, wildcards.digest)
    if not trials:
        raise WorkflowError(
            f"no planned trial of search {wildcards.search} has the digest {wildcards.digest}"
        )
    size = next(iter(trials.values()))["search"]["batch"]
    # a trial before the batch that cannot run fails this ask job alone (ssvae.pipeline.tpe.ask_job says which)
    told = [t for t in range(batch * size) if t in trials]
    return {
        "batches": [
            ancient(
                str(
                    ssvae_tpe.batch_path(
                        "results", wildcards.search, wildcards.digest, b
                    )
                )
            )
            for b in range(batch)
        ],
        "records": [
            ancient(f"results/{trials[t]['run_id']}/rungs/0.json") for t in told
        ],
    }


def ask_trials(wildcards, input, out, log_file):
    """ask: the batch's trials, asked of TPE (or written from the ledger if asked before)."""
    trials = tpe_trials(wildcards.search, wildcards.digest)
    key = plan_of_run_id(next(iter(trials.values()))["run_id"])
    source = read_json_cached(plan_file(key, "validated.json"))["source"]
    with readable_write_faults(), open(log_file, "w") as handle:
        try:
            ssvae_tpe.ask_job(
                "results",
                source,
                wildcards.search,
                wildcards.digest,
                int(wildcards.batch),
                list(input.batches),
                list(input.records),
                out,
                log=lambda line: print(line, file=handle, flush=True),
            )
        except ssvae_tpe.AskFailed as exc:
            print(exc, file=handle, flush=True)
            raise WorkflowError(str(exc)) from None
