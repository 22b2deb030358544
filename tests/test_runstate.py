"""A run folder's status comes from facts on disk: the live train lock, failure markers, every stage's outputs."""

import json
import subprocess
import sys

import msgpack
import pytest

from ssvae import disk
from ssvae.results import runlock, runs, runstate


def finished(folder, run_id=None):
    """Every output of every stage, as the workflow leaves a finished run."""
    for path in runstate.RUN_OUTPUTS:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path == "figures":
            target.mkdir(exist_ok=True)
        elif path == "summary.json":
            disk.write_json(target, {"status": "success", "metadata": {"run_id": run_id or folder.name}})
        else:
            target.write_text("x")
    return folder


def resume_file(folder, epoch, name="resume.msgpack"):
    """A resume checkpoint as training writes it (framed msgpack whose meta records the epochs completed)."""
    payload = msgpack.packb({"format": "ssvae-resume/2", "resume_tag": "t",
                             "meta": json.dumps({"epochs_completed": epoch}), "state": {}, "best": {}})
    path = folder / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(disk.framed(payload))


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "exp__std_head_plain__20250101_000000"
    folder.mkdir()
    return folder


def test_success_needs_every_output_of_every_stage(run):
    finished(run)
    assert runstate.folder_state(run)["status"] == "success"
    for path in ["REPORT.html", "config.yaml", "REPORT.md", "metrics.json"]:
        finished(run)
        (run / path).unlink()
        state = runstate.folder_state(run)
        assert state["status"] == "stale" and path in state["reason"], path
    finished(run)
    disk.write_json(run / "summary.json", {"status": "success", "metadata": {"run_id": "other__a__b"}})
    assert runstate.folder_state(run)["status"] == "stale"


def test_a_forcerun_train_that_was_killed_is_interrupted_not_success(run):
    finished(run)
    resume_file(run, 7)
    for path in runstate.STAGE_OUTPUTS["train"]:  # Snakemake removes a job's outputs before it runs
        (run / path).unlink()
    state = runstate.folder_state(run)
    assert state["status"] == "interrupted" and state["epoch"] == 7
    assert "resumes from epoch 7 on the next run" in state["reason"]


def test_never_started_started_interrupted_and_failed(run):
    assert runstate.folder_state(run)["status"] == "planned"
    (run / "logs").mkdir()
    (run / "logs" / "train.log").write_text("loading\n")
    state = runstate.folder_state(run)
    assert state["status"] == "interrupted" and state["epoch"] is None
    assert "before its first epoch was saved" in state["reason"]
    resume_file(run, 3, "resume.prev.msgpack")
    (run / "checkpoints" / "resume.msgpack").write_bytes(b"half a fil")  # damaged latest: the previous one counts
    assert runstate.folder_state(run)["epoch"] == 3
    runstate.record_failure(run, "train", "EOFError: data/x.gz ends early")
    state = runstate.folder_state(run)
    assert state["status"] == "failed" and state["reason"] == "train failed: EOFError: data/x.gz ends early"
    assert state["log"] == "logs/train.log"
    assert runstate.failed_stages(run) == ["train"]
    runstate.clear_failure(run, "train")
    assert runstate.folder_state(run)["status"] == "interrupted" and not runstate.failed_stages(run)


def test_a_failure_marker_of_a_stage_that_finished_since_is_not_a_failure(run):
    finished(run)
    runstate.record_failure(run, "evaluate", "boom")
    assert runstate.folder_state(run)["status"] == "success"
    (run / "metrics.json").unlink()
    assert runstate.folder_state(run)["status"] == "failed"


def test_training_only_while_a_live_process_holds_the_lock(run):
    resume_file(run, 2)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); from ssvae.results import runlock;"
         "ctx = runlock.holding(sys.argv[2]); ctx.__enter__(); print('held', flush=True); time.sleep(60)",
         str(disk.__file__).rsplit("/ssvae/", 1)[0], str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        state = runstate.folder_state(run)
        assert state["status"] == "training" and state["epoch"] == 2 and "epoch 2 saved" in state["reason"]
        assert "pid" in runlock.holder(run)
        # looking does not disturb: the holder keeps its lock
        with pytest.raises(runlock.RunFolderBusy):
            with runlock.holding(run):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert runlock.holder(run) is None
    assert runstate.folder_state(run)["status"] == "interrupted"  # killed: no process holds it any more


def test_ssvae_runs_lists_true_statuses_and_filters_on_each(tmp_path):
    results = tmp_path / "results"
    done = finished(results / "done__std_head_plain__20250101_000000")
    early = finished(results / "early__std_head_plain__20250101_000001")
    (early / "REPORT.html").unlink()  # summary.json written, the report's other files not yet
    killed = finished(results / "killed__std_head_plain__20250101_000002")
    resume_file(killed, 4)
    for path in runstate.STAGE_OUTPUTS["train"]:
        (killed / path).unlink()
    crashed = results / "crashed__std_head_plain__20250101_000003"
    (crashed / "logs").mkdir(parents=True)
    (crashed / "logs" / "train.log").write_text("Traceback ...\n")
    runstate.record_failure(crashed, "train", "EOFError: Compressed file ended before the end-of-stream marker")
    rows = {r["run_id"].split("__")[0]: r for r in runs.list_runs(results)}
    assert {name: r["status"] for name, r in rows.items()} == {
        "done": "success", "early": "stale", "killed": "interrupted", "crashed": "failed"}
    ssvae = [sys.executable, "-m", "ssvae.cli", "runs", "--results", str(results)]
    table = subprocess.run(ssvae, capture_output=True, text=True, check=True).stdout
    assert f"{killed.name}: interrupted: training stopped after epoch 4; resumes from epoch 4 on the next run" in table
    assert f"{crashed.name}: failed: train failed: EOFError" in table and f"(log: {crashed}/logs/train.log)" in table
    for status, expected in [("failed", [crashed.name]), ("interrupted", [killed.name]),
                             ("success,stale", [done.name, early.name])]:
        listed = json.loads(subprocess.run([*ssvae, "--status", status, "--json"], capture_output=True, text=True,
                                           check=True).stdout)
        assert sorted(r["run_id"] for r in listed) == expected, status
    wrong = subprocess.run([*ssvae, "--status", "crashed"], capture_output=True, text=True)
    assert wrong.returncode != 0 and "unknown status 'crashed'; allowed: planned, training, interrupted" in wrong.stderr


def rung(folder, r, status="trained", epochs=None, log=True, **fields):
    """rungs/<r>.json of a halving trial of search `hs` (rungs of 1, 3 and 9 epochs) and the rung job's log."""
    rungs = [1, 3, 9]
    record = {"status": status, "search": "hs", "trial": 0, "rung": r, "rungs": rungs, "epochs": rungs[r],
              "epochs_completed": rungs[r] if epochs is None else epochs, **fields}
    disk.write_json(folder / "rungs" / f"{r}.json", record)
    if log:
        (folder / "logs").mkdir(exist_ok=True)
        (folder / "logs" / f"train_rung{r}.log").write_text(f"rung {r}\n")


def promotion(results, r, promoted):
    disk.write_json(results / ".search" / "hs" / f"rung{r}.json", {"rung": r, "promoted": promoted})


def test_a_halving_trial_between_rungs_waits_and_a_stopped_one_is_stopped(tmp_path):
    results = tmp_path / "results"
    trial = results / "hs-t000__std_head_plain__20250101_000000"
    trial.mkdir(parents=True)
    (trial / "logs").mkdir()
    (trial / "logs" / "train_rung0.log").write_text("compiling\n")
    # killed before its first epoch was saved: interrupted (its rung job's log says it started)
    state = runstate.folder_state(trial)
    assert state["status"] == "interrupted" and "before its first epoch was saved" in state["reason"]

    rung(trial, 0)
    resume_file(trial, 1)
    state = runstate.folder_state(trial)
    assert state == {"status": "waiting", "rung": 0, "log": "logs/train_rung0.log",
                     "reason": "rung 0 of 0-2 done (trained to epoch 1); waiting for the promotion"}
    promotion(results, 0, [0])
    assert runstate.folder_state(trial)["reason"] == ("rung 0 of 0-2 done (trained to epoch 1); promoted, waiting "
                                                      "to train on to rung 1")
    # the promoted trial's next rung started and was killed: before an epoch was saved, and after
    (trial / "logs" / "train_rung1.log").write_text("compiling\n")
    state = runstate.folder_state(trial)
    assert state["status"] == "interrupted" and state["epoch"] == 1
    resume_file(trial, 2)
    assert runstate.folder_state(trial)["status"] == "interrupted"
    (trial / "logs" / "train_rung1.log").unlink()
    assert runstate.folder_state(trial)["status"] == "interrupted"  # epoch 2 saved, past its rung's epoch 1

    rung(trial, 1)
    resume_file(trial, 3)
    promotion(results, 1, [5])  # not promoted: stopped, before and after its next rung job records it
    state = runstate.folder_state(trial)
    assert state == {"status": "stopped", "rung": 1, "log": "logs/train_rung1.log",
                     "reason": "stopped after rung 1 at epoch 3: not promoted; its train job finishes it there"}
    (trial / "logs" / "train_rung2.log").write_text("")  # that job started (a stopped trial's job trains nothing)
    assert runstate.folder_state(trial)["status"] == "stopped"
    rung(trial, 2, status="stopped", epochs=3, reached=1)
    assert runstate.folder_state(trial) == state | {"log": "logs/train_rung2.log"}
    listed = {r["run_id"]: r for r in runs.list_runs(results)}
    assert listed[trial.name]["status"] == "stopped"
    # its train job (which finishes it) killed: interrupted; finished: as any run
    (trial / "logs" / "train.log").write_text("finishing\n")
    assert runstate.folder_state(trial)["status"] == "interrupted"
    finished(trial)
    assert runstate.folder_state(trial)["status"] == "success"


def test_the_plan_of_a_trial_between_rungs_says_waiting_or_stopped_never_interrupted(tmp_path):
    trial = tmp_path / "results" / "hs-t000__std_head_plain__20250101_000000"
    trial.mkdir(parents=True)
    rung(trial, 0)
    resume_file(trial, 1)
    assert runstate.pending_stage(trial, {}) == (
        "train", "rung 0 of 0-2 done (trained to epoch 1); waiting for the promotion")
    promotion(tmp_path / "results", 0, [3])
    assert runstate.pending_stage(trial, {}) == (
        "train", "stopped after rung 0 at epoch 1: not promoted; its train job finishes it there")
    (trial / "logs" / "train.log").write_text("finishing\n")  # its train job started and was killed
    assert runstate.pending_stage(trial, {}) == ("train", "interrupted after epoch 1: resumes from it")


def test_a_trial_that_reached_the_top_rung_waits_to_be_finished(tmp_path):
    trial = tmp_path / "results" / "hs-t003__std_head_plain__20250101_000000"
    trial.mkdir(parents=True)
    for r in range(3):
        rung(trial, r)
    resume_file(trial, 9)
    assert runstate.folder_state(trial) == {
        "status": "waiting", "rung": 2, "log": "logs/train_rung2.log",
        "reason": "rung 2 of 0-2 done (trained to epoch 9), the top rung; waiting for its train job to finish it"}


def test_ssvae_runs_and_watch_show_trials_between_rungs(tmp_path):
    from ssvae import watch

    results = tmp_path / "results"
    waiting = results / "hs-t000__std_head_plain__20250101_000000"
    stopped = results / "hs-t001__std_head_plain__20250101_000000"
    for trial, folder in enumerate((waiting, stopped)):
        folder.mkdir(parents=True)
        rung(folder, 0, trial=trial)
        resume_file(folder, 1)
    promotion(results, 0, [0])
    table = subprocess.run([sys.executable, "-m", "ssvae.cli", "runs", "--results", str(results)],
                           capture_output=True, text=True, check=True).stdout
    assert "interrupted" not in table
    assert (f"{waiting.name}: waiting: rung 0 of 0-2 done (trained to epoch 1); promoted, waiting to train on to "
            f"rung 1 (log: {waiting}/logs/train_rung0.log)") in table
    assert f"{stopped.name}: stopped: stopped after rung 0 at epoch 1: not promoted" in table
    rows = runs.list_runs(results)
    assert [watch.kind(r) for r in rows] == ["waiting", "waiting"]
    shown = subprocess.run([sys.executable, "-m", "ssvae.cli", "runs", "--results", str(results), "--status",
                            "stopped", "--json"], capture_output=True, text=True, check=True).stdout
    assert [r["run_id"] for r in json.loads(shown)] == [stopped.name]


def planned_trial(results, trial, name="hs"):
    """results/.plan/<key>/run.json of trial `trial` of halving search `name` (rungs of 1, 3 and 9 epochs)."""
    run_id = f"{name}-t{trial:03d}__std_head_plain__20250101_000000"
    search = {"name": name, "trial": trial, "method": "halving", "proposals": "random", "trials": 3,
              "metric": "val_accuracy", "column": "val_accuracy", "mode": "max", "rungs": [1, 3, 9], "eta": 3,
              "values": {"model.latent_dim": 2 + trial}}
    disk.write_json(results / ".plan" / f"{name}{trial}" / "run.json",
                    {"ok": True, "run_id": run_id, "name": f"{name}-t{trial:03d}", "search": search})
    return results / run_id


def test_ssvae_runs_search_lists_a_search_while_it_runs(tmp_path):
    """Between rungs no trial has a summary.json yet: `ssvae runs --search` still lists every trial (planned ones
    too), with the rung each finished and its metric there, the trial leading so far and the epochs spent."""
    results = tmp_path / "results"
    waiting, stopped, planned = (planned_trial(results, trial) for trial in range(3))
    for trial, (folder, value) in enumerate([(waiting, 0.6), (stopped, 0.4)]):
        folder.mkdir(parents=True)
        rung(folder, 0, trial=trial, value=value)
        resume_file(folder, 1)
    promotion(results, 0, [0])
    ssvae = [sys.executable, "-m", "ssvae.cli", "runs", "--results", str(results), "--search", "hs"]
    listed = json.loads(subprocess.run([*ssvae, "--json"], capture_output=True, text=True, check=True).stdout)
    assert [(r["trial"], r["status"], r["rung"], r["epochs_trained"], r["search_value"], r["search_finished"])
            for r in listed] == [(0, "waiting", 0, 1, 0.6, False), (1, "stopped", 0, 1, 0.4, False),
                                 (2, "planned", 0, None, None, False)]
    table = subprocess.run(ssvae, capture_output=True, text=True, check=True).stdout
    assert "rung (epochs)  val_accuracy" in table and f"{waiting.name}  waiting" in table
    assert "in progress: 0 of 3 trial(s) finished" in table
    assert f"leading so far: trial 0 ({waiting.name}), val_accuracy 0.6000 at rung 0" in table
    assert "epochs trained so far: 2 of 27 for every trial trained to 9 epochs" in table
    assert planned.name in table and "no runs" not in table
