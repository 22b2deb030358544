"""How the workflow's planning, dry run and no-op re-run scale with the number of configs.

For each size N it generates N tiny digits configs (one run each, every one a different model), then times:
  plan      planning every config (validate_config + the derive_arch_code checkpoint) from nothing
  dry0      `snakemake -n` before anything ran
  dry1      `snakemake -n` once every run is finished
  noop      `snakemake --cores 2` once every run is finished ("Nothing to be done")
  compare   `snakemake --forcerun compare compare` over the N runs, beside the compare script alone
Runs are finished by hard-linking one really trained run folder into every planned one, with its files' mtimes
in the order the stages wrote them (no Snakemake metadata for them, like a results/ folder copied from elsewhere).

The baseline, measured in the same script: a plain Snakemake workflow with five chained trivial jobs per
experiment (`touch`), dry run before and after, and its no-op re-run once every output exists (created
directly, in stage order). Ratios are ours / plain.

    python benchmarks/dag_scale.py --sizes 10 100 500 5000 --repeats 3

Medians over the repeats; the machine may be shared, so compare the ratios rather than the seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "src", "envs"]
STAGES = ["validate", "derive", "train", "evaluate", "report"]

PLAIN_SNAKEFILE = '''
N = int(config["count"])
IDS = [f"e{i:05d}" for i in range(N)]

rule all:
    input: expand("out/{id}/report", id=IDS)

rule validate:
    output: "out/{id}/validate"
    shell: "touch {output}"

rule derive:
    input: "out/{id}/validate"
    output: "out/{id}/derive"
    shell: "touch {output}"

rule train:
    input: "out/{id}/derive"
    output: "out/{id}/train"
    shell: "touch {output}"

rule evaluate:
    input: "out/{id}/train"
    output: "out/{id}/evaluate"
    shell: "touch {output}"

rule report:
    input: "out/{id}/evaluate"
    output: "out/{id}/report"
    shell: "touch {output}"
'''


def env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, expect: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command. CPU time is the steadier figure on a shared machine."""
    start, cpu = time.perf_counter(), _child_cpu()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _child_cpu() - cpu
    print(f"  {seconds:7.2f} s wall {cpu:7.2f} s CPU  {cwd.name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or (expect and expect not in output):
        raise SystemExit(f"{' '.join(cmd)} in {cwd} failed ({proc.returncode}):\n{output[-4000:]}")
    return seconds, cpu


def median_of(repeats: int, cmd: list[str], cwd: Path, expect: str | None = None) -> tuple[float, float]:
    runs = [timed(cmd, cwd, expect) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def tiny_config(name: str, i: int) -> dict:
    return {
        "experiment": {"name": name, "description": "dag_scale"},
        "data": {"dataset": "digits", "num_samples": 400, "num_labeled": 40},
        "model": {"hidden_dims": [16], "latent_dim": 2, "batch_size": 64, "max_epochs": 1, "patience": 1,
                  "learning_rate": round(1e-3 + i * 1e-7, 10)},
        "evaluation": {"num_plot_samples": 100},
        "report": {"dpi": 50},
    }


def make_workspace(dst: Path, n: int) -> Path:
    dst.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(src, dst / name)
    (dst / "profiles").symlink_to("workflow/profiles")
    configs = dst / "configs"
    configs.mkdir()
    for i in range(n):
        (configs / f"c{i:05d}.yaml").write_text(yaml.safe_dump(tiny_config(f"c{i:05d}", i), sort_keys=False))
    return dst


def ours(*args: str) -> list[str]:
    return [SNAKEMAKE, "--cores", "2", *args]


def trained_template(scratch: Path) -> Path:
    """One really trained run folder (the workflow on one tiny config)."""
    workspace = make_workspace(scratch / "template", 1)
    timed(ours(), workspace)
    (folder,) = [p for p in (workspace / "results").glob("c00000__*__*")]
    return folder


def fake_completion(workspace: Path, template: Path) -> int:
    """Hard-link the template run's files into every planned run folder (mtimes in stage order)."""
    import json

    count = 0
    for run_json in sorted((workspace / "results" / ".plan").glob("*/run.json")):
        run = json.loads(run_json.read_text())
        if not run.get("ok"):
            continue
        folder = workspace / "results" / run["run_id"]
        for src in sorted(template.rglob("*")):
            if src.is_file() and "resume" not in src.name and ".snakemake_timestamp" not in src.name:
                dst = folder / src.relative_to(template)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, dst)
        count += 1
    for name in ["COMPARISON.md", "comparison.csv", "comparison_accuracy.png", "comparison_elbo.png",
                 "NAMING_LEGEND.md"]:
        src = template.parent / name
        if src.exists():
            shutil.copy(src, workspace / "results" / name)
    return count


def plain_workspace(dst: Path, n: int) -> Path:
    dst.mkdir(parents=True)
    (dst / "Snakefile").write_text(PLAIN_SNAKEFILE)
    return dst


def plain(n: int, *args: str) -> list[str]:
    return [SNAKEMAKE, "--cores", "2", *args, "--config", f"count={n}"]


def plain_fake_completion(workspace: Path, n: int) -> None:
    base = time.time() - 3600
    for i in range(n):
        folder = workspace / "out" / f"e{i:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for s, stage in enumerate(STAGES):
            path = folder / stage
            path.touch()
            os.utime(path, (base + s, base + s))


def measure(n: int, scratch: Path, template: Path, repeats: int) -> dict:
    row = {"n": n}
    workspace = make_workspace(scratch / f"ours{n}", n)
    row["dry0"] = median_of(repeats, ours("-n"), workspace)
    first_plan = "results/.plan/c00000/run.json"
    row["plan"] = timed(ours(first_plan), workspace)
    fake_completion(workspace, template)
    row["dry1"] = median_of(repeats, ours("-n"), workspace, expect="Nothing to be done")
    row["noop"] = median_of(repeats, ours(), workspace, expect="Nothing to be done")
    row["compare"] = timed(ours("--forcerun", "compare", "--", "compare"), workspace)
    row["compare_script"] = timed([sys.executable, "scripts/compare.py", "--results", "results"], workspace)

    baseline = plain_workspace(scratch / f"plain{n}", n)
    row["plain_dry0"] = median_of(repeats, plain(n, "-n"), baseline)
    plain_fake_completion(baseline, n)
    row["plain_dry1"] = median_of(repeats, plain(n, "-n"), baseline, expect="Nothing to be done")
    row["plain_noop"] = median_of(repeats, plain(n), baseline, expect="Nothing to be done")
    shutil.rmtree(workspace)
    shutil.rmtree(baseline)
    return row


def print_table(rows: list[dict]) -> None:
    """Wall seconds, then CPU seconds; ratios ours / plain."""
    print("| configs | planning s (CPU) | `-n` before s (plain) | `-n` after s: ours / plain = ratio (CPU ratio) "
          "| no-op s: ours / plain = ratio (CPU ratio) | `compare` s (script alone) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        def pair(key):
            (wo, co), (wp, cp) = r[key], r["plain_" + key]
            return f"{wo:.2f} / {wp:.2f} = {wo / wp:.2f}x ({co / cp:.2f}x)"
        print(f"| {r['n']} | {r['plan'][0]:.1f} ({r['plan'][1]:.1f}) | {r['dry0'][0]:.2f} ({r['plain_dry0'][0]:.2f}) "
              f"| {pair('dry1')} | {pair('noop')} | {r['compare'][0]:.2f} ({r['compare_script'][0]:.2f}) |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500, 5000])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each dry run / no-op (median)")
    parser.add_argument("--scratch", default=None, help="folder for the generated workspaces (default: a temp dir)")
    args = parser.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="dag_scale."))
    print(f"# python benchmarks/dag_scale.py --sizes {' '.join(map(str, args.sizes))} --repeats {args.repeats}")
    template = trained_template(scratch)
    rows = []
    for n in args.sizes:
        rows.append(measure(n, scratch, template, args.repeats))
        print(rows[-1], flush=True)
    print_table(rows)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
