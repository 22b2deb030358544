"""The workflow on a real SLURM cluster, through the shipped profile, as a cluster user runs it.

One small sweep plus one longer training go through `--workflow-profile workflow/profiles/slurm` with a site
layer (tests/cluster/profile, naming the partition) while the same configs run locally for comparison. The
longer training's first attempt gets one minute: SLURM kills it at its time limit, Snakemake resubmits it with
more time, and it resumes from its epoch checkpoint. Timings of every SLURM job are written to
`slurm_timings.txt` in the test's folder and printed (`pytest -s`). A tiny halving search trains its rungs as
SLURM jobs while its promotion runs in the submitting Snakemake.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import (
    SNAKEMAKE,
    SSVAE,
    make_workspace,
    run_folders,
    snakemake_cmd,
    snakemake_env,
    tiny_config,
)

pytestmark = pytest.mark.cluster

HERE = Path(__file__).resolve().parent
TIMEOUT = 1800  # seconds for one snakemake invocation; `timeout` ends it rather than leave a hung poller

SWEEP = yaml.safe_dump({**yaml.safe_load(tiny_config("sw")), "sweep": {"seeds": [0, 1]}}, sort_keys=False)
# single-threaded 0.29-0.7 s an epoch on this 2-core machine (0.29 idle): 145-350 s, surely past the first
# attempt's minute (SLURM ends it 60-90 s in: it checks time limits every 30 s; 200 epochs, 60 s idle, once
# finished inside the first attempt)
LONG_EPOCHS = 500
LONG = tiny_config("long", model={"hidden_dims": [1024, 512], "max_epochs": LONG_EPOCHS, "patience": LONG_EPOCHS},
                   data={"num_samples": 1400, "num_labeled": 100})
CONFIGS = {"sw.yaml": SWEEP, "long.yaml": LONG}
# Both sides train with one thread (the same XLA programs, so the same numbers); the first train attempt has
# one minute, a retry thirty: the long training runs beside its local twin and the rest of the suite, and on a
# loaded 2-core machine its 500 epochs have taken 1-1.5 s each (over ten minutes: a second time-out).
SHARED = ["--set-threads", "train=1"]
SLURM_ARGS = ["--workflow-profile", "workflow/profiles/slurm", "--profile", str(HERE / "profile"), "--jobs", "4",
              "--slurm-init-seconds-before-status-checks", "1",
              "--set-resources", "train:runtime=1 if attempt == 1 else 30", *SHARED]


def slurm_cmd(*args: str) -> list[str]:
    return ["timeout", str(TIMEOUT), SNAKEMAKE, *SLURM_ARGS, *args]


def history(folder: Path) -> list[dict]:
    with open(folder / "history.csv") as handle:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(handle)]


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())["metrics"]


def submitted_jobs(output: str) -> list[tuple[str, str]]:
    """(rule or group, SLURM job id) of every submission Snakemake reports."""
    found = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*slurm_logs/(\S+?)/", output)
    return [(where, job) for job, where in found]


def job_times(job_id: str) -> dict:
    """SubmitTime, StartTime, EndTime, State of a finished job (slurmctld keeps it for MinJobAge)."""
    out = subprocess.run(["scontrol", "show", "job", job_id, "-o"], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S+)", out))


def seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The same configs on SLURM and locally, run side by side."""
    on_slurm = make_workspace(tmp_path_factory.mktemp("slurm"), CONFIGS)
    local = make_workspace(tmp_path_factory.mktemp("local"), CONFIGS)
    env = snakemake_env()
    reference = subprocess.Popen(["timeout", str(TIMEOUT), *snakemake_cmd(local, *SHARED)], cwd=local, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cluster = subprocess.Popen(slurm_cmd(), cwd=on_slurm, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    cluster_out = cluster.communicate()[0]
    reference_out = reference.communicate()[0]
    (on_slurm / "snakemake.out").write_text(cluster_out)
    assert reference.returncode == 0, reference_out[-5000:]
    assert cluster.returncode == 0, cluster_out[-8000:]
    return on_slurm, local, cluster_out


def test_train_evaluate_and_report_ran_as_slurm_jobs(runs):
    workspace, _, output = runs
    jobs = submitted_jobs(output)
    where = [w for w, _ in jobs]
    assert where.count("rule_train") == 3 + 1, jobs  # three runs, one of them retried
    assert sum(w.startswith("group_evaluate_report") for w in where) == 3, jobs  # evaluate + report: one job
    assert not {"rule_validate_config", "rule_derive_arch_code", "rule_compare"} & set(where)
    for folder in run_folders(workspace):
        log = (folder / "logs" / "train.log").read_text()
        ids = re.findall(r"\(SLURM job (\d+)\)", log)
        assert ids and set(ids) <= {job for _, job in jobs}, log[-2000:]
        assert "1 CPU(s)" in log  # the job's CPUs (cpus-per-task from threads) are what training may use
    for _, job in jobs:  # the SLURM log of every job is kept, successful ones too
        assert list((workspace / ".snakemake" / "slurm_logs").rglob(f"{job}.log")), job
    # the node-local compilation cache (jax_cache: auto inside a SLURM job)
    assert any(Path("/tmp").glob("ssvae-jax-cache-*/*"))
    slurmctld = Path("/var/log/slurm/slurmctld.log").read_text()
    assert re.search(r"sched: Allocate JobId=\d+ NodeList=localhost #CPUs=1 Partition=ci", slurmctld)


def test_a_train_job_killed_at_its_time_limit_resumes_on_retry(runs):
    workspace, _, output = runs
    (folder,) = [f for f in run_folders(workspace) if f.name.startswith("long__")]
    log = (folder / "logs" / "train_attempts.log").read_text()
    attempts = re.findall(r"\(SLURM job (\d+)\)", log)
    assert len(attempts) == 2 and attempts[0] != attempts[1], log[-3000:]  # both attempts' logs kept
    assert re.search(r"resuming from \S+resume.msgpack after epoch \d+", log), log[-3000:]
    assert job_times(attempts[0]).get("JobState") == "TIMEOUT"
    assert "TIMEOUT" in output
    assert json.loads((folder / "train.json").read_text())["epochs_completed"] == LONG_EPOCHS


def test_the_runs_equal_a_local_run_of_the_same_configs(runs):
    on_slurm, local, _ = runs
    cluster_folders = {f.name.split("__")[0]: f for f in run_folders(on_slurm)}
    local_folders = {f.name.split("__")[0]: f for f in run_folders(local)}
    assert sorted(cluster_folders) == sorted(local_folders) == ["long", "sw-s0", "sw-s1"]
    for name, folder in cluster_folders.items():
        assert history(folder) == history(local_folders[name]), name
        assert metrics(folder) == metrics(local_folders[name]), name


def test_a_rerun_on_slurm_does_nothing(runs):
    workspace = runs[0]
    again = subprocess.run(slurm_cmd(), cwd=workspace, env=snakemake_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    output = again.stdout + again.stderr
    assert "Nothing to be done" in output
    assert "submitted with SLURM jobid" not in output


def test_report_slurm_timings(runs, slurm_cluster):
    """Not a check: what each SLURM job cost, for the record (submission to start, run, the rule's own work)."""
    workspace, _, output = runs
    lines = [f"cluster set-up (apt + start): {slurm_cluster:.1f} s", "job\twhere\tstate\tqueued s\truns s"]
    for where, job in submitted_jobs(output):
        times = job_times(job)
        if "StartTime" in times and "EndTime" in times:
            lines.append(f"{job}\t{where}\t{times.get('JobState')}\t"
                         f"{seconds_between(times['SubmitTime'], times['StartTime']):.0f}\t"
                         f"{seconds_between(times['StartTime'], times['EndTime']):.0f}")
    for folder in run_folders(workspace):
        for stage in ("train", "evaluate", "report"):
            with open(folder / "benchmarks" / f"{stage}.tsv") as handle:
                row = next(csv.DictReader(handle, delimiter="\t"))
            lines.append(f"{folder.name}\t{stage}: rule's own {float(row['s']):.1f} s, peak RSS {row['max_rss']} MB")
    text = "\n".join(lines)
    (workspace / "slurm_timings.txt").write_text(text + "\n")
    print("\n" + text, file=sys.stderr)


# A halving search of two trials, rungs of 1 and 2 epochs (min_epochs 1, eta 2): one goes on to rung 1, the other
# stops. Every rung of every trial is a SLURM job (the stopped trial's too: a short one); the promotion runs in this
# Snakemake. Two trials rather than more: on two CPUs every further trial adds two waves of SLURM jobs (~40 s).
TRIALS = 2
SEARCH = tiny_config("hs", model={"max_epochs": 2, "patience": 10}, search={
    "method": "halving", "trials": TRIALS, "seed": 0, "metric": "val_accuracy",
    "space": {"model.learning_rate": {"log_uniform": [1e-3, 1e-2]}, "model.latent_dim": {"choice": [2, 4]}},
    "halving": {"min_epochs": 1, "eta": 2}})
SEARCH_ARGS = ["--workflow-profile", "workflow/profiles/slurm", "--profile", str(HERE / "profile"), "--jobs", "4",
               "--slurm-init-seconds-before-status-checks", "3"]


def test_a_halving_search_trains_its_rungs_as_slurm_jobs_and_promotes_locally(slurm_cluster, tmp_path):
    workspace = make_workspace(tmp_path / "search", {"hs.yaml": SEARCH})
    started = time.perf_counter()
    proc = subprocess.run(["timeout", str(TIMEOUT), SNAKEMAKE, *SEARCH_ARGS], cwd=workspace,
                          env=snakemake_env(), capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    (workspace / "snakemake.out").write_text(output)
    assert proc.returncode == 0, output[-8000:]
    print(f"\nhalving search on SLURM: {time.perf_counter() - started:.0f} s", file=sys.stderr)

    jobs = submitted_jobs(output)
    where = [w for w, _ in jobs]
    assert where.count("rule_train_rung") == TRIALS * 2, jobs  # every trial at both rungs
    assert where.count("rule_train") == TRIALS, jobs
    assert "rule_promote" not in where  # a local rule: on the submitting host
    # rung 0's promotion, in this process (the top rung promotes no one)
    assert len(re.findall(r"^(?:local)?rule promote:$", output, flags=re.M)) == 1

    promotion = json.loads((workspace / "results" / ".search" / "hs" / "rung0.json").read_text())
    quota = max(1, TRIALS // 2)
    assert promotion["reached"] == TRIALS and promotion["quota"] == quota and len(promotion["promoted"]) == quota
    folders = {yaml.safe_load((f / "config.yaml").read_text())["search"]["trial"]: f for f in run_folders(workspace)}
    assert sorted(folders) == list(range(TRIALS))
    top = {}
    for trial, folder in folders.items():
        rung0 = json.loads((folder / "rungs" / "0.json").read_text())
        rung1 = json.loads((folder / "rungs" / "1.json").read_text())
        assert rung0["status"] == "trained" and rung0["epochs_completed"] == 1
        # the rungs that trained ran in SLURM jobs this Snakemake submitted
        for rung in (0, 1) if trial in promotion["promoted"] else (0,):
            ids = re.findall(r"\(SLURM job (\d+)\)", (folder / "logs" / f"train_rung{rung}.log").read_text())
            assert ids and set(ids) <= {job for _, job in jobs}, (trial, rung)
        if trial in promotion["promoted"]:
            assert rung1["status"] == "trained" and rung1["continued_from_epoch"] == 1
            assert rung1["epochs_completed"] == 2
            top[trial] = rung1["value"]
        else:
            assert rung1["status"] == "stopped" and rung1["reached"] == 0
    winner = max(sorted(top), key=lambda t: top[t])  # val_accuracy, ties to the lower trial

    listed = json.loads(subprocess.run([SSVAE, "runs", "--json"], cwd=workspace, capture_output=True, text=True,
                                       check=True).stdout)
    assert {r["status"] for r in listed} <= {"success", "partial"}, listed
    assert sorted((r["trial"], r["rung"], r["epochs_trained"]) for r in listed) == [
        (t, 1 if t in top else 0, 2 if t in top else 1) for t in range(TRIALS)]
    shown = subprocess.run([SSVAE, "runs", "--search", "hs"], cwd=workspace, capture_output=True, text=True,
                           check=True).stdout
    spent = 2 * len(top) + (TRIALS - len(top))
    assert f"winner: trial {winner}" in shown and f"epochs trained: {spent} of {2 * TRIALS}" in shown
    comparison = (workspace / "results" / "COMPARISON.md").read_text()
    assert f"Winner: trial {winner} (hs-t00{winner}" in comparison
    assert comparison.count("stopped after rung 0") == TRIALS - len(top)
