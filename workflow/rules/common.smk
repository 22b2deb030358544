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
from ssvae import planning as ssvae_planning

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


# Plan key (config stem, plus sweep point label) -> the config file(s) giving it. Never raises for one file:
# what is wrong with a file (its YAML, its name, its sweep, a key shared with another file) is reported by
# the plan's own invalid_config job. Keys are cached by file content, so parsing reads no YAML on reruns.
PLANS = ssvae_planning.plan_sources(experiment_files(), results="results")
CONFIG_FILES = sorted({f for files in PLANS.values() for f in files if Path(f).is_file()})
# Names the planning benchmarks of this set of plans (two invocations on disjoint configs may plan at once).
PLAN_SET = hashlib.sha1("\n".join(sorted(PLANS)).encode()).hexdigest()[:10]

RUN_OUTPUTS = [
    "results/{run_id}/train.json",
    "results/{run_id}/history.csv",
    "results/{run_id}/checkpoints/best.msgpack",
    "results/{run_id}/metrics.json",
    "results/{run_id}/predictions.npz",
    "results/{run_id}/summary.json",
    "results/{run_id}/REPORT.md",
    "results/{run_id}/config.yaml",
    "results/{run_id}/figures",
]

_json_cache = {}


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


# run.json of every plan, read once each time derive_arch_code has rewritten them (it rewrites all at once, so
# the first one's mtime says whether the cache is current); and the run id -> plan key map built from them.
_runs_cache = {"stamp": None, "documents": {}, "by_run": {}}


def _run_documents():
    try:
        stamp = os.stat(plan_file(next(iter(PLANS)), "run.json")).st_mtime_ns
    except FileNotFoundError:
        stamp = None
    if stamp != _runs_cache["stamp"]:
        documents = {}
        for key in PLANS:
            try:
                documents[key] = json.loads(Path(plan_file(key, "run.json")).read_text())
            except FileNotFoundError:
                pass
        _runs_cache.update(stamp=stamp, documents=documents, by_run=ssvae_planning.run_map(documents))
    return _runs_cache


def planned_runs():
    """key -> run.json document of every plan; waits (Snakemake-wise) for the derive_arch_code checkpoint."""
    checkpoints.derive_arch_code.get()
    return _run_documents()["documents"]


def run_targets(wildcards):
    """Every valid plan's run folder files, and every invalid plan's error target (which fails, readably)."""
    targets = []
    for key, run in planned_runs().items():
        if run["ok"]:
            targets += expand(RUN_OUTPUTS, run_id=run["run_id"])
        else:
            targets.append(plan_file(key, "invalid"))
    return targets


def summaries_of_good_runs(wildcards):
    """compare's input: the summary of every run that can be trained (invalid configs never hold it up)."""
    runs = planned_runs()
    return sorted({f"results/{run['run_id']}/summary.json" for run in runs.values() if run["ok"]})


def comparison_target(wildcards):
    # `--config compare=false` arrives as a string
    wanted = str(config.get("compare", True)).lower() == "true"
    return ["results/COMPARISON.md"] if wanted else []


def plan_of_run(wildcards):
    """The plan key whose derive_arch_code output names this run folder."""
    run_id = f"{wildcards.name}__{wildcards.arch}__{wildcards.ts}"
    key = _run_documents()["by_run"].get(run_id)
    if key is None:
        raise WorkflowError(f"no experiment config of this invocation plans the run {run_id}")
    return key


def validated_of_run(wildcards):
    # ancient: re-validating (a touched config, an edited description) must not retrain
    return ancient(plan_file(plan_of_run(wildcards), "validated.json"))


def run_json_of_run(wildcards):
    return ancient(plan_file(plan_of_run(wildcards), "run.json"))


def effective_of_run(wildcards):
    return read_json_cached(plan_file(plan_of_run(wildcards), "validated.json"))


def evaluation_section(wildcards):
    return effective_of_run(wildcards)["effective"]["evaluation"]


def report_section(wildcards):
    plan = effective_of_run(wildcards)
    effective = plan["effective"]
    return {
        "report": effective["report"],
        "experiment": effective["experiment"],
        "warnings": plan["warnings"],
    }


def plan_logger(log_files):
    """log(key, line) for the planning jobs: each plan's lines go to its own log file."""
    handles = {}

    def log(key, line):
        if key not in handles:
            handles[key] = open(log_files[key], "w")
        print(line, file=handles[key], flush=True)

    def close():
        for handle in handles.values():
            handle.close()

    return log, close
