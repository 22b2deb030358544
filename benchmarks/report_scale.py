"""How the Snakemake HTML report scales with the number of runs it holds a page for.

Trains one tiny run with the real `snakemake` in a scratch workspace, then adds N − 1 run folders that copy
its summary.json, metrics, REPORT.md and REPORT.html (other accuracies), so that the compare job lists N runs
and writes N run pages. Then it measures:

- the compare job over N runs (`snakemake --forcerun compare`), which copies every run's page;
- `snakemake --report report.html`: its time and the size of report.html;
- loading report.html in a real headless Chromium (tests/browser.py): until the page's load event, until its
  navigation shows the Runs category, until the list of N runs is shown, and until one run's page opens;

and prints a table with the command, commit and machine.

    python benchmarks/report_scale.py [--runs 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser import Browser, find_chromium  # noqa: E402
from workflow_helpers import make_workspace, run_folders, snakemake, tiny_config  # noqa: E402

CLICK_LINK = ("(() => {{ const a = Array.from(document.querySelectorAll('a'))"
              ".find(a => a.textContent.trim() === {0}); if (a) a.click(); return !!a; }})()")
NAV_TEXT = "document.querySelector('#app') ? document.querySelector('#app').textContent : ''"


def populate(workspace: Path, runs: int) -> None:
    """N − 1 copies of the trained run's folder contents that the comparison and the report read."""
    source = run_folders(workspace)[0]
    name, arch, _ = source.name.split("__")
    summary = json.loads((source / "summary.json").read_text())
    for i in range(1, runs):
        folder = workspace / "results" / f"{name}-copy{i}__{arch}__20250101_{i:06d}"
        folder.mkdir()
        for file in ("metrics.json", "predictions.npz", "REPORT.md", "REPORT.html", "config.yaml"):
            shutil.copy2(source / file, folder / file)
        summary["evaluation"]["metrics"]["accuracy"]["value"] = 0.5 + 0.4 * i / runs
        summary["metadata"]["experiment_name"] = f"{name}-copy{i}"
        (folder / "summary.json").write_text(json.dumps(summary))


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    chromium, how = find_chromium()
    if chromium is None:
        raise SystemExit(f"no headless Chromium: {how}")
    with tempfile.TemporaryDirectory() as scratch:
        workspace = make_workspace(Path(scratch) / "ws", {"alpha.yaml": tiny_config("alpha")})
        snakemake(workspace)
        populate(workspace, args.runs)
        rows = []
        (workspace / "results" / "COMPARISON.md").unlink()  # the next invocation runs the compare job alone
        rows.append(("compare job over the runs (copies every run page), in `snakemake`",
                     timed(lambda: snakemake(workspace, timeout=1800))))
        pages = len(list((workspace / "results" / ".report" / "runs").glob("*.html")))
        rows.append(("snakemake --report report.html", timed(lambda: snakemake(workspace, "--report",
                                                                                "report.html", timeout=1800))))
        size = (workspace / "report.html").stat().st_size
        with Browser(chromium) as browser:
            start = time.perf_counter()
            browser.open((workspace / "report.html").as_uri(), timeout=600)
            rows.append(("Chromium: load event of report.html", time.perf_counter() - start))
            browser.wait_for(f"{NAV_TEXT}.includes('Runs')", timeout=600)
            rows.append(("Chromium: navigation shows the Runs category", time.perf_counter() - start))
            t0 = time.perf_counter()
            assert browser.evaluate(CLICK_LINK.format(json.dumps("Runs")))
            last = f"alpha-copy{args.runs - 1}"
            browser.wait_for(f"{NAV_TEXT}.includes({json.dumps(last)})", timeout=600)
            rows.append((f"Chromium: the list of {pages} runs shown (after the click)", time.perf_counter() - t0))
            t0 = time.perf_counter()
            browser.evaluate("Array.from(document.querySelectorAll('tr'))"
                             f".find(r => r.textContent.includes({json.dumps(last)})).querySelector('a').click()")
            browser.frame_text("data:text/html", timeout=600)
            rows.append(("Chromium: one run's page opened (after the click)", time.perf_counter() - t0))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    load = os.getloadavg()[0]
    print(f"python benchmarks/report_scale.py --runs {args.runs}   (commit {commit}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {load:.1f})")
    print(f"report.html: {size / 1e6:.1f} MB holding {pages} run pages\n")
    print("| step | seconds |\n|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
