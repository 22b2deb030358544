"""A halving search through the SLURM profile: rungs are SLURM train jobs, promotion runs in the submitting
Snakemake, and the trials end as the same search run locally."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from workflow_helpers import make_workspace, run_folders, snakemake_cmd, snakemake_env, tiny_config

from .test_slurm import SHARED, TIMEOUT, history, slurm_cmd, submitted_jobs

pytestmark = pytest.mark.cluster

SEARCH = tiny_config("hs", model={"max_epochs": 3, "patience": 10}, search={
    "method": "halving", "trials": 3, "seed": 0, "metric": "val_accuracy",
    "space": {"model.learning_rate": {"log_uniform": [1e-3, 1e-2]}, "model.latent_dim": {"choice": [2, 4]}},
    "halving": {"min_epochs": 1, "eta": 3}})
CONFIGS = {"hs.yaml": SEARCH}
NO_COMPARE = ["--config", "compare=false"]


def test_a_halving_search_runs_on_slurm_as_it_runs_locally(slurm_cluster, tmp_path):
    on_slurm = make_workspace(tmp_path / "slurm", CONFIGS)
    local = make_workspace(tmp_path / "local", CONFIGS)
    env = snakemake_env()
    reference = subprocess.Popen(["timeout", str(TIMEOUT), *snakemake_cmd(local, *SHARED, *NO_COMPARE)], cwd=local,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cluster = subprocess.run(slurm_cmd(*NO_COMPARE), cwd=on_slurm, env=env, capture_output=True, text=True)
    reference_out = reference.communicate()[0]
    output = cluster.stdout + cluster.stderr
    assert reference.returncode == 0, reference_out[-5000:]
    assert cluster.returncode == 0, output[-8000:]

    where = [w for w, _ in submitted_jobs(output)]
    assert where.count("rule_train_rung") == 2 * 3, where  # every trial's two rungs (a stopped one: no training)
    assert where.count("rule_train") == 3, where
    assert "rule_promote" not in where  # promotion runs on the submitting machine
    assert "localrule promote:" in output or "rule promote:" in output

    decided = json.loads((on_slurm / "results/.search/hs/rung0.json").read_text())
    assert decided == json.loads((local / "results/.search/hs/rung0.json").read_text())
    slurm_folders = {f.name.split("__")[0]: f for f in run_folders(on_slurm)}
    local_folders = {f.name.split("__")[0]: f for f in run_folders(local)}
    assert sorted(slurm_folders) == sorted(local_folders) == ["hs-t000", "hs-t001", "hs-t002"]
    for name, folder in slurm_folders.items():
        assert history(folder) == history(local_folders[name]), name
        trial = yaml.safe_load((folder / "config.yaml").read_text())["search"]
        assert trial["rung"] == (1 if trial["trial"] in decided["promoted"] else 0)

    again = subprocess.run(slurm_cmd(*NO_COMPARE), cwd=on_slurm, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
