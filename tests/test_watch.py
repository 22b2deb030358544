"""Watching a workspace while it trains: `ssvae runs` with each training's epoch and ETA, `ssvae watch` in a real
pseudo-terminal (as over SSH) and through a pipe (`--once`, for scripts)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from synthetic_run import write_summary_folder

from ssvae import disk
from ssvae.results import runlock, runs

SSVAE = str(Path(sys.executable).with_name("ssvae"))
TRAINING = "live__mix10_tau_ca__20250103_100000"
FINISHED = "done__std_head_plain__20250102_090000"
FAILED = "broken__std_head_plain__20250101_080000"


def write_progress(folder: Path, epoch: int, max_epochs: int, seconds_per_epoch: float) -> None:
    """progress.json as the training writes it after an epoch (its writer is tested in test_train.py)."""
    disk.write_json(folder / runs.PROGRESS_FILE, {
        "phase": "training", "epoch": epoch, "max_epochs": max_epochs, "seconds_per_epoch": seconds_per_epoch,
        "eta_s": (max_epochs - epoch) * seconds_per_epoch, "best_epoch": epoch, "monitor": "val_objective",
        "best_value": 101.5, "losses": {"train_loss": 120.25, "val_loss": 101.5}, "val_accuracy": 0.625,
        "updated": "2025-01-03T10:05:00", "updated_unix": time.time(), "host": "node1", "pid": 1})


@pytest.fixture
def results(tmp_path, template):
    results = tmp_path / "results"
    write_summary_folder(results, template, FINISHED, accuracy=0.81, baseline=0.76, elbo=-100.0)
    (results / TRAINING).mkdir()
    write_progress(results / TRAINING, 37, 150, 80 / 113)
    disk.write_json(results / FAILED / "train_failed.json",
                    {"status": "failed", "reason": "diverged \x1b[2J\x1b]0;owned\x07 at epoch 3"})
    return results


def test_runs_shows_epoch_and_eta_of_a_live_training_and_json_gives_the_progress(results):
    with runlock.holding(results / TRAINING):
        table = subprocess.run([SSVAE, "runs", "--results", str(results)], capture_output=True, text=True,
                               check=True).stdout
        rows = json.loads(subprocess.run([SSVAE, "runs", "--results", str(results), "--json"], capture_output=True,
                                         text=True, check=True).stdout)
    line = next(line for line in table.splitlines() if line.startswith(TRAINING))
    assert "training 37/150, ETA 1 m 20 s" in line
    progress = {r["run_id"]: r["progress"] for r in rows}
    assert progress[FINISHED] is None
    assert progress[TRAINING]["epoch"] == 37 and progress[TRAINING]["max_epochs"] == 150
    assert progress[TRAINING]["eta_s"] == pytest.approx(80.0)
    assert progress[TRAINING]["losses"] == {"train_loss": 120.25, "val_loss": 101.5}


def test_watch_once_prints_one_view_with_running_first_and_escapes_control_characters(results):
    with runlock.holding(results / TRAINING):
        done = subprocess.run([SSVAE, "watch", "--once", "--results", str(results)], capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index(TRAINING) < out.index(FAILED) < out.index(FINISHED)
    assert "37/150, ETA 1 m 20 s" in out and "120.2" in out  # train loss
    assert "81.0 % ± 2.1 (binomial SE), baseline 76.0 % (+5.0 points)" in " ".join(out.split())
    assert "\x1b" not in out and "\x07" not in out and "diverged" in out  # the reason, without its escapes


def test_watch_in_a_terminal_refreshes_while_a_run_trains_and_exits_when_nothing_runs(results):
    folder = results / TRAINING
    lock = runlock.holding(folder)
    lock.__enter__()
    child = pexpect.spawn(SSVAE, ["watch", "--results", str(results), "--interval", "0.2", "--grace", "1"],
                          dimensions=(40, 180), encoding="utf-8", timeout=60)
    try:
        child.expect("37/150, ETA 1 m 20 s")
        write_progress(folder, 38, 150, 80 / 113)
        child.expect("38/150, ETA 1 m 19 s")
        time.sleep(1.5)  # past the grace period: a live training keeps the view open
        assert child.isalive()
        # the training writes its outputs and its process ends (releasing the run's lock)
        disk.write_json(folder / "train.json", {"status": "success", "epochs_completed": 150})
        disk.write_text(folder / "history.csv", "epoch\n")
        disk.write_bytes(folder / "checkpoints" / "best.msgpack", b"")
        lock.__exit__(None, None, None)
        child.expect("waiting to evaluate")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
        lock.__exit__(None, None, None)
    assert child.exitstatus == 0


def test_watch_on_an_idle_workspace_prints_once_and_exits(tmp_path, template):
    results = tmp_path / "results"
    write_summary_folder(results, template, FINISHED, accuracy=0.81, baseline=0.76, elbo=-100.0)
    old = time.time() - 3600
    for path in (results, results / FINISHED):
        os.utime(path, (old, old))
    child = pexpect.spawn(SSVAE, ["watch", "--results", str(results), "--interval", "0.2", "--grace", "5"],
                          dimensions=(30, 160), encoding="utf-8", timeout=30)
    child.expect("1 finished")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
