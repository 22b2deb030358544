"""The fixed cost of a run: every stage as its own process, split into imports, compile and work.

For one tiny digits config and one mnist5k config, each stage runs as a separate process, exactly
as the Snakefile runs it (same scripts, same arguments, `--threads` as the rules give them), first with an empty
JAX compilation cache (cold) and then again into a fresh results folder with the cache the first pass filled
(warm). Each stage's wall time (and its process's CPU time, less sensitive to other load on a shared machine) is
split into imports (`python -X importtime`, top-level modules), compile (JAX's
own monitoring events: tracing, lowering, XLA compilation and persistent-cache loads) and the rest (work,
including the interpreter's start). Beside it, the same config's pure training time (`train.json`:
training_time_sec, the epochs themselves) and the fixed cost = all stages minus that training time.

Then the README's main command: `snakemake --cores 2` over the shipped configs (configs/*.yaml) in a fresh copy
of the workflow, with --floor-epochs N the same configs cut to N epochs right after it (what the command costs
without its training: every job, every compiled program), and (with --compile-per-arch) the compile time of
every shipped digits architecture, each trained alone for one epoch with a cold cache.

    python benchmarks/run_overhead.py [--repo PATH] [--repeats 3] [--max-epochs 5] [--skip-snakemake]
                                      [--compile-per-arch] [--snakemake-repeats 1] [--floor-epochs 2]

`--repo` times another checkout (e.g. a `git worktree` of an older commit) with this script, so before/after
numbers come from the same measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PROBE = HERE / "_stage_probe.py"
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "src", "envs", "profiles"]
CONFIGS = {"digits": "configs/digits_standard.yaml", "mnist5k": "configs/mnist5k/mnist5k_standard.yaml"}
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def environment() -> dict:
    """`python` and `snakemake` of this interpreter's environment, as an activated venv gives them."""
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def make_workspace(repo: Path, dst: Path, configs: dict[str, str]) -> Path:
    """A checkout-like folder: the workflow, its scripts and library, and the given configs (name -> YAML)."""
    dst.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = repo / name
        if src.is_symlink():
            (dst / name).symlink_to(os.readlink(src))
        elif src.is_dir():
            shutil.copytree(src, dst / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dst / name)
    (dst / "configs").mkdir()
    for name, text in configs.items():
        (dst / "configs" / name).write_text(text)
    return dst


def import_seconds(stderr: str) -> float:
    """Sum of the cumulative times of the top-level imports in `-X importtime` output."""
    total = 0
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match and not match.group(3):
            total += int(match.group(2))
    return total / 1e6


def run_stage(workspace: Path, stage: str, args: list[str], name: str | None = None) -> dict:
    """One stage (scripts/<stage>.py) as its own process under the probe: wall, imports, compile, work."""
    probe_out = workspace / f".probe-{stage}.json"
    env = {**environment(), "SSVAE_PROBE_OUT": str(probe_out)}
    cmd = [sys.executable, "-X", "importtime", str(PROBE), f"scripts/{stage}.py", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))[-3000:]
        raise RuntimeError(f"{stage} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{tail}")
    probe = json.loads(probe_out.read_text())
    imports = import_seconds(proc.stderr)
    compile_s = probe["compile_s"]
    return {"stage": name or stage, "wall": wall, "cpu": cpu, "imports": imports, "compile": compile_s,
            "work": wall - imports - compile_s, "packages": probe["packages"]}


# Planning as the workflow's planning rules do it (inside Snakemake's own process there), for checkouts
# without planning scripts.
PLANNING = """
import sys
from pathlib import Path
sys.path.insert(0, str(Path.cwd() / "src"))
from ssvae.pipeline import stages
config, key = sys.argv[1], sys.argv[2]
plan = Path("results/.plan") / key
stages.validate_config(config, key, plan / "validated.json", log=lambda _: None)
stages.derive_arch_code(plan / "validated.json", "results", plan / "run.json", log=lambda _: None)
"""


def run_pipeline(workspace: Path, key: str, cache: Path) -> dict:
    """The stages of one config, in order, into `workspace/results`; returns per-stage timings.

    A checkout with planning scripts (scripts/validate_config.py) runs validate_config and derive_arch_code as
    two processes and passes the plan files to the JAX stages; one that plans inside Snakemake's process runs
    the same planning calls in one process (its imports are Snakemake's there) and gives the stages the run
    folder only."""
    plan = f"results/.plan/{key}"
    validated, run_json = f"{plan}/validated.json", f"{plan}/run.json"
    Path(workspace / plan / "logs").mkdir(parents=True, exist_ok=True)
    scripted = (workspace / "scripts" / "validate_config.py").exists()
    if scripted:
        stages = [run_stage(workspace, "validate_config",
                            [f"configs/{key}.yaml", "--key", key, "--out", validated,
                             "--log", f"{plan}/logs/validate_config.log"]),
                  run_stage(workspace, "derive_arch_code", [validated, "--results", "results", "--out", run_json])]
    else:
        (workspace / "scripts" / "_plan_here.py").write_text(PLANNING)
        stages = [run_stage(workspace, "_plan_here", [f"configs/{key}.yaml", key], name="planning (both rules)")]
    run_dir = f"results/{json.loads((workspace / run_json).read_text())['run_id']}"
    plan_args = ["--validated", validated, "--run-json", run_json] if scripted else []
    stages.append(run_stage(workspace, "train", [*plan_args, "--run-dir", run_dir, "--threads", "2",
                                                 "--jax-cache", str(cache)]))
    stages.append(run_stage(workspace, "evaluate", [*plan_args[:2], "--run-dir", run_dir, "--threads", "1",
                                                    "--jax-cache", str(cache)]))
    stages.append(run_stage(workspace, "report", [*plan_args, "--run-dir", run_dir]))
    train_doc = json.loads((workspace / run_dir / "train.json").read_text())
    training = float(train_doc["training_time_sec"])
    return {"stages": stages, "training": training, "epochs": train_doc["epochs_completed"],
            "fixed": sum(s["wall"] for s in stages) - training}


def config_text(repo: Path, path: str, max_epochs: int | None) -> str:
    doc = yaml.safe_load((repo / path).read_text())
    if max_epochs:
        doc.setdefault("model", {})["max_epochs"] = max_epochs
    return yaml.safe_dump(doc, sort_keys=False)


def measure_config(repo: Path, scratch: Path, label: str, path: str, max_epochs: int | None, repeats: int):
    """Cold then warm, `repeats` times each (a fresh cache per repeat); per state the median of each figure."""
    key = Path(path).stem
    results = {"cold": [], "warm": []}
    for r in range(repeats):
        cache = scratch / f"{label}-cache-{r}"
        for state in ("cold", "warm"):
            workspace = make_workspace(repo, scratch / f"{label}-{state}-{r}",
                                       {f"{key}.yaml": config_text(repo, path, max_epochs)})
            results[state].append(run_pipeline(workspace, key, cache))
            print(f"  {label} {state} #{r + 1}: fixed {results[state][-1]['fixed']:.1f} s, "
                  f"training {results[state][-1]['training']:.1f} s", file=sys.stderr, flush=True)
    return results


def median_rows(runs: list[dict]) -> tuple[list[dict], dict]:
    rows = []
    for i, stage in enumerate(s["stage"] for s in runs[0]["stages"]):
        rows.append({k: statistics.median(run["stages"][i][k] for run in runs)
                     for k in ("wall", "cpu", "imports", "compile", "work")} | {"stage": stage})
    totals = {k: statistics.median(run[k] for run in runs) for k in ("training", "fixed")}
    totals["wall"] = statistics.median(sum(s["wall"] for s in run["stages"]) for run in runs)
    totals["cpu"] = statistics.median(sum(s["cpu"] for s in run["stages"]) for run in runs)
    totals["epochs"] = runs[0]["epochs"]
    return rows, totals


def snakemake_wall(repo: Path, scratch: Path, repeats: int, max_epochs: int | None = None
                   ) -> tuple[list[float], list[float], int, Path]:
    """`snakemake --cores 2` over the shipped configs in a fresh copy (empty results, cold cache): wall seconds
    and CPU seconds (user + system of snakemake and every job) of each repeat, the jobs, the last workspace."""
    # cut to `max_epochs`, a config keeps every stage and every compiled program but almost none of the training
    shipped = {p.name: config_text(repo, f"configs/{p.name}", max_epochs)
               for p in sorted((repo / "configs").glob("*.yaml"))}
    label = f"max_epochs {max_epochs}" if max_epochs else "as shipped"
    walls, cpus = [], []
    workspace = None
    jobs = 0
    for r in range(repeats):
        workspace = make_workspace(repo, scratch / f"snakemake-{max_epochs or 'shipped'}-{r}", shipped)
        snakemake = str(Path(sys.executable).with_name("snakemake"))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([snakemake, "--cores", "2"], cwd=workspace, env=environment(),
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"snakemake failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
        jobs = len(re.findall(r"^(?:local)?(?:rule|checkpoint) \w+:$", proc.stdout + proc.stderr, re.M))
        print(f"  snakemake --cores 2 ({label}) #{r + 1}: {walls[-1]:.1f} s, CPU {cpus[-1]:.1f} s, {jobs} jobs",
              file=sys.stderr, flush=True)
    return walls, cpus, jobs, workspace


def job_seconds_by_rule(workspace: Path) -> dict[str, tuple[int, float]]:
    """Rule -> (jobs, summed wall seconds) from the Snakemake benchmark TSVs a finished workspace holds."""
    totals: dict[str, list] = {}
    for tsv in (workspace / "results").rglob("benchmarks/*.tsv"):
        lines = tsv.read_text().splitlines()
        if len(lines) < 2:
            continue
        seconds = float(lines[1].split("\t")[0])
        entry = totals.setdefault(tsv.stem, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds
    return {rule: (n, s) for rule, (n, s) in sorted(totals.items())}


def compile_per_arch(workspace: Path, scratch: Path) -> list[dict]:
    """Each planned run of a finished workspace, trained alone for one epoch with a cold cache."""
    rows = []
    for plan_dir in sorted((workspace / "results" / ".plan").iterdir()):
        run_json = plan_dir / "run.json"
        if not plan_dir.is_dir() or not run_json.exists():
            continue
        run = json.loads(run_json.read_text())
        validated = json.loads((plan_dir / "validated.json").read_text())
        validated["effective"]["model"]["max_epochs"] = 1
        one = scratch / "arch" / plan_dir.name
        one.mkdir(parents=True)
        (one / "validated.json").write_text(json.dumps(validated))
        shutil.copy(run_json, one / "run.json")
        if (workspace / "scripts" / "validate_config.py").exists():
            where = ["--validated", str(one / "validated.json"), "--run-json", str(one / "run.json"),
                     "--run-dir", str(one / "run")]
        else:  # the stage finds its plan from the run folder's name: a results folder of its own
            results = one / "results"
            (results / ".plan" / plan_dir.name).mkdir(parents=True)
            shutil.move(str(one / "validated.json"), results / ".plan" / plan_dir.name / "validated.json")
            shutil.move(str(one / "run.json"), results / ".plan" / plan_dir.name / "run.json")
            where = ["--run-dir", str(results / run["run_id"])]
        timing = run_stage(workspace, "train", [*where, "--threads", "2", "--jax-cache", str(one / "cache")])
        rows.append({"run": plan_dir.name, "arch": run["arch"], "compile": timing["compile"],
                     "wall": timing["wall"], "cpu": timing["cpu"]})
        print(f"  compile {run['arch']}: {timing['compile']:.2f} s", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the checkout to time (default: this one)")
    parser.add_argument("--repeats", type=int, default=3, help="cold/warm pipeline passes per config (median)")
    parser.add_argument("--max-epochs", type=int, default=5, help="epochs of the timed configs (0: as shipped)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--skip-snakemake", action="store_true")
    parser.add_argument("--snakemake-repeats", type=int, default=1)
    parser.add_argument("--compile-per-arch", action="store_true",
                        help="also compile every shipped digits architecture alone (cold cache)")
    parser.add_argument("--floor-epochs", type=int, default=0,
                        help="also time `snakemake --cores 2` over the shipped configs cut to this many epochs "
                             "(the part of the first command that is not training)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()

    with tempfile.TemporaryDirectory(prefix="run-overhead-") as tmp:
        scratch = Path(tmp)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        interpreter = time.perf_counter() - start
        measured = {label: measure_config(repo, scratch, label, CONFIGS[label], args.max_epochs, args.repeats)
                    for label in args.configs}
        snake = None
        arch_rows = []
        by_rule = {}
        floor = None
        if not args.skip_snakemake:
            walls, cpus, jobs, workspace = snakemake_wall(repo, scratch, args.snakemake_repeats)
            snake = (walls, cpus, jobs)
            if args.floor_epochs:
                floor = snakemake_wall(repo, scratch, args.snakemake_repeats, args.floor_epochs)[:3]
            by_rule = job_seconds_by_rule(workspace)
            if args.compile_per_arch:
                arch_rows = compile_per_arch(workspace, scratch)

    command = "python benchmarks/run_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"`{command.strip()}` (checkout: {repo}; {os.cpu_count()} CPUs; interpreter start {interpreter:.2f} s)")
    print()
    for label in args.configs:
        for state in ("cold", "warm"):
            rows, totals = median_rows(measured[label][state])
            print(f"{label} ({CONFIGS[label]}, {totals['epochs']} epochs), {state} compilation cache, "
                  f"median of {args.repeats}:")
            print()
            print("| stage | wall s | CPU s | imports s | compile s | work s |")
            print("|---|---|---|---|---|---|")
            for row in rows:
                print(f"| {row['stage']} | {row['wall']:.2f} | {row['cpu']:.2f} | {row['imports']:.2f} "
                      f"| {row['compile']:.2f} | {row['work']:.2f} |")
            print(f"| **all stages** | {totals['wall']:.2f} | {totals['cpu']:.2f} | | | |")
            print(f"| pure training (train.json) | {totals['training']:.2f} | | | | |")
            print(f"| **fixed cost** (all stages − training) | **{totals['fixed']:.2f}** | | | | |")
            print()
    if snake:
        walls, cpus, jobs = snake
        print(f"`snakemake --cores 2` over the shipped configs in a fresh copy: "
              f"{statistics.median(walls):.1f} s (median of {len(walls)}: {[round(w, 1) for w in walls]}), "
              f"CPU {statistics.median(cpus):.1f} s, {jobs} jobs")
        if floor:
            f_walls, f_cpus, f_jobs = floor
            print(f"The same configs cut to {args.floor_epochs} epochs: {statistics.median(f_walls):.1f} s "
                  f"({[round(w, 1) for w in f_walls]}), CPU {statistics.median(f_cpus):.1f} s, {f_jobs} jobs: "
                  f"{statistics.median(f_walls) / statistics.median(walls):.2f} of the shipped configs' wall time "
                  f"is not training")
        print()
        print("| rule | jobs | summed job wall s (Snakemake benchmark files, last repeat) |")
        print("|---|---|---|")
        for rule, (n, seconds) in by_rule.items():
            print(f"| {rule} | {n} | {seconds:.1f} |")
        total = sum(seconds for _, seconds in by_rule.values())
        print(f"| all jobs | {sum(n for n, _ in by_rule.values())} | {total:.1f} (÷ 2 cores = {total / 2:.1f}) |")
        print()
    if arch_rows:
        print("| run (shipped digits config) | arch | compile s (cold cache, alone) | train job wall s "
              "| train job CPU s |")
        print("|---|---|---|---|---|")
        for row in arch_rows:
            print(f"| {row['run']} | `{row['arch']}` | {row['compile']:.2f} | {row['wall']:.2f} | {row['cpu']:.2f} |")


if __name__ == "__main__":
    main()
