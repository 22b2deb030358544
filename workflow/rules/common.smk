import glob
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Plan with the same library the stage scripts run: this checkout's src/, whatever else is installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from ssvae import config as ssvae_config
from ssvae import naming as ssvae_naming

validate(config, schema="../schemas/workflow.schema.yaml")


wildcard_constraints:
    plan=r"[a-z0-9][a-z0-9._-]*",
    name=ssvae_naming.NAME_PATTERN,
    arch=ssvae_naming.ARCH_PATTERN,
    ts=ssvae_naming.TS_PATTERN,


# Shell commands name the scripts relative to the working directory, so their text (which Snakemake
# compares to decide reruns) does not change when the repository is cloned elsewhere.
SCRIPTS = os.path.relpath(Path(workflow.basedir) / "scripts")
JAX_CACHE = "results/.jax_cache"


def script(name):
    """The command that runs one stage script (a param, so the shell text names no global)."""
    return f"python {os.path.join(SCRIPTS, name)}"


NAMING_SOURCE = os.path.relpath(ssvae_naming.__file__)


def experiment_files():
    """The experiment configs of this invocation: a glob (files starting with `_` skipped) or a list."""
    spec = config["experiments"]
    if isinstance(spec, str):
        files = sorted(p for p in glob.glob(spec) if not Path(p).name.startswith("_"))
        if not files:
            raise WorkflowError(f"no experiment configs match {spec!r}")
    else:
        files = [str(p) for p in spec]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise WorkflowError(f"experiment config(s) not found: {', '.join(missing)}")
    return files


def plan_sources():
    """Plan key (config stem, plus sweep point label) -> config file. Reads YAML only; validation is a job."""
    sources = {}
    for path in experiment_files():
        for key in ssvae_config.plan_keys(path):
            if key in sources:
                raise WorkflowError(
                    f"{path} and {sources[key]} both give the run key {key!r}; rename one of the files"
                )
            sources[key] = path
    return sources


PLANS = plan_sources()

RUN_OUTPUTS = [
    "results/{run_id}/train.json",
    "results/{run_id}/history.csv",
    "results/{run_id}/checkpoints/best.msgpack",
    "results/{run_id}/metrics.json",
    "results/{run_id}/predictions.npz",
    "results/{run_id}/summary.json",
    "results/{run_id}/REPORT.md",
    "results/{run_id}/REPORT.html",
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


def comparison_target(wildcards):
    # `--config compare=false` arrives as a string
    wanted = str(config.get("compare", True)).lower() == "true"
    return ["results/COMPARISON.md"] if wanted else []


def config_file(wildcards):
    return PLANS[wildcards.plan]


def plan_of_run(wildcards):
    """The plan key whose derive_arch_code output names this run folder."""
    run_id = f"{wildcards.name}__{wildcards.arch}__{wildcards.ts}"
    for key in PLANS:
        run = read_json_cached(f"results/.plan/{key}/run.json")
        if run is not None and run["run_id"] == run_id:
            return key
    raise WorkflowError(
        f"no experiment config of this invocation plans the run {run_id}"
    )


def validated_of_run(wildcards):
    # ancient: re-validating (a touched config, an edited description) must not retrain
    return ancient(f"results/.plan/{plan_of_run(wildcards)}/validated.json")


def run_json_of_run(wildcards):
    return ancient(f"results/.plan/{plan_of_run(wildcards)}/run.json")


def effective_of_run(wildcards):
    return read_json_cached(f"results/.plan/{plan_of_run(wildcards)}/validated.json")


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


def figures_category(wildcards):
    """The report category of a run's figures: its sweep (the config file) for a sweep point, else its name."""
    plan = effective_of_run(wildcards)
    return Path(plan["source"]).stem if plan.get("point") else wildcards.name


def run_outputs_of(plan_key, patterns=RUN_OUTPUTS):
    """An input function for one plan: its run folder's files once derive_arch_code has named the run.

    One function per plan, so Snakemake plans every experiment in the same pass and a failed plan blocks
    only its own targets (`--keep-going` finishes the others).
    """

    def run_outputs(wildcards):
        run = checkpoints.derive_arch_code.get(plan=plan_key).output[0]
        run_id = json.loads(Path(run).read_text())["run_id"]
        return expand(patterns, run_id=run_id)

    return run_outputs
