"""How the comparison and `ssvae runs` scale with the number of run folders.

Makes N run folders (a sweep of N/5 grid points × 5 seeds, plus a few superseded runs and one corrupt
summary.json) from one summary.json written by the real report stage (every metric, synthetic run of
tests/synthetic_run.py), then times, median of --repeats:

- baseline: reading and parsing every summary.json (the work nothing can skip);
- `compare.run_rows`: the listing behind `ssvae runs` (parse + rows + superseded marks);
- `compare.compare_runs`: the whole compare job (ranking, COMPARISON.md/.html, comparison.csv, two plots);
- `ssvae runs` and `ssvae runs --sort accuracy --json` as a user starts them (a new Python process);

and prints each with its ratio to the baseline.

    python benchmarks/compare_scale.py [--runs 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from _timing import median_seconds  # noqa: E402
from synthetic_run import MIXTURE, load, make_run, metadata, write_summary_folder  # noqa: E402

from ssvae.results import compare, report  # noqa: E402


def template(folder: Path) -> dict:
    """A complete summary.json of a mixture τ-classifier run (all metrics; figures skipped to save time)."""
    experiment, effective = load(folder, model=MIXTURE, report={"skip_plots": list(report.plots_mod.PLOT_NAMES)})
    run_id = "template__mix10_tau_het__20250101_000000"
    run_dir, splits, _ = make_run(folder / "template_results", run_id, experiment)
    summary, _ = report.build_report(run_dir, experiment, effective, metadata(experiment, run_id, splits.fingerprint),
                                     [])
    return json.loads(json.dumps(summary))


def populate(results: Path, summary: dict, runs: int) -> None:
    points = max(1, runs // 5)
    for point in range(points):
        for seed in range(5):
            run_id = f"sweep-lr{point}-s{seed}__mix10_tau_het__20250102_{point:04d}{seed:02d}"
            write_summary_folder(results, summary, run_id,
                                 accuracy=0.6 + 0.3 * point / points + 0.01 * seed, baseline=0.75, elbo=-100.0 + point,
                                 prior="mixture", seed=seed, group=f"sweep-lr{point}",
                                 config_source="configs/sweep.yaml",
                                 sweep_point={"model.learning_rate": point, "model.random_seed": seed},
                                 model={"learning_rate": 1e-4 * (point + 1), "use_tau_classifier": True})
    for i in range(3):  # an edited config: older identities of the same name
        write_summary_folder(results, summary, f"sweep-lr0-s0__mix10_tau_het__20250101_00000{i}", accuracy=0.5,
                             baseline=0.75, elbo=-120.0, prior="mixture", seed=0, group="sweep-lr0")
    bad = results / "broken__std_head_plain__20250103_000000"
    bad.mkdir(parents=True)
    (bad / "summary.json").write_text('{"status": "succ')




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ssvae = str(Path(sys.executable).with_name("ssvae"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = tmp / "results"
        populate(results, template(tmp), args.runs)
        folders = sorted(results.glob("*__*__*"))
        size = sum((f / "summary.json").stat().st_size for f in folders)

        def parse_all():
            for f in folders:
                try:
                    json.loads((f / "summary.json").read_bytes())
                except ValueError:
                    pass

        quiet = [].append
        timings = {
            "baseline: parse every summary.json": median_seconds(parse_all, args.repeats),
            "compare.run_rows (the listing)": median_seconds(lambda: compare.run_rows(results, warn=quiet),
                                                             args.repeats),
            "compare.compare_runs (the compare job)": median_seconds(
                lambda: compare.compare_runs(results, warn=quiet), args.repeats),
            "`ssvae runs` (new process)": median_seconds(
                lambda: subprocess.run([ssvae, "runs", "--results", str(results)], capture_output=True, check=True),
                args.repeats),
            "`ssvae runs --sort accuracy --json`": median_seconds(
                lambda: subprocess.run([ssvae, "runs", "--results", str(results), "--sort", "accuracy", "--json"],
                                       capture_output=True, check=True), args.repeats),
            "`python -c pass` (interpreter start)": median_seconds(
                lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeats),
        }
        out = compare.compare_runs(results, warn=quiet)
    base = timings["baseline: parse every summary.json"]
    print(f"# compare_scale: {len(folders)} run folders ({size / 1e6:.1f} MB of summary.json), "
          f"{len(out['ranked'])} ranked entries; median of {args.repeats}; {platform.node()}, "
          f"python {platform.python_version()}")
    print(f"# command: python benchmarks/compare_scale.py --runs {args.runs} --repeats {args.repeats}")
    print()
    print("| step | seconds | × baseline |")
    print("|---|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.1f} |")


if __name__ == "__main__":
    main()
