"""Faults in finished run folders: a corrupt summary.json is skipped with a warning naming its folder (never a
JSONDecodeError), the compare job still succeeds and rewrites COMPARISON.md, and a run whose evaluation is gone
never shows `success`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_run import write_summary_folder
from workflow_helpers import clone_workspace, run_folders, snakemake

from ssvae.results import compare, runs

SSVAE = str(Path(sys.executable).with_name("ssvae"))
GOOD = "good__std_head_plain__20250102_000000"
BAD = "bad__std_head_plain__20250103_000000"

CORRUPTIONS = {
    "truncated": b'{"schema_version": 2, "status": "succ',
    "not_utf8": b'{"status": "success", "note": "\xff\xfe"}',
    "empty": b"",
    "a_list": b"[1, 2, 3]",
}


@pytest.fixture
def results(tmp_path, template):
    results = tmp_path / "results"
    write_summary_folder(results, template, GOOD, accuracy=0.8, baseline=0.7, elbo=-100.0)
    write_summary_folder(results, template, BAD, accuracy=0.9, baseline=0.7, elbo=-90.0)
    return results


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_summary_is_skipped_by_compare_with_a_warning_naming_the_folder(results, kind):
    (results / BAD / "summary.json").write_bytes(CORRUPTIONS[kind])
    warnings = []
    out = compare.compare_runs(results, warn=warnings.append)
    assert len(warnings) == 1 and str(results / BAD) in warnings[0]
    assert [m["run_id"] for e in out["ranked"] for m in e["members"]] == [GOOD]
    bad = next(r for r in out["rows"] if r["run_id"] == BAD)
    assert bad["status"] == "unreadable" and "summary.json" in bad["reason"]
    text = (results / "COMPARISON.md").read_text()
    assert f"| {BAD} | unreadable |" in text.split("## Runs not ranked")[1]


@pytest.mark.parametrize("kind", ["truncated", "not_utf8"])
def test_a_corrupt_summary_is_skipped_by_ssvae_runs(results, kind):
    (results / BAD / "summary.json").write_bytes(CORRUPTIONS[kind])
    done = subprocess.run([SSVAE, "runs", "--results", str(results)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"warning: skipped {results / BAD}: " in done.stderr
    table, notes = done.stdout.split("\n\n")  # the table, then what to know about the runs not finished
    listed = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:]}
    assert listed == {GOOD: "success", BAD: "unreadable"}
    assert notes.startswith(f"{BAD}: unreadable: summary.json is not valid JSON")


def test_a_corrupt_failure_marker_still_lists_the_run_as_failed(results):
    (results / BAD / "train.json").unlink()  # as a failed train job leaves it: Snakemake removes its outputs
    (results / BAD / "train_failed.json").write_bytes(b"\x00\x01")
    (bad,) = [r for r in runs.list_runs(results) if r["run_id"] == BAD]
    assert bad["status"] == "failed" and "train_failed.json is not valid JSON" in bad["reason"]
    assert bad["log"] == "logs/train.log"


@pytest.mark.parametrize("gone", ["metrics.json", "predictions.npz"])
def test_a_run_whose_evaluation_is_gone_never_shows_success(results, gone):
    (results / BAD / gone).unlink()
    rows = {r["run_id"]: r for r in compare.compare_runs(results)["rows"]}
    assert rows[BAD]["status"] == "stale" and gone in rows[BAD]["reason"]
    assert rows[GOOD]["status"] == "success"
    text = (results / "COMPARISON.md").read_text()
    assert f"[bad]({BAD}/REPORT.md)" not in text and f"| {BAD} | stale |" in text
    listed = subprocess.run([SSVAE, "runs", "--results", str(results)], capture_output=True, text=True,
                            check=True).stdout
    line = next(line for line in listed.splitlines() if line.startswith(BAD))
    assert line.split()[1] == "stale" and "success" not in line
    shown = subprocess.run([SSVAE, "show", BAD, "--results", str(results)], capture_output=True, text=True,
                           check=True).stdout
    assert "status                          stale" in shown and f"{gone} missing" in shown


@pytest.mark.workflow
def test_the_compare_job_survives_a_corrupt_summary_and_rewrites_comparison_md(trained_workspace, tmp_path):
    workspace = clone_workspace(trained_workspace, tmp_path / "ws")
    ghost = workspace / "results" / "ghost__std_head_plain__20240101_000000"
    ghost.mkdir()
    (ghost / "summary.json").write_bytes(CORRUPTIONS["truncated"])
    (alpha,) = [f for f in run_folders(workspace) if f.name.startswith("alpha__")]
    (alpha / "summary.json").write_bytes(CORRUPTIONS["not_utf8"])  # a planned run's summary, too
    done = snakemake(workspace, "--forcerun", "compare")
    assert "compare" in done.jobs
    text = (workspace / "results" / "COMPARISON.md").read_text()
    apart = text.split("## Runs not ranked")[1]
    assert f"| {ghost.name} | unreadable |" in apart and f"| {alpha.name} | unreadable |" in apart
    assert "[beta-s42](beta-s42__" in text  # the good run is still ranked
    log = (workspace / "results" / "logs" / "compare.log").read_text()
    assert f"warning: skipped results/{ghost.name}: summary.json is not valid JSON" in log


@pytest.mark.workflow
def test_a_failed_evaluate_after_forcerun_leaves_no_success_behind(trained_workspace, tmp_path):
    workspace = clone_workspace(trained_workspace, tmp_path / "ws")
    (alpha,) = [f for f in run_folders(workspace) if f.name.startswith("alpha__")]
    best = alpha / "checkpoints" / "best.msgpack"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])  # truncated
    done = snakemake(workspace, f"results/{alpha.name}/summary.json", "--forcerun", "evaluate", check=False)
    assert done.returncode != 0 and "evaluate" in done.jobs
    assert not (alpha / "metrics.json").exists()  # Snakemake removed the failed job's outputs
    assert json.loads((alpha / "summary.json").read_text())["status"] == "success"  # the old, now unbacked, claim
    listed = subprocess.run([SSVAE, "runs", "--results", str(workspace / "results"), "--json"], capture_output=True,
                            text=True, check=True).stdout
    rows = {r["name"]: r for r in json.loads(listed)}
    assert {name: r["status"] for name, r in rows.items()} == {"alpha": "failed", "beta-s42": "success"}
    assert rows["alpha"]["reason"].startswith("evaluate failed: cannot evaluate: ")
    assert "best.msgpack is truncated" in rows["alpha"]["reason"] and rows["alpha"]["log"] == "logs/evaluate.log"
    # the run folder's other outputs coming back does not hide the failure; evaluating again clears it
    snakemake(workspace, f"results/{alpha.name}/summary.json", "--forcerun", "train")
    listed = subprocess.run([SSVAE, "runs", "--results", str(workspace / "results"), "--json"], capture_output=True,
                            text=True, check=True).stdout
    assert {r["name"]: r["status"] for r in json.loads(listed)} == {"alpha": "success", "beta-s42": "success"}
    assert not (alpha / "evaluate_failed.json").exists()
