import contextlib
import glob
import hashlib
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Plan with the same library the stage scripts run: this checkout's src/, whatever else is installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from ssvae import naming as ssvae_naming
from ssvae.pipeline import planning as ssvae_planning
from ssvae import disk as ssvae_disk
from ssvae.results import runstate as ssvae_runstate

validate(config, schema="../schemas/workflow.schema.yaml")


wildcard_constraints:
    plan=ssvae_planning.PLAN_KEY_PATTERN,
    name=ssvae_naming.NAME_PATTERN,
    arch=ssvae_naming.ARCH_PATTERN,
    ts=ssvae_naming.TS_PATTERN,


# Shell commands name the scripts relative to the working directory, so their text (which Snakemake
# compares to decide reruns) does not change when the repository is cloned elsewhere.
SCRIPTS = os.path.relpath(Path(workflow.basedir) / "scripts")


def script(name):
    """The command that runs one stage script (a param, so the shell text names no global)."""
    return f"python {os.path.join(SCRIPTS, name)}"


NAMING_SOURCE = os.path.relpath(ssvae_naming.__file__)

# Where JAX jobs keep compiled programs. Handed over in the environment (jobs inherit it, on SLURM too)
# rather than as a param, so moving the cache never counts as a changed param that reruns training.
os.environ["SSVAE_JAX_CACHE"] = str(config.get("jax_cache", "auto"))


# (declared, so that Snakemake also hands it to jobs on other machines)
envvars:
    "SSVAE_JAX_CACHE",


def experiment_files():
    """The experiment configs of this invocation: a glob (files starting with `_` skipped) or a list.

    A listed file that does not exist is kept: its plan fails alone with the reason, the others run.
    """
    spec = config["experiments"]
    if isinstance(spec, str):
        files = sorted(p for p in glob.glob(spec) if not Path(p).name.startswith("_"))
        if not files:
            raise WorkflowError(f"no experiment configs match {spec!r}")
        return files
    return list(dict.fromkeys(str(p) for p in spec))


# Which plan names each run folder: train, evaluate and report do not take the plan files as inputs (a file
# that is one of N outputs of a job costs Snakemake O(N) to look up); the DAG reaches them only through the
# derive_arch_code checkpoint, and their scripts find the plan from the run id (ssvae.pipeline.planning.plan_of_run).

# Plan key (config stem, plus sweep point label) -> the config file(s) giving it. Never raises for one file:
# what is wrong with a file (its YAML, its name, its sweep, a key shared with another file) is reported by
# the plan's own invalid_config job. Keys are cached by file content, so parsing reads no YAML on reruns.
PLANS = ssvae_planning.plan_sources(experiment_files(), results="results")
CONFIG_FILES = sorted({f for files in PLANS.values() for f in files})
# What validate_config's outputs depend on: every config's path and content (a param, see plan.smk).
CONFIGS_DIGEST = ssvae_planning.contents_digest(CONFIG_FILES)
# Names the files of this set of plans that are not per plan (two invocations on disjoint configs may plan
# at once, each its own set).
PLAN_SET = hashlib.sha1("\n".join(sorted(PLANS)).encode()).hexdigest()[:10]
PLAN_MANIFEST = f"results/.plan/sets/{PLAN_SET}.json"
# A plan file cut short or of the wrong shape is removed (with the manifest), so that this invocation plans
# again rather than stopping; the good ones are kept for read_json_cached.
_PLAN_DOCUMENTS, _DAMAGED_PLAN_FILES = ssvae_planning.drop_damaged_plan_files(
    PLANS, PLAN_MANIFEST, results="results"
)
for _line in _DAMAGED_PLAN_FILES:
    print(f"warning: {_line}", file=sys.stderr)
# derive_arch_code's first output, named by the plan set and the configs' contents: any change to the set of
# configs or to one of them names a file that does not exist yet, so Snakemake must run the checkpoint (it
# checks only the outputs that something requests, and the checkpoint's target is its first output).
PLAN_DERIVED = ssvae_planning.derived_path("results", PLAN_SET, CONFIGS_DIGEST)
# Planned already, from these very configs: the run ids are read straight away instead of through the
# checkpoint, so a re-run builds its DAG once (planning still runs if Snakemake finds it stale).
PLANS_CURRENT = ssvae_planning.plans_current(PLAN_DERIVED, PLANS, results="results")

# Every stage's outputs, not just the report's: Snakemake does not remake a missing file whose consumer is up
# to date unless the file itself is asked for (a deleted metrics.json would stay deleted). Costs about 0.25 s
# of a no-op at 500 runs (benchmarks/dag_scale.py).
RUN_OUTPUTS = [f"results/{{run_id}}/{path}" for path in ssvae_runstate.RUN_OUTPUTS]

_json_cache = dict(_PLAN_DOCUMENTS)


def read_json_cached(path):
    """A small JSON file, re-read only when it changes (input functions run many times per invocation)."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None
    cached = _json_cache.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, json.loads(Path(path).read_text()))
        _json_cache[path] = cached
    return cached[1]


def plan_file(key, name):
    return f"results/.plan/{key}/{name}"


def plan_files(name):
    return [plan_file(key, name) for key in PLANS]


# run.json of every plan, read once each time derive_arch_code has rewritten them (it rewrites all at once and
# then its plan-set file, whose mtime says whether the cache is current); and the run id -> plan key map.
_runs_cache = {"stamp": None, "documents": {}, "by_run": {}}


def _run_documents():
    try:
        stamp = os.stat(PLAN_DERIVED).st_mtime_ns
    except FileNotFoundError:
        stamp = None
    if stamp != _runs_cache["stamp"]:
        documents = {}
        for key in PLANS:
            try:
                documents[key] = json.loads(
                    Path(plan_file(key, "run.json")).read_text()
                )
            except FileNotFoundError:
                pass
        _runs_cache.update(
            stamp=stamp, documents=documents, by_run=ssvae_planning.run_map(documents)
        )
    return _runs_cache


def planned_runs():
    """key -> run.json document of every plan; waits (Snakemake-wise) for the derive_arch_code checkpoint."""
    if not PLANS_CURRENT:
        checkpoints.derive_arch_code.get()
    return _run_documents()["documents"]


def planning_target(wildcards):
    """The plan set's manifest when the run ids are read directly: keeps validate_config in the DAG, so it
    reruns (and, with it, derive_arch_code) when stale. Not a checkpoint output: a job depending on one is
    rebuilt by Snakemake whenever the checkpoint is complete, the cost this avoids.

    Otherwise the checkpoint's outputs that are missing (its plan-set file when the configs changed, a plan's
    run.json deleted by hand): Snakemake runs a job for the missing outputs that are asked for, and no others.
    """
    if PLANS_CURRENT:
        return [PLAN_MANIFEST]
    return ssvae_planning.missing_plan_outputs(PLAN_DERIVED, PLANS, results="results")


def run_targets(wildcards):
    """Every valid plan's run folder files, and every invalid plan's error target (which fails, readably)."""
    targets = []
    for key, run in planned_runs().items():
        if run["ok"]:
            targets += expand(RUN_OUTPUTS, run_id=run["run_id"])
            if run.get("search", {}).get("digest"):
                # a TPE trial's stages read its batch file: a lost one is written again (never asked again)
                targets.append(batch_file(run["search"]))
        else:
            targets.append(plan_file(key, "invalid"))
    return targets


def summaries_of_good_runs(wildcards):
    """compare's input: the summary of every run that can be trained. Invalid configs never hold it up, nor
    does a run whose stage failed before (a `<stage>_failed.json`, e.g. a diverged or crashed training; the
    comparison lists it as failed): training is deterministic, so waiting for its retry would keep a sweep with
    one failing point from ever having a comparison. The run is still retried; once it succeeds (its marker
    removed) the next invocation compares it too."""
    runs = planned_runs()
    return sorted(
        {
            f"results/{run['run_id']}/summary.json"
            for run in runs.values()
            if run["ok"]
            and not ssvae_runstate.failed_stages(f"results/{run['run_id']}")
        }
    )


def comparison_target(wildcards):
    # `--config compare=false` arrives as a string
    wanted = str(config.get("compare", True)).lower() == "true"
    return ["results/COMPARISON.md"] if wanted else []


def plan_of_run(wildcards):
    """The plan key whose derive_arch_code output names this run folder."""
    return plan_of_run_id(f"{wildcards.name}__{wildcards.arch}__{wildcards.ts}")


def plan_of_run_id(run_id):
    key = _run_documents()["by_run"].get(run_id)
    if key is None:
        raise WorkflowError(
            f"no experiment config of this invocation plans the run {run_id}"
        )
    return key


def effective_of_run(wildcards):
    return read_json_cached(plan_file(plan_of_run(wildcards), "validated.json"))


def evaluation_section(wildcards):
    return effective_of_run(wildcards)["effective"]["evaluation"]


def report_section(wildcards):
    """What the report depends on beyond its input files, as a digest: a changed description, tag, warning or
    report key reruns the report, and no text of a config reaches the Snakemake report's page (which lists
    every job's params inside its own script)."""
    plan = effective_of_run(wildcards)
    effective = plan["effective"]
    section = {
        "report": effective["report"],
        "experiment": effective["experiment"],
        "warnings": plan["warnings"],
    }
    return hashlib.sha256(json.dumps(section, sort_keys=True).encode()).hexdigest()


def figures_category(wildcards):
    """The report category of a run's figures: its sweep (the config file, as its sanitised plan key names it)
    for a sweep point, else its name: never a file name as written, which may hold markup.
    """
    plan = effective_of_run(wildcards)
    return (
        plan["key"].partition(".")[0]
        if plan.get("point") or plan.get("search")
        else wildcards.name
    )


@contextlib.contextmanager
def readable_write_faults():
    """A full disk or an unwritable results/ fails a planning job with one paragraph (path, what to do)."""
    try:
        yield
    except OSError as exc:
        fault = ssvae_disk.write_fault(exc)
        if fault is None:
            raise
        raise WorkflowError(ssvae_disk.write_fault_message(fault)) from None
