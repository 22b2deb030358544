"""Searches as a user runs them: real `snakemake` on tiny searches, killed and run again, or grown."""

import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml
from workflow_helpers import (
    SSVAE,
    folder_hashes,
    make_workspace,
    run_folders,
    snakemake,
    snakemake_cmd,
    snakemake_env,
    tiny_config,
)

from ssvae import text

pytestmark = pytest.mark.workflow

NO_COMPARE = {"compare": "false"}


def search_config(trials: int) -> str:
    """Rungs of 1 and 3 epochs (min_epochs 1, eta 3, max_epochs 3): each rung keeps the best third."""
    return tiny_config("hs", model={"max_epochs": 3, "patience": 10}, search={
        "method": "halving", "trials": trials, "seed": 0, "metric": "val_accuracy",
        "space": {"model.learning_rate": {"log_uniform": [1e-3, 1e-2]}, "model.latent_dim": {"choice": [2, 4]}},
        "halving": {"min_epochs": 1, "eta": 3}})


def epochs_trained(folder) -> int:
    """Epochs a trial's training ran over all its jobs and attempts (each epoch logs one line)."""
    log = folder / "logs" / "train_attempts.log"
    if not log.exists():
        return 0
    return sum(line.startswith("[") and "] epoch " in line for line in log.read_text().splitlines())


def promotion(workspace, rung):
    return json.loads((workspace / "results" / ".search" / "hs" / f"rung{rung}.json").read_text())


def test_a_killed_search_continues_the_same_trials_and_trains_nothing_twice(tmp_path):
    workspace = make_workspace(tmp_path / "ws", {"hs.yaml": search_config(3)})
    proc = subprocess.Popen(snakemake_cmd(workspace, config=NO_COMPARE), cwd=workspace, env=snakemake_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first_rung = workspace / "results" / ".search" / "hs" / "rung0.json"
    deadline = time.time() + 600
    while time.time() < deadline and not first_rung.exists():
        time.sleep(0.2)
    assert first_rung.exists(), "the first rung never got promoted"
    # kill -9 of Snakemake and every job it started, while the promoted trial trains on
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    decided = promotion(workspace, 0)
    assert decided["reached"] == 3 and decided["quota"] == 1 and len(decided["promoted"]) == 1
    # what the kill left: the trials the promotion stopped read as stopped, the promoted one as waiting for its
    # next rung or, once that rung's job started, interrupted
    listed = json.loads(subprocess.run([SSVAE, "runs", "--json"], cwd=workspace, capture_output=True, text=True,
                                       check=True).stdout)
    states = {int(r["run_id"].split("__")[0][4:]): r["status"] for r in listed}
    assert {t: s for t, s in states.items() if t not in decided["promoted"]} == {
        t: "stopped" for t in range(3) if t not in decided["promoted"]}, listed
    assert states[decided["promoted"][0]] in ("waiting", "interrupted"), listed
    assert {r["search"] for r in listed} == {"hs"} and all(r["search_finished"] is False for r in listed), listed
    shown = subprocess.run([SSVAE, "runs", "--search", "hs"], cwd=workspace, capture_output=True, text=True,
                           check=True).stdout
    assert "in progress: 0 of 3 trial(s) finished" in shown and all(f"hs-t00{t}" in shown for t in range(3))

    snakemake(workspace, "--unlock")
    resumed = snakemake(workspace)
    # a promotion whose job the kill cut short is made again, from the decisions recorded: the same choice
    assert resumed.ran("train_rung") <= 3 and resumed.ran("promote") <= 1
    assert promotion(workspace, 0) == decided  # the same trials, the same values, the same choice
    folders = run_folders(workspace)
    assert len(folders) == 3
    winner = decided["promoted"][0]
    for folder in folders:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        trial = config["search"]["trial"]
        train = json.loads((folder / "train.json").read_text())
        reached = 1 if trial == winner else 0
        assert config["search"]["rung"] == reached and train["search"]["epochs_trained"] == [1, 3][reached]
        assert config["search"]["values"]["model.latent_dim"] == config["model"]["latent_dim"]
        # nothing trained twice: at most the epoch the kill cut short ran again
        assert [1, 3][reached] <= epochs_trained(folder) <= [1, 3][reached] + 1
        if trial == winner:
            assert config["search"]["continued_from"]["epoch"] == 1
            assert json.loads((folder / "rungs" / "1.json").read_text())["continued_from_epoch"] == 1
        else:
            assert json.loads((folder / "rungs" / "1.json").read_text())["status"] == "stopped"

    assert snakemake(workspace).nothing_to_do

    # reading it: the comparison's search block, the halving figure, the CLI's rows
    comparison = (workspace / "results" / "COMPARISON.md").read_text()
    block = comparison[comparison.index("## Search hs"):]
    assert "chosen by val_accuracy (validation labels)" in block
    assert f"Winner: trial {winner} (hs-t00{winner}" in block and "test accuracy" in block
    assert "Epochs trained: 5 against 9 for every trial trained to 3 epochs (56 %)" in block
    assert block.count("stopped after rung 0") == 2
    assert (workspace / "results" / ".search" / "hs" / "halving.png").stat().st_size > 1000
    listed = json.loads(subprocess.run([SSVAE, "runs", "--json"], cwd=workspace, capture_output=True, text=True,
                                       check=True).stdout)
    assert sorted((r["trial"], r["rung"], r["epochs_trained"]) for r in listed) == sorted(
        (t, 1 if t == winner else 0, 3 if t == winner else 1) for t in range(3))
    assert {r["search"] for r in listed} == {"hs"}
    shown = subprocess.run([SSVAE, "runs", "--search", "hs"], cwd=workspace, capture_output=True, text=True,
                           check=True).stdout
    assert f"winner: trial {winner}" in shown and "epochs trained: 5 of 9" in shown


def tpe_config(trials: int) -> str:
    """A TPE search asked in batches of two (the first batch is TPE's random start, the second is told it)."""
    return tiny_config("ts", model={"max_epochs": 1, "patience": 10}, search={
        "method": "tpe", "trials": trials, "batch": 2, "seed": 0, "metric": "val_accuracy",
        "space": {"model.learning_rate": {"log_uniform": [1e-3, 1e-2]}, "model.latent_dim": {"integer": [2, 4]}}})


def batch_files(workspace) -> dict[str, tuple[bytes, int]]:
    """Every TPE batch file of search ts: name -> (bytes, mtime)."""
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted((workspace / "results" / ".search" / "ts" / "tpe").glob("*/batch*.json"))}


def dry_run_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {field: text}) of every job that `snakemake -n` lists, from its job blocks (a group job's are
    indented)."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in output.splitlines():
        started = re.match(r"^ *(?:local)?(?:rule|checkpoint) (\w+):$", line)
        if started:
            jobs.append((started.group(1), {}))
        elif jobs and (field := re.match(r"^ +(\w+): (.*)$", line)):
            jobs[-1][1][field.group(1)] = field.group(2)
    return jobs


def test_a_tpe_trials_evaluate_and_report_take_its_batch_file_and_other_runs_nothing_new(tmp_path):
    workspace = make_workspace(tmp_path / "ws", {"ts.yaml": tpe_config(4), "hs.yaml": search_config(3),
                                                 "plain.yaml": tiny_config("plain")})
    snakemake(workspace, "--until", "derive_arch_code")
    jobs = dry_run_jobs(snakemake(workspace, "-n").output)
    seen = set()
    for rule, fields in jobs:
        if rule not in ("evaluate", "report"):
            continue
        run = dict(item.split("=", 1) for item in fields["wildcards"].split(", "))["name"]
        inputs = fields["input"].split(", ")
        searched = [path for path in inputs if path.startswith("results/.search/")]
        if run.startswith("ts-t"):
            batch = int(run.removeprefix("ts-t")) // 2
            assert len(searched) == 1 and searched[0].endswith(f"/batch{batch}.json"), (rule, inputs)
        else:
            assert searched == [], (rule, inputs)
        seen.add((rule, run.partition("-")[0]))
    assert seen == {(rule, name) for rule in ("evaluate", "report") for name in ("ts", "hs", "plain")}


def test_a_tpe_search_asks_each_batch_once_and_a_grown_search_trains_only_its_new_trials(tmp_path):
    workspace = make_workspace(tmp_path / "ws", {"ts.yaml": tpe_config(4)})
    first = snakemake(workspace)
    assert first.ran("ask") == 2 and first.ran("train_rung") == 4 and first.ran("train") == 4
    batches = batch_files(workspace)
    assert sorted(batches) == ["batch0.json", "batch1.json"]
    asked = {entry["trial"]: entry for name in batches for entry in json.loads(batches[name][0])["trials"]}
    second_batch = json.loads(batches["batch1.json"][0])
    folders = run_folders(workspace)
    assert len(folders) == 4
    values = {}
    for folder in folders:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        trial = config["search"]["trial"]
        assert config["search"]["method"] == "tpe" and config["search"]["batch"] == trial // 2
        # the values asked for the trial are the ones it trained with, and its config.yaml records them
        assert config["search"]["values"] == asked[trial]["values"]
        assert config["model"]["learning_rate"] == asked[trial]["values"]["model.learning_rate"]
        assert config["model"]["latent_dim"] == asked[trial]["values"]["model.latent_dim"]
        assert epochs_trained(folder) == 1
        values[trial] = json.loads((folder / "rungs" / "0.json").read_text())["value"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["metadata"]["search"]["values"] == asked[trial]["values"]
    # the second batch was told the first batch's trials, with their values
    assert second_batch["told"] == [{"trial": 0, "value": values[0]}, {"trial": 1, "value": values[1]}]

    assert snakemake(workspace).nothing_to_do

    trained = {folder.name: (folder / "train.json").read_bytes() for folder in folders}
    (workspace / "configs" / "ts.yaml").write_text(tpe_config(6))
    grown = snakemake(workspace)
    # the new batch alone is asked, the new trials alone train; the batches asked before stay as they were
    assert grown.ran("ask") == 1 and grown.ran("train_rung") == 2 and grown.ran("train") == 2, grown.jobs
    now = batch_files(workspace)
    assert sorted(now) == ["batch0.json", "batch1.json", "batch2.json"]
    assert {name: now[name] for name in batches} == batches
    assert [entry["trial"] for entry in json.loads(now["batch2.json"][0])["told"]] == [0, 1, 2, 3]
    assert {folder.name: (folder / "train.json").read_bytes() for folder in folders} == trained
    assert len(run_folders(workspace)) == 6
    assert snakemake(workspace).nothing_to_do
    # a batch file written again later (the same document, another layout) leaves its trials' stages up to date
    for path in (workspace / "results" / ".search" / "ts" / "tpe").glob("*/batch*.json"):
        path.write_text(json.dumps(json.loads(path.read_text()), indent=1))
    assert snakemake(workspace).nothing_to_do

    comparison = (workspace / "results" / "COMPARISON.md").read_text()
    block = comparison[comparison.index("## Search ts"):]
    assert "6 trial(s), tpe search, asked in batches of 2; chosen by val_accuracy" in block
    assert "Winner: trial" in block
    assert "Epochs trained: 6 against 6" in block
    shown = subprocess.run([SSVAE, "runs", "--search", "ts"], cwd=workspace, capture_output=True, text=True,
                           check=True).stdout
    assert "winner: trial" in shown and "epochs trained: 6 of 6" in shown


def test_halving_over_tpe_proposals_asks_from_rung_zero_and_reruns_nothing(tmp_path):
    config_text = tiny_config("hs", model={"max_epochs": 3, "patience": 10}, search={
        "method": "halving", "proposals": "tpe", "trials": 3, "batch": 2, "seed": 0, "metric": "val_accuracy",
        "space": {"model.learning_rate": {"log_uniform": [1e-3, 1e-2]}, "model.latent_dim": {"integer": [2, 4]}},
        "halving": {"min_epochs": 1, "eta": 3}})
    workspace = make_workspace(tmp_path / "ws", {"hs.yaml": config_text})
    first = snakemake(workspace, config=NO_COMPARE)
    assert first.ran("ask") == 2 and first.ran("promote") == 1 and first.ran("train_rung") == 6
    [batch0, batch1] = [json.loads(p.read_text()) for p in
                        sorted((workspace / "results" / ".search" / "hs" / "tpe").glob("*/batch*.json"))]
    asked = {entry["trial"]: entry["values"] for entry in batch0["trials"] + batch1["trials"]}
    decided = promotion(workspace, 0)
    winner = decided["promoted"][0]
    for folder in run_folders(workspace):
        config = yaml.safe_load((folder / "config.yaml").read_text())
        trial = config["search"]["trial"]
        assert config["search"]["values"] == asked[trial] and config["search"]["proposals"] == "tpe"
        assert config["model"]["learning_rate"] == asked[trial]["model.learning_rate"]
        assert config["search"]["rung"] == (1 if trial == winner else 0)
        if trial == winner:
            assert config["search"]["continued_from"]["epoch"] == 1
        assert epochs_trained(folder) == (3 if trial == winner else 1)
    # batch 1 (trial 2, and trial 3 for a search grown later) was told the rung-0 values of trials 0 and 1
    rung0 = {row["trial"]: row["value"] for row in decided["trials"]}
    assert batch1["told"] == [{"trial": 0, "value": rung0[0]}, {"trial": 1, "value": rung0[1]}]
    assert [entry["trial"] for entry in batch1["trials"]] == [2, 3]
    assert snakemake(workspace, config=NO_COMPARE).nothing_to_do


def test_a_killed_tpe_search_continues_with_the_batches_it_asked(tmp_path):
    workspace = make_workspace(tmp_path / "ws", {"ts.yaml": tpe_config(4).replace("max_epochs: 1", "max_epochs: 2")})
    proc = subprocess.Popen(snakemake_cmd(workspace, config=NO_COMPARE), cwd=workspace, env=snakemake_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and "batch1.json" not in batch_files(workspace):
        time.sleep(0.2)
    assert "batch1.json" in batch_files(workspace), "the second batch was never asked"
    # kill -9 of Snakemake and every job it started, while the second batch trains
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    asked = {name: content for name, (content, _) in batch_files(workspace).items()}

    snakemake(workspace, "--unlock")
    resumed = snakemake(workspace, config=NO_COMPARE)
    assert resumed.ran("ask") == 0 and resumed.ran("train_rung") <= 2
    assert {name: content for name, (content, _) in batch_files(workspace).items()} == asked
    values = {entry["trial"]: entry["values"] for content in asked.values() for entry in json.loads(content)["trials"]}
    folders = run_folders(workspace)
    assert len(folders) == 4
    for folder in folders:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["search"]["values"] == values[config["search"]["trial"]]
        assert 2 <= epochs_trained(folder) <= 3  # at most the epoch the kill cut short ran again
    assert snakemake(workspace, config=NO_COMPARE).nothing_to_do

    # a batch file lost is written again from the asked batches, never asked again; its trials' jobs run again
    # (Snakemake reruns what follows a missing file) and find their training done: no epoch trains twice
    epochs = {folder.name: epochs_trained(folder) for folder in folders}
    second = next((workspace / "results" / ".search" / "ts" / "tpe").glob("*/batch1.json"))
    second.unlink()
    again = snakemake(workspace, config=NO_COMPARE)
    assert again.ran("ask") == 1 and again.ran("train_rung") == 2, again.jobs
    assert second.read_bytes() == asked["batch1.json"]
    assert "batch 1 was asked before" in (second.parent / "logs" / "ask1.log").read_text()
    assert {folder.name: epochs_trained(folder) for folder in folders} == epochs
    assert snakemake(workspace, config=NO_COMPARE).nothing_to_do


def grown_search_config(method: str, trials: int) -> str:
    """Search `gr`, random (1 epoch each), or `gh`, halving with rungs of 1 and 2 epochs (min_epochs 1, eta 2)."""
    search = {"method": method, "trials": trials, "seed": 0, "metric": "val_accuracy",
              "space": {"model.learning_rate": {"log_uniform": [1e-3, 1e-2]}, "model.latent_dim": {"choice": [2, 4]}}}
    if method == "halving":
        search["halving"] = {"min_epochs": 1, "eta": 2}
    return tiny_config("gh" if method == "halving" else "gr",
                       model={"max_epochs": 2 if method == "halving" else 1, "patience": 10}, search=search)


def trial_folders(workspace, search: str) -> dict[int, object]:
    """trial number -> its run folder, for one search."""
    return {yaml.safe_load((f / "config.yaml").read_text())["search"]["trial"]: f for f in run_folders(workspace)
            if f.name.startswith(f"{search}-t")}


def trained_trials(result) -> list[str]:
    """Run names whose train or train_rung job ran in this invocation (from Snakemake's `wildcards:` lines)."""
    names = []
    lines = result.output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in ("rule train:", "localrule train:", "rule train_rung:", "localrule train_rung:"):
            for follow in lines[i + 1:i + 12]:
                if follow.strip().startswith("wildcards:"):
                    names.append(follow.split("name=")[1].split(",")[0])
                    break
    return sorted(names)


def mtimes(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_raising_trials_trains_only_the_new_trials(tmp_path):
    """A random search and a halving search in one workspace, two trials each, then four."""
    workspace = make_workspace(tmp_path / "ws", {"gr.yaml": grown_search_config("random", 2),
                                                 "gh.yaml": grown_search_config("halving", 2)})
    first = snakemake(workspace)
    old = {search: trial_folders(workspace, search) for search in ("gr", "gh")}
    assert sorted(old["gr"]) == sorted(old["gh"]) == [0, 1]
    # the random trials train once each; the halving trials at two rungs, then their train job finishes them
    assert trained_trials(first) == sorted(["gr-t000", "gr-t001"] + ["gh-t000", "gh-t001"] * 3)
    search_dir = workspace / "results" / ".search" / "gh"
    promotion_document = json.loads((search_dir / "rung0.json").read_text())
    decided = json.loads((search_dir / "decisions.json").read_text())
    assert promotion_document["reached"] == 2 and len(promotion_document["promoted"]) == 1
    before = {(s, t): folder_hashes(f) for s, folders in old.items() for t, f in folders.items()}
    stamps = {(s, t): mtimes(f) for s, folders in old.items() for t, f in folders.items()}

    for method in ("random", "halving"):
        (workspace / "configs" / f"g{method[0]}.yaml").write_text(grown_search_config(method, 4))
    second = snakemake(workspace)
    # only the new trials trained: their rungs, and train to finish them
    assert trained_trials(second) == sorted(["gr-t002", "gr-t003"] + ["gh-t002", "gh-t003"] * 3), \
        second.output[-3000:]
    assert second.ran("train") == 4 and second.ran("train_rung") == 4 and second.ran("promote") == 1
    # and nothing of the old trials' folders was written: not a checkpoint, history, summary, rung record or log
    for search, folders in old.items():
        now = trial_folders(workspace, search)
        assert sorted(now) == [0, 1, 2, 3]
        for trial, folder in folders.items():
            assert now[trial] == folder
            assert folder_hashes(folder) == before[search, trial], (search, trial)
            assert mtimes(folder) == stamps[search, trial], (search, trial)
        for trial in (2, 3):
            assert epochs_trained(now[trial]) >= 1
    # the earlier decisions are kept; the new trials are ranked with everyone at the rung
    promoted = json.loads((search_dir / "rung0.json").read_text())
    assert promoted["reached"] == 4 and promoted["quota"] == 2
    for trial in (0, 1):
        assert (trial in promoted["promoted"]) == (trial in promotion_document["promoted"])
    ledger = json.loads((search_dir / "decisions.json").read_text())
    assert {t: up for t, up in ledger["0"].items() if int(t) < 2} == decided["0"]
    assert sorted(ledger["0"]) == ["0", "1", "2", "3"]
    assert snakemake(workspace).nothing_to_do
    # the comparison lists every trial of each search
    comparison = (workspace / "results" / "COMPARISON.md").read_text()
    for search in ("gh", "gr"):
        block = comparison[comparison.index(f"## Search {search}"):]
        block = block[:block.index("\n## ", 1)] if "\n## " in block[1:] else block
        assert block.startswith(f"## Search {search}\n\n4 trial(s)")
        for folder in trial_folders(workspace, search).values():
            assert text.markdown_text(folder.name) in block
