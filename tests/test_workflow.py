"""The workflow as a user meets it: real `snakemake` on tiny configs, checking which jobs ran and what changed.

Every row of the README's re-run table is a test here. A module-scoped workspace is run once; each test
works on its own copy (results and Snakemake's metadata included).
"""

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from workflow_helpers import (
    SSVAE,
    clone_workspace,
    folder_hashes,
    make_workspace,
    run_folders,
    snakemake,
    snakemake_cmd,
    snakemake_env,
    tiny_config,
)

pytestmark = pytest.mark.workflow

ALPHA = tiny_config("alpha")
BETA = tiny_config("beta", model={"prior_type": "mixture", "num_components": 10, "use_tau_classifier": True,
                                  "decoder_conditioning": "film"})
RUN_FILES = ["config.yaml", "summary.json", "REPORT.md", "metrics.json", "predictions.npz", "history.csv",
             "train.json", "checkpoints/best.msgpack", "logs/train.log", "logs/evaluate.log", "logs/report.log",
             "benchmarks/train.tsv", "benchmarks/evaluate.tsv", "benchmarks/report.tsv"]
TRAINING_STAGES = {"train", "evaluate", "report"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    workspace = make_workspace(tmp_path_factory.mktemp("base"), {"alpha.yaml": ALPHA, "beta.yaml": BETA})
    first = snakemake(workspace, config={"jax_cache": "auto"})  # the default place: results/.jax_cache
    return workspace, first


@pytest.fixture
def workspace(base, tmp_path):
    return clone_workspace(base[0], tmp_path / "ws")


def folder_of(workspace, name):
    (folder,) = [f for f in run_folders(workspace) if f.name.startswith(f"{name}__")]
    return folder


def edit_config(workspace, name, change):
    path = workspace / "configs" / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text())
    for section, values in change.items():
        doc.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(doc))


def test_first_run_makes_complete_self_documenting_folders(base):
    workspace, first = base
    assert first.ran("train") == 2 and first.ran("evaluate") == 2 and first.ran("report") == 2
    assert any((workspace / "results" / ".jax_cache").glob("*.xla"))  # jax_cache: auto compiles into results/
    folders = run_folders(workspace)
    assert [f.name.split("__")[:2] for f in folders] == [["alpha", "std_head_plain"], ["beta", "mix10_tau_film"]]
    for folder in folders:
        for name in RUN_FILES:
            assert (folder / name).is_file(), f"{folder.name}/{name} missing"
        assert list((folder / "figures").glob("*.png"))
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        assert cfg["run_id"] == folder.name
        assert folder.name == f"{cfg['experiment']['name']}__{cfg['architecture_code']}__{cfg['timestamp']}"
        assert cfg["model"]["component_embedding_dim"] is not None  # every default resolved
        assert "git_commit" in cfg["provenance"]
        summary = json.loads((folder / "summary.json").read_text(),
                             parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
        assert summary["metadata"]["run_id"] == folder.name
        assert summary["metadata"]["dataset"] == "digits"
        assert summary["status"]
    assert (workspace / "results" / "NAMING_LEGEND.md").is_file()
    assert (workspace / "results" / "COMPARISON.md").is_file()


def test_ssvae_arch_prints_the_code_the_folder_gets(base):
    workspace, _ = base
    for name in ["alpha", "beta"]:
        out = subprocess.run([SSVAE, "arch", str(workspace / "configs" / f"{name}.yaml")],
                             capture_output=True, text=True, check=True, cwd=workspace).stdout
        arch, run_id = out.split()
        assert folder_of(workspace, name).name.startswith(f"{name}__{arch}__")
        assert run_id == folder_of(workspace, name).name  # the run exists: its real id, not a pattern


def test_ssvae_runs_lists_the_runs(base):
    workspace, _ = base
    out = subprocess.run([SSVAE, "runs", "--results", str(workspace / "results")],
                         capture_output=True, text=True, check=True).stdout
    assert "alpha__std_head_plain__" in out and "beta__mix10_tau_film__" in out
    only = subprocess.run([SSVAE, "runs", "--results", str(workspace / "results"), "--arch", "mix10_tau_film"],
                          capture_output=True, text=True, check=True).stdout
    assert "beta__" in only and "alpha__" not in only


def test_run_again_nothing_to_be_done(workspace):
    again = snakemake(workspace)
    assert again.nothing_to_do and again.jobs == []


def test_touched_configs_and_fresh_checkout_retrain_nothing(workspace):
    before = {f.name: folder_hashes(f) for f in run_folders(workspace)}
    later = time.time() + 5
    for path in [*(workspace / "configs").glob("*.yaml"), workspace / "Snakefile",
                 *[p for d in ("workflow", "scripts", "src") for p in (workspace / d).rglob("*") if p.is_file()]]:
        os.utime(path, (later, later))
    again = snakemake(workspace)
    assert not TRAINING_STAGES & set(again.jobs), again.jobs
    assert {f.name: folder_hashes(f) for f in run_folders(workspace)} == before


def test_description_change_reruns_at_most_report(workspace):
    folder = folder_of(workspace, "alpha")
    edit_config(workspace, "alpha", {"experiment": {"description": "a sharper description", "tags": ["new"]}})
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"report"}, again.jobs
    assert again.ran("report") == 1
    assert folder_of(workspace, "alpha") == folder
    assert "a sharper description" in (folder / "REPORT.md").read_text()
    assert json.loads((folder / "summary.json").read_text())["metadata"]["tags"] == ["new"]


def test_model_change_trains_a_new_folder_and_keeps_the_old(workspace):
    old = folder_of(workspace, "alpha")
    old_hashes = folder_hashes(old)
    edit_config(workspace, "alpha", {"model": {"learning_rate": 0.002}})
    again = snakemake(workspace)
    assert again.ran("train") == 1 and again.ran("evaluate") == 1 and again.ran("report") == 1
    alpha_folders = [f for f in run_folders(workspace) if f.name.startswith("alpha__")]
    assert len(alpha_folders) == 2
    new = next(f for f in alpha_folders if f != old)
    assert new.name.split("__")[2] > old.name.split("__")[2]
    assert folder_hashes(old) == old_hashes
    # going back to the earlier model finds its folder again instead of training anew
    edit_config(workspace, "alpha", {"model": {"learning_rate": 0.001}})
    back = snakemake(workspace)
    assert not TRAINING_STAGES & set(back.jobs), back.jobs
    assert folder_hashes(old) == old_hashes


def test_evaluation_change_reruns_evaluate_and_report_in_place(workspace):
    folder = folder_of(workspace, "beta")
    edit_config(workspace, "beta", {"evaluation": {"num_plot_samples": 100}})
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"evaluate", "report"}, again.jobs
    assert folder_of(workspace, "beta") == folder


def test_report_change_or_deleted_report_reruns_report_only(workspace):
    edit_config(workspace, "alpha", {"report": {"dpi": 70}})
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"report"}, again.jobs
    folder = folder_of(workspace, "beta")
    (folder / "REPORT.md").unlink()
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"report"}, again.jobs
    assert (folder / "REPORT.md").is_file()
    import shutil

    shutil.rmtree(folder / "figures")
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"report"}, again.jobs
    assert list((folder / "figures").glob("*.png"))


def test_deleted_metrics_reruns_evaluate_and_report(workspace):
    folder = folder_of(workspace, "alpha")
    (folder / "metrics.json").unlink()
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"evaluate", "report"}, again.jobs
    assert (folder / "metrics.json").is_file()
    # a deleted intermediate is made again (Snakemake would leave it missing behind an up-to-date report if the
    # default target did not name every stage's outputs)
    (folder / "predictions.npz").unlink()
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"evaluate", "report"}, again.jobs
    assert (folder / "predictions.npz").is_file()
    (folder / "REPORT.html").unlink()
    again = snakemake(workspace)
    assert set(again.jobs) & TRAINING_STAGES == {"report"}, again.jobs


def test_two_invocations_on_disjoint_configs_at_once(workspace):
    (workspace / "configs" / "gamma.yaml").write_text(tiny_config("gamma"))
    (workspace / "configs" / "delta.yaml").write_text(tiny_config("delta", model={"latent_dim": 3}))
    procs = [
        subprocess.Popen(snakemake_cmd(workspace, experiments=[f"configs/{n}.yaml"], config={"compare": "false"}),
                         cwd=workspace, env=snakemake_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
        for n in ("gamma", "delta")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    names = {f.name.split("__")[0] for f in run_folders(workspace)}
    assert {"gamma", "delta"} <= names


def test_bad_configs_fail_alone_and_compare_still_covers_the_good_runs(base, tmp_path):
    configs = {"good1.yaml": tiny_config("good1"), "good2.yaml": tiny_config("good2", model={"latent_dim": 3}),
               "broken.yaml": tiny_config("broken", model={"prior_type": "mixtur", "use_tau_classifer": True}),
               # two files, one run: the same experiment name, data and model
               "twin_a.yaml": tiny_config("twin"), "twin_b.yaml": tiny_config("twin")}
    workspace = make_workspace(tmp_path / "bad", configs)
    (workspace / "configs" / "latin1.yaml").write_bytes("experiment: {description: \"caf\xe9\"}\n".encode("latin-1"))
    (workspace / "configs" / "sub").mkdir()
    (workspace / "configs" / "sub" / "good1.yaml").write_text(tiny_config("good1_elsewhere"))
    experiments = [f"configs/{name}" for name in [*configs, "latin1.yaml", "sub/good1.yaml", "missing.yaml"]]
    # reuse the compiled models of the base run
    (workspace / "results").mkdir()
    import shutil

    shutil.copytree(base[0] / "results" / ".jax_cache", workspace / "results" / ".jax_cache")
    result = snakemake(workspace, "--keep-going", experiments=experiments, check=False)
    assert result.returncode != 0
    assert "Error in rule invalid_config" in result.output
    assert "configs/broken.yaml:" in result.output  # file:line
    assert ": model.prior_type: not an allowed value (got 'mixtur')" in result.output
    assert "did you mean 'model.use_tau_classifier'" in result.output
    assert "configs/twin_a.yaml: experiment.name: gives the same run as configs/twin_b.yaml" in result.output
    assert "configs/twin_b.yaml: experiment.name: gives the same run as configs/twin_a.yaml" in result.output
    assert "configs/good1.yaml and configs/sub/good1.yaml both give the run key 'good1'" in result.output
    assert "configs/latin1.yaml" in result.output and "configs/missing.yaml" in result.output
    assert result.ran("invalid_config") == 6
    assert sorted(f.name.split("__")[0] for f in run_folders(workspace)) == ["good2"]
    assert result.ran("train") == 1
    # the comparison and the legend are built over the good runs all the same
    assert result.ran("compare") == 1
    assert "good2__" in (workspace / "results" / "COMPARISON.md").read_text()
    assert (workspace / "results" / "NAMING_LEGEND.md").is_file()


def test_a_diverged_training_fails_alone_and_does_not_hold_up_the_comparison(base, tmp_path):
    """A sweep point whose training diverges fails its own train job; the next invocation compares the others
    (training is deterministic: waiting for that run's retry would leave the sweep without a comparison)."""
    diverging = tiny_config("diverge", model={"learning_rate": 50.0, "grad_clip_norm": None, "max_epochs": 3})
    workspace = make_workspace(tmp_path / "diverge", {"alpha.yaml": ALPHA, "diverge.yaml": diverging})
    import shutil

    (workspace / "results").mkdir()
    shutil.copytree(base[0] / "results" / ".jax_cache", workspace / "results" / ".jax_cache")
    first = snakemake(workspace, check=False)
    assert first.returncode != 0
    assert "training diverged at epoch" in first.output
    assert first.ran("train") == 2 and first.ran("report") == 1 and first.ran("compare") == 0
    (failed,) = [f for f in run_folders(workspace) if f.name.startswith("diverge__")]
    assert json.loads((failed / "train_failed.json").read_text())["status"] == "failed"
    second = snakemake(workspace, check=False)
    assert second.returncode != 0  # the diverging training is tried again, and fails again
    assert second.ran("compare") == 1
    comparison = (workspace / "results" / "COMPARISON.md").read_text()
    ranked, not_ranked = comparison.split("## Runs not ranked")
    assert "alpha" in ranked and failed.name in not_ranked and "failed" in not_ranked


def test_lost_ledger_retrains_nothing(base, tmp_path):
    """results/* copied without its dot-folders (ledger, plans, Snakemake's metadata): the runs are found again."""
    workspace = make_workspace(tmp_path / "copied", {"alpha.yaml": ALPHA, "beta.yaml": BETA})
    import shutil

    (workspace / "results").mkdir()
    for item in (base[0] / "results").iterdir():
        if not item.name.startswith("."):
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, workspace / "results" / item.name)
    before = {f.name: folder_hashes(f) for f in run_folders(workspace)}
    again = snakemake(workspace)
    assert not TRAINING_STAGES & set(again.jobs), again.jobs
    assert {f.name: folder_hashes(f) for f in run_folders(workspace)} == before
    ledger = json.loads((workspace / "results" / ".ledger" / "alpha.json").read_text())
    assert [entry["ts"] for entry in ledger.values()] == [folder_of(workspace, "alpha").name.split("__")[2]]


def _history_without_timings(folder):
    import csv

    with open(folder / "history.csv") as handle:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(handle)]


def _epochs_logged(log):
    return len([line for line in log.read_text().splitlines() if "epoch " in line.lower()]) if log.exists() else 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_to_the_whole_process_group_leaves_the_training_interrupted(tmp_path, sig):
    """`kill -- -PGID`, Ctrl-C or a scheduler's SIGTERM reach the train job's `tee` too: the training still saves its
    epoch and shows as interrupted, not failed on the log pipe its reader closed."""
    workspace = make_workspace(tmp_path / "ws", {"long.yaml": tiny_config(
        "long", model={"hidden_dims": [512, 256], "max_epochs": 5000, "patience": 5000})})
    proc = subprocess.Popen(snakemake_cmd(workspace), cwd=workspace, env=snakemake_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        logs = list((workspace / "results").glob("long__*/logs/train.log"))
        if logs and _epochs_logged(logs[0]) >= 4:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("training never got going")
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    listed = json.loads(subprocess.run([SSVAE, "runs", "--results", str(workspace / "results"), "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    (row,) = listed
    assert row["status"] == "interrupted" and row["epoch"] >= 4, row
    assert "BrokenPipe" not in logs[0].with_name("train_attempts.log").read_text()


def test_killed_training_resumes_and_matches_an_uninterrupted_run(base, tmp_path):
    long = tiny_config("long", model={"hidden_dims": [512, 256], "max_epochs": 25, "patience": 25})
    configs = {"long.yaml": long}
    interrupted = make_workspace(tmp_path / "killed", configs)
    proc = subprocess.Popen(snakemake_cmd(interrupted), cwd=interrupted, env=snakemake_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    log = None
    while time.time() < deadline:
        logs = list((interrupted / "results").glob("long__*/logs/train.log"))
        resumable = logs and (logs[0].parent.parent / "checkpoints" / "resume.msgpack").exists()
        if resumable and _epochs_logged(logs[0]) >= 4:
            log = logs[0]
            break
        time.sleep(0.2)
    assert log is not None, "training never got going"
    # kill -9 of Snakemake alone (a lost login shell): its train job lives on (stopped here, so that it is
    # still there, holding its run folder, however fast the machine)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        # Snakemake's own lock survives a kill -9 of Snakemake itself; --unlock clears it (as the message says)
        blocked = snakemake(interrupted, check=False)
        assert blocked.returncode != 0 and "--unlock" in blocked.output
        snakemake(interrupted, "--unlock")
        # ... but no second training starts on the folder while the first one lives
        busy = snakemake(interrupted, check=False)
        assert busy.returncode != 0
        assert "another train job is still running for this run folder (pid" in busy.output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # now the orphaned training too (a node going down)
    assert not (log.parent.parent / "train.json").exists(), "the orphaned training finished before it was killed"
    # no process holds the run any more: `ssvae runs` says interrupted, with the epoch it resumes from
    listed = json.loads(subprocess.run([SSVAE, "runs", "--results", str(interrupted / "results"), "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    (row,) = listed
    assert row["status"] == "interrupted" and row["epoch"] >= 1, row
    assert f"resumes from epoch {row['epoch']} on the next run" in row["reason"]
    resumed = snakemake(interrupted)
    assert resumed.ran("train") == 1
    assert "resum" in log.read_text().lower()

    straight = make_workspace(tmp_path / "straight", configs)
    snakemake(straight)
    (folder_a,) = run_folders(interrupted)
    (folder_b,) = run_folders(straight)
    assert _history_without_timings(folder_a) == _history_without_timings(folder_b)
    metrics_a = json.loads((folder_a / "metrics.json").read_text())["metrics"]
    metrics_b = json.loads((folder_b / "metrics.json").read_text())["metrics"]
    assert metrics_a["accuracy"] == metrics_b["accuracy"]


def test_html_report_holds_every_figure(workspace):
    snakemake(workspace, "--report", "report.html")
    html = (workspace / "report.html").read_text()
    for folder in run_folders(workspace):
        figures = sorted(p.stem for p in (folder / "figures").glob("*.png"))
        assert figures
        for figure in figures:
            assert f"{folder.name}/figures/{figure}.png" in html, (folder.name, figure)
    assert "comparison_accuracy.png" in html
