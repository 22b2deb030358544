"""The five stages of one experiment as plain functions over files: what each Snakemake rule runs.

validate_config -> derive_arch_code -> train -> evaluate -> report. Each reads what the one before wrote,
so the same functions run a whole experiment without Snakemake (`run_experiment`, `ssvae run`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from ssvae import config as config_mod
from ssvae import disk
from ssvae.pipeline import validation
from ssvae.results import runlock, runs

PLAN_DIR = ".plan"


def log_line(message: str) -> None:
    """One timestamped progress line on stdout (the rule redirects it into the stage's log)."""
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# validate_config ---------------------------------------------------------------------------------

def validate_config(config_path: str | Path, key: str, out: str | Path, log: Callable[[str], None] = log_line) -> dict:
    """Validate one run of a config; write the effective config to `out`, or raise ConfigErrors (nothing written)."""
    plan = validation.load_plan(config_path, key)
    for warning in plan.warnings:
        log(f"warning: {warning}")
    if not plan.ok:
        raise config_mod.ConfigErrors(plan.errors)
    document = plan.to_dict()
    disk.write_json(out, document)
    log(f"{config_path} [{key}]: valid; name {plan.name}, arch {plan.arch}, identity {plan.identity}")
    return document


# derive_arch_code --------------------------------------------------------------------------------

def derive_arch_code(validated: str | Path, results: str | Path, out: str | Path,
                     log: Callable[[str], None] = log_line) -> dict:
    """Give the run its id: the arch code from the model section and a timestamp minted once per identity."""
    from ssvae.pipeline import planning

    plan = disk.read_json(validated)
    document = planning.run_document(plan, results)
    disk.write_json(out, document)
    log(f"{plan['key']}: run {document['run_id']}")
    return document


# train -------------------------------------------------------------------------------------------

def run_config_document(plan: dict, run: dict, provenance: dict, trial: dict | None = None) -> dict:
    """config.yaml: the effective config with every default resolved, plus the run's identity and provenance
    (and, for a search trial, the search, the trial, its values, the rung it reached and where it continued from:
    `trial`, from train.json)."""
    document = {
        **plan["effective"],
        "run_id": run["run_id"],
        "architecture_code": run["arch"],
        "timestamp": run["ts"],
        "identity": run["identity"],
        "source": {"config": plan["source"], "sweep_point": plan["point"] or None, "group": plan.get("group")},
        "provenance": provenance,
    }
    if run.get("search"):
        search = run["search"]
        document["search"] = {key: search[key] for key in ("name", "method", "proposals", "trial", "metric",
                                                             "values", "rungs")} | asked_batch(search) | (
            trial or {})
    return document


def asked_batch(search: dict) -> dict:
    """A TPE trial's batch and the search's batch size, as config.yaml and summary.json record them; {} for a
    trial whose values were drawn."""
    return {"batch": search["batch_index"], "batch_size": search["batch"]} if search.get("digest") else {}


def _planned_run(validated: str | Path, run_json: str | Path, run_dir: str | Path
                 ) -> tuple[dict, dict, config_mod.Experiment]:
    """The plan (validated config), the run id document, and the typed experiment they describe (for a TPE trial
    with the values asked for it, ssvae.pipeline.tpe)."""
    from ssvae.pipeline import tpe

    try:
        plan, run = tpe.with_asked_values(disk.read_json(validated), disk.read_json(run_json), Path(run_dir).parent)
    except tpe.NotAsked as exc:
        raise TrialFailed(str(exc)) from None
    assert run is not None
    return plan, run, config_mod.Experiment.from_effective(plan["effective"])


def train(validated: str | Path, run_json: str | Path, run_dir: str | Path,
          log: Callable[[str], None] = log_line) -> dict:
    """Train the model of a planned run into `run_dir`; resumes from `checkpoints/resume.msgpack` if present.

    Raises runlock.RunFolderBusy at once if another live job is training the same folder.
    """
    with runlock.holding(run_dir):
        return _train(validated, run_json, run_dir, log)


def _train(validated: str | Path, run_json: str | Path, run_dir: str | Path, log: Callable[[str], None]) -> dict:
    from ssvae.data import datasets
    from ssvae.training import fit as train_mod

    plan, run, experiment = _planned_run(validated, run_json, run_dir)
    run_dir = Path(run_dir)
    log(job_description())
    require_devices(experiment)
    epochs, trial = trial_epochs(run, run_dir)
    provenance = runs.provenance()
    disk.write_yaml(run_dir / "config.yaml", run_config_document(plan, run, provenance, trial))
    log(f"run {run['run_id']}: loading {experiment.data.dataset}")
    splits = datasets.load_splits(experiment.data)
    log(f"data {splits.describe()}")
    result = train_mod.fit(experiment, splits, run_dir, resume_tag=run["identity"], log=log, epochs=epochs)
    document = {**result, "data": splits.describe(), "identity": run["identity"], "provenance": provenance}
    if run.get("search"):
        document["search"] = {**(trial or {}), "epochs_trained": result["epochs_completed"]}
    disk.write_json(run_dir / "train.json", document)
    return document


class TrialFailed(RuntimeError):
    """A search trial diverged at a rung: it has no model to conclude."""


def trial_epochs(run: dict, run_dir: str | Path) -> tuple[int | None, dict | None]:
    """(epochs the train job trains to, what config.yaml says of the trial) for a halving trial: the epochs of the
    last rung it trained at (its rung jobs did the training; this finishes it); for a `method: tpe` trial, its one
    rung's. (None, None) for other runs; (None, trial) for a trial of a plain random search, which trains to
    max_epochs."""
    from ssvae.results import halving

    search = run.get("search")
    if not search:
        return None, None
    if search["method"] == "random":
        return None, {"rung": 0, "continued_from": None}
    records = []
    for rung in range(len(search["rungs"])):
        path = halving.rung_path(run_dir, rung)
        if path.exists():
            records.append(disk.read_json(path))
    trained = [r for r in records if r["status"] == halving.TRAINED]
    if records and records[-1]["status"] == halving.FAILED:
        raise TrialFailed(f"trial {search['trial']} of search {search['name']} failed at rung "
                          f"{records[-1]['rung']}: {records[-1].get('reason')}")
    if not trained:
        raise TrialFailed(f"trial {search['trial']} of search {search['name']} has trained at no rung yet "
                          f"({Path(run_dir) / 'rungs'} holds no trained rung); run snakemake, which trains the rungs")
    last = trained[-1]
    if search["method"] != "halving":  # a `method: tpe` trial: one rung of max_epochs
        return last["epochs"], {"rung": 0, "continued_from": None}
    continued = last["continued_from_epoch"]
    return last["epochs"], {"rung": last["rung"], "promoted_to_top": last["rung"] == len(search["rungs"]) - 1,
                            "continued_from": None if not continued else
                            {"checkpoint": "checkpoints/resume.msgpack", "epoch": continued}}


def train_rung(validated: str | Path, run_json: str | Path, run_dir: str | Path, rung: int,
               log: Callable[[str], None] = log_line) -> dict:
    """One rung of a halving trial: train on to the rung's epochs from the trial's own checkpoint when the rung
    below promoted it, else record that it stopped there. Writes rungs/<rung>.json; a diverged trial is a
    result of the search (recorded as failed), not a failed job."""
    from ssvae.results import halving

    run_dir = Path(run_dir)
    run = disk.read_json(run_json)
    trial = run["search"]
    out = halving.rung_path(run_dir, rung)
    continued_from = None
    if rung > 0:
        previous = disk.read_json(halving.rung_path(run_dir, rung - 1))
        results = run_dir.parent
        if previous["status"] != halving.TRAINED or not halving.promoted(results, trial["name"], rung - 1,
                                                                         trial["trial"]):
            record = halving.stopped_record(trial, rung, previous)
            disk.write_json(out, record)
            log(f"trial {trial['trial']}: {record['status']} at rung {record['reached']} "
                f"({record['epochs_completed']} epochs); not promoted to rung {rung}")
            return record
        continued_from = previous["epochs_completed"]
    with runlock.holding(run_dir):
        from ssvae.data import datasets
        from ssvae.training import fit as train_mod

        _, run, experiment = _planned_run(validated, run_json, run_dir)
        log(job_description())
        require_devices(experiment)
        epochs = trial["rungs"][rung]
        log(f"trial {trial['trial']} of search {trial['name']}: rung {rung}, training to epoch {epochs} of "
            f"{experiment.model.max_epochs}" + (f", continuing from epoch {continued_from}" if continued_from else ""))
        splits = datasets.load_splits(experiment.data)
        try:
            result = train_mod.fit(experiment, splits, run_dir, resume_tag=run["identity"], log=log, epochs=epochs)
        except train_mod.TrainingDiverged as exc:
            record = halving.failed_record(trial, rung, str(exc), continued_from or 0)
            failed_at = dt.datetime.now().isoformat(timespec="seconds")
            disk.write_json(run_dir / "train_failed.json",
                            {"status": "failed", "reason": str(exc), "failed_at": failed_at})
        else:
            record = halving.trained_record(trial, rung, result, continued_from)
        disk.write_json(out, record)
        log(f"rung {rung}: {record['status']}" + (f", {trial['metric']} = {record['value']}"
                                                  if record["status"] == halving.TRAINED else ""))
        return record


class DeviceMissing(RuntimeError):
    """The config asks for GPUs that this job cannot see."""


def require_devices(experiment: config_mod.Experiment) -> None:
    """A config with `experiment.gpus: N` trains on a GPU or not at all (never silently on the CPU)."""
    wanted = experiment.experiment.gpus
    if not wanted:
        return
    import jax

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if len(gpus) < wanted:
        raise DeviceMissing(
            f"experiment.gpus is {wanted} but JAX sees {len(gpus)} GPU(s) (devices: "
            f"{', '.join(str(d) for d in jax.devices())}). Install JAX's CUDA build on the GPU nodes "
            "(pip install -U \"jax[cuda12]\") and run through the SLURM profile, which asks for --gres=gpu:N; "
            "or set experiment.gpus: 0 to train on CPUs.")


def job_description() -> str:
    """Where this stage runs: host, SLURM job (each retry is a new job), CPUs it may use."""
    slurm = os.environ.get("SLURM_JOB_ID")
    where = f"SLURM job {slurm}" if slurm else f"pid {os.getpid()}"
    return f"started on {socket.gethostname()} ({where}), {len(os.sched_getaffinity(0))} CPU(s)"


# evaluate ----------------------------------------------------------------------------------------

def evaluate(validated: str | Path, run_dir: str | Path, log: Callable[[str], None] = log_line) -> dict:
    """Score the best checkpoint on the held-out split; write metrics.json and predictions.npz."""
    from ssvae.data import datasets
    from ssvae.evaluation import evaluate as evaluate_mod
    from ssvae.model import inference
    from ssvae.pipeline import tpe

    plan, _ = tpe.with_asked_values(disk.read_json(validated), None, Path(run_dir).parent)
    experiment = config_mod.Experiment.from_effective(plan["effective"])
    start = time.perf_counter()
    splits = datasets.load_splits(experiment.data)
    model = inference.load_model(Path(run_dir), experiment)
    metrics, arrays = evaluate_mod.evaluate(experiment, splits, model)
    evaluate_mod.write_evaluation(Path(run_dir), metrics, arrays)
    log(f"evaluated on {metrics.get('split')} in {time.perf_counter() - start:.1f} s")
    return metrics


# report ------------------------------------------------------------------------------------------

def run_metadata(plan: dict, run: dict, train_doc: dict) -> dict:
    """summary.json's metadata: who the run is, what data it saw, which code trained it."""
    effective = plan["effective"]
    provenance = train_doc.get("provenance", {})
    data_doc = train_doc.get("data", {})
    return {
        "run_id": run["run_id"],
        "architecture_code": run["arch"],
        "timestamp": run["ts"],
        "experiment_name": effective["experiment"]["name"],
        "description": effective["experiment"]["description"],
        "tags": effective["experiment"]["tags"],
        "group": plan.get("group"),
        "sweep_point": plan.get("point") or None,
        "seed": effective["model"]["random_seed"],
        "data_seed": effective["data"]["seed"],
        "dataset": effective["data"]["dataset"],
        "dataset_fingerprint": data_doc.get("fingerprint"),
        "identity": run["identity"],
        "config_source": plan["source"],
        "git_commit": provenance.get("git_commit"),
        "git_dirty": provenance.get("git_dirty"),
        "versions": {"python": provenance.get("python"), **provenance.get("versions", {})},
        "host": provenance.get("host"),
        "device": provenance.get("device"),
        "search": search_metadata(run, train_doc),
    }


def search_metadata(run: dict, train_doc: dict) -> dict | None:
    """summary.json's account of a search trial: which search and trial, its values, the rung it reached, the
    epochs its own training ran (continuations included), and its value of the metric that chooses (at the epoch
    evaluate scores)."""
    search = run.get("search")
    if not search:
        return None
    trial = train_doc.get("search") or {}
    final = train_doc.get("final") or {}
    keys = ("name", "trial", "trials", "method", "proposals", "metric", "column", "mode", "rungs", "eta", "values")
    return {key: search.get(key) for key in keys} | asked_batch(search) | {
        "rung": trial.get("rung", 0), "epochs_trained": trial.get("epochs_trained", train_doc.get("epochs_completed")),
        "value": final.get(search["column"]), "continued_from": trial.get("continued_from")}


def report(validated: str | Path, run_json: str | Path, run_dir: str | Path,
           log: Callable[[str], None] = log_line) -> dict:
    """Draw the figures and write REPORT.md, summary.json and the current config.yaml."""
    from ssvae.results import report as report_mod

    plan, run, experiment = _planned_run(validated, run_json, run_dir)
    run_dir = Path(run_dir)
    train_doc = disk.read_json(run_dir / "train.json")
    metadata = run_metadata(plan, run, train_doc)
    start = time.perf_counter()
    summary, report_md = report_mod.build_report(run_dir, experiment, plan["effective"], metadata, plan["warnings"])
    report_mod.write_report(run_dir, summary, report_md)
    disk.write_yaml(run_dir / "config.yaml",
                    run_config_document(plan, run, train_doc.get("provenance", {}), train_doc.get("search")))
    log(f"report written in {time.perf_counter() - start:.1f} s")
    return summary


# all stages, without Snakemake -------------------------------------------------------------------

def run_experiment(config_path: str | Path, results: str | Path = "results",
                   log: Callable[[str], None] = log_line) -> list[Path]:
    """Every run of one config through all five stages in this process; returns the run folders."""
    results = Path(results)
    folders = []
    for plan in validation.load_plans(config_path):
        if not plan.ok:
            raise config_mod.ConfigErrors(plan.errors)
        if plan.search and plan.search.get("digest"):
            raise config_mod.ConfigErrors([config_mod.ConfigError(
                str(config_path), "search", plan.search["method"], "a TPE search asks its trials from the "
                "workflow's local rule `ask`; run it with snakemake")])
        plan_dir = results / PLAN_DIR / plan.key
        validated = plan_dir / "validated.json"
        run_json = plan_dir / "run.json"
        validate_config(config_path, plan.key, validated, log)
        run = derive_arch_code(validated, results, run_json, log)
        run_dir = results / run["run_id"]
        if not (run_dir / "train.json").exists():
            train(validated, run_json, run_dir, log)
        evaluate(validated, run_dir, log)
        report(validated, run_json, run_dir, log)
        folders.append(run_dir)
    return folders


def jax_cache_dir(setting: str | None, results: str | Path = "results") -> str | None:
    """Where a JAX job keeps its compiled programs (the workflow's `jax_cache` setting).

    `auto`: `<results>/.jax_cache`, or inside a SLURM job a folder on the node's own disk
    (`/tmp/ssvae-jax-cache-<user>`, shared by the jobs on that node: no cache traffic or locking on the shared
    filesystem, entries only from that node's CPUs). `none` (or empty): no persistent cache. Anything else is a
    folder; `$VARS` and `~` are expanded, so `/scratch/$USER/jax` works.
    """
    setting = (setting or "").strip()
    if setting.lower() in ("", "none", "off", "false"):
        return None
    if setting.lower() == "auto":
        if os.environ.get("SLURM_JOB_ID"):
            return f"/tmp/ssvae-jax-cache-{getpass.getuser()}"
        return str(Path(results) / ".jax_cache")
    return os.path.expanduser(os.path.expandvars(setting))


class StageFailed(SystemExit):
    """A stage ending with a readable message (exit status `code`) instead of a traceback."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(code)
        self.message = message


def fail(message: str, code: int = 1) -> None:
    """End a stage with a readable message instead of a traceback."""
    print(message, file=sys.stderr, flush=True)
    raise StageFailed(message, code)


INTERRUPTED = 143  # the exit status of a stage stopped by SIGTERM (128 + 15): interrupted, not failed


@contextlib.contextmanager
def outcome(stage: str, run_dir: str | Path):
    """Record how a stage ends in its run folder: `<stage>_failed.json` (reason, log) when it fails, removed when it
    succeeds; nothing when it is interrupted (SIGTERM, Ctrl-C), which the run's state shows from its files."""
    from ssvae.results import runstate

    try:
        yield
    except StageFailed as exc:
        if exc.code != INTERRUPTED:
            with contextlib.suppress(OSError):  # a full disk: the stage's own message says so
                runstate.record_failure(run_dir, stage, exc.message)
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        with contextlib.suppress(OSError):
            runstate.record_failure(run_dir, stage, f"{type(exc).__name__}: {exc}")
        raise
    runstate.clear_failure(run_dir, stage)
