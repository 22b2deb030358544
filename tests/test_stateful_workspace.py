"""Random sequences of what a researcher does to one workspace between invocations, each followed by a real
`snakemake` on tiny configs, checked against an oracle of what must happen.

Actions: add a config, edit its model (a new run), its evaluation or its description, rename or delete its file,
add or remove a sweep seed, delete a run's metrics.json, REPORT.md or whole folder, corrupt its summary.json, and
stop a training (what a killed `--forcerun train` leaves: its outputs gone, its resume checkpoint kept). After
each action the oracle predicts, per run, which stages run; the test checks that `ssvae plan --json` said so
beforehand, that exactly those stages ran, which run folders exist, each one's status in `ssvae runs`, and that
every folder in which no stage ran is byte-identical.

CI tries a few sequences (derandomised, so every CI run tries the same ones); `SSVAE_STATEFUL_EXAMPLES=50` tries
fifty random ones (and `SSVAE_STATEFUL_STEPS` sets their length).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from workflow_helpers import SSVAE, folder_hashes, make_workspace, run_folders, snakemake, tiny_config

pytestmark = pytest.mark.workflow

EXAMPLES = int(os.environ.get("SSVAE_STATEFUL_EXAMPLES", "2"))
STEPS = int(os.environ.get("SSVAE_STATEFUL_STEPS", "4"))
NAMES = ("a", "m", "z")  # file stems that sort before, between and after one another
RATES = (0.001, 0.002)
STAGES = ("train", "evaluate", "report")
SWEEP = "s"


def stages_ran(output: str) -> dict[str, set[str]]:
    """stage -> the experiment names it ran for, from Snakemake's `rule X:` and `wildcards:` lines."""
    ran = {stage: set() for stage in STAGES}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        match = re.fullmatch(r"\s*(?:local)?rule (\w+):", line)
        if match and match.group(1) in ran:
            for follow in lines[i + 1:i + 12]:
                if follow.strip().startswith("wildcards:"):
                    ran[match.group(1)].add(follow.split("name=")[1].split(",")[0])
                    break
    return ran


class Workspace(RuleBasedStateMachine):
    """The model: the configs (name -> file stem, learning rate, evaluation, description), the sweep's seeds, the
    identities trained so far (name, rate) and what was done to their folders."""

    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="ssvae-stateful-"))
        self.ws = make_workspace(self.root / "ws", {})
        self.configs: dict[str, dict] = {}
        self.seeds: list[int] = []
        self.trained: dict[tuple, str] = {}  # (name, rate) -> run id
        self.broken: dict[str, str] = {}  # run id -> what was done to it: metrics, report, folder, summary, killed
        self.pending: dict[str, str] = {}  # experiment name -> first stage the next invocation must run

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    # the configs ------------------------------------------------------------------------------------------

    def write(self, name: str) -> None:
        spec = self.configs[name]
        text = tiny_config(name, model={"learning_rate": spec["rate"]},
                           experiment={"description": spec["description"]},
                           evaluation={"num_plot_samples": spec["samples"]})
        (self.ws / "configs" / f"{spec['file']}.yaml").write_text(text)

    def write_sweep(self) -> None:
        path = self.ws / "configs" / f"{SWEEP}.yaml"
        if self.seeds:
            path.write_text(tiny_config(SWEEP, sweep={"seeds": self.seeds}))
        else:
            path.unlink(missing_ok=True)

    def plans(self) -> dict[str, tuple]:
        """Experiment name -> identity, of every run the configs ask for now."""
        plans = {name: (name, spec["rate"]) for name, spec in self.configs.items()}
        plans.update({f"{SWEEP}-s{seed}": (f"{SWEEP}-s{seed}", None) for seed in self.seeds})
        return plans

    def expect(self, name: str, stage: str) -> None:
        """The next invocation runs `stage` (and the stages after it) for `name`: the earliest one wins."""
        current = self.pending.get(name)
        if current is None or STAGES.index(stage) < STAGES.index(current):
            self.pending[name] = stage

    # the invocation and its oracle --------------------------------------------------------------------------

    def invoke(self) -> None:
        plans = self.plans()
        first_stage = {"folder": "train", "killed": "train", "metrics": "evaluate", "report": "report"}
        for name, identity in plans.items():
            run_id = self.trained.get(identity)
            if run_id is None:
                self.expect(name, "train")
            elif self.broken.get(run_id) in first_stage:
                self.expect(name, first_stage[self.broken[run_id]])
        expected = {name: stage for name, stage in self.pending.items() if name in plans}
        preview = json.loads(subprocess.run([SSVAE, "plan", "--json"], cwd=self.ws, capture_output=True, text=True,
                                            check=True).stdout)
        said = {row["name"]: (row["action"], row["stage"]) for row in preview}
        assert set(said) == set(plans), (said, plans)
        for name in plans:
            if name not in expected:
                assert said[name] == ("done", None), (name, said[name])
            elif plans[name] not in self.trained or self.broken.get(self.trained[plans[name]]) == "folder":
                assert said[name] == ("new", "train"), (name, said[name])
            else:
                assert said[name] == ("stale", expected[name]), (name, said[name], expected[name])

        touched = {self.trained.get(plans[name]) for name in expected}
        before = {f.name: folder_hashes(f) for f in run_folders(self.ws)}
        result = snakemake(self.ws, config={"jax_cache": str(self.root.parent / "ssvae-stateful-jax-cache")})
        ran = stages_ran(result.output)
        for i, stage in enumerate(STAGES):
            want = {name for name, first in expected.items() if STAGES.index(first) <= i}
            assert ran[stage] == want, (stage, ran[stage], want, result.output[-3000:])
        for folder, hashes in before.items():  # where no stage ran, nothing changed
            if folder not in touched:
                assert folder_hashes(self.ws / "results" / folder) == hashes, f"{folder} changed"

        for name in expected:
            identity = plans[name]
            if identity not in self.trained:
                folders = {f.name for f in run_folders(self.ws) if f.name.startswith(f"{name}__")}
                (self.trained[identity],) = folders - set(self.trained.values())
            self.broken.pop(self.trained[identity], None)
        self.pending.clear()

    @invariant()
    def folders_and_statuses_are_true(self):
        if not self.trained:
            return
        expected = {run_id for run_id in self.trained.values() if self.broken.get(run_id) != "folder"}
        assert {f.name for f in run_folders(self.ws)} == expected
        rows = json.loads(subprocess.run([SSVAE, "runs", "--results", str(self.ws / "results"), "--all", "--json"],
                                         capture_output=True, text=True, check=True).stdout)
        status = {r["run_id"]: r["status"] for r in rows}
        truth = {"metrics": "stale", "report": "stale", "summary": "unreadable", "killed": "interrupted"}
        for run_id in expected:
            assert status[run_id] == truth.get(self.broken.get(run_id), "success"), (run_id, status[run_id])

    # what a researcher does -----------------------------------------------------------------------------------

    @initialize(name=st.sampled_from(NAMES), rate=st.sampled_from(RATES))
    def first_config(self, name, rate):
        self.configs[name] = {"file": name, "rate": rate, "samples": 200, "description": "first"}
        self.write(name)
        self.invoke()

    @rule(name=st.sampled_from(NAMES), rate=st.sampled_from(RATES))
    def add_config(self, name, rate):
        if name in self.configs:
            return
        stems = {spec["file"] for spec in self.configs.values()}
        if name in stems:
            return
        self.configs[name] = {"file": name, "rate": rate, "samples": 200, "description": "added"}
        self.write(name)
        self.invoke()

    @precondition(lambda self: self.configs)
    @rule(data=st.data())
    def edit_model(self, data):
        name = data.draw(st.sampled_from(sorted(self.configs)))
        self.configs[name]["rate"] = RATES[1 - RATES.index(self.configs[name]["rate"])]
        self.write(name)
        self.invoke()

    @precondition(lambda self: self.configs)
    @rule(data=st.data())
    def edit_evaluation(self, data):
        name = data.draw(st.sampled_from(sorted(self.configs)))
        self.configs[name]["samples"] = 300 - self.configs[name]["samples"]
        self.write(name)
        if (name, self.configs[name]["rate"]) in self.trained:
            self.expect(name, "evaluate")
        self.invoke()

    @precondition(lambda self: self.configs)
    @rule(data=st.data())
    def edit_description(self, data):
        name = data.draw(st.sampled_from(sorted(self.configs)))
        self.configs[name]["description"] += " and more"
        self.write(name)
        if (name, self.configs[name]["rate"]) in self.trained:
            self.expect(name, "report")
        self.invoke()

    @precondition(lambda self: self.configs)
    @rule(data=st.data(), stem=st.sampled_from(("b", "n", "y")))
    def rename_config(self, data, stem):
        if stem in {spec["file"] for spec in self.configs.values()}:
            return
        name = data.draw(st.sampled_from(sorted(self.configs)))
        old = self.ws / "configs" / f"{self.configs[name]['file']}.yaml"
        old.rename(self.ws / "configs" / f"{stem}.yaml")
        self.configs[name]["file"] = stem
        self.invoke()

    @precondition(lambda self: len(self.configs) > 1)
    @rule(data=st.data())
    def delete_config(self, data):
        name = data.draw(st.sampled_from(sorted(self.configs)))
        (self.ws / "configs" / f"{self.configs.pop(name)['file']}.yaml").unlink()
        self.invoke()

    @rule(seed=st.integers(1, 3))
    def add_seed(self, seed):
        if seed in self.seeds:
            return
        self.seeds = sorted([*self.seeds, seed])
        self.write_sweep()
        self.invoke()

    @precondition(lambda self: self.seeds)
    @rule(data=st.data())
    def remove_seed(self, data):
        self.seeds.remove(data.draw(st.sampled_from(self.seeds)))
        self.write_sweep()
        self.invoke()

    def _current_run(self, data) -> tuple[str, str] | None:
        current = {name: self.trained.get(identity) for name, identity in self.plans().items()}
        current = {name: run_id for name, run_id in current.items() if run_id and run_id not in self.broken}
        if not current:
            return None
        name = data.draw(st.sampled_from(sorted(current)))
        return name, current[name]

    @precondition(lambda self: self.trained)
    @rule(data=st.data(), damage=st.sampled_from(("metrics", "report", "folder", "summary", "killed")))
    def damage_a_run(self, data, damage):
        picked = self._current_run(data)
        if picked is None:
            return
        name, run_id = picked
        folder = self.ws / "results" / run_id
        if damage == "metrics":
            (folder / "metrics.json").unlink()
        elif damage == "report":
            (folder / "REPORT.md").unlink()
        elif damage == "folder":
            shutil.rmtree(folder)
        elif damage == "summary":
            (folder / "summary.json").write_bytes(b'{"status": "succ')  # present, so nothing remakes it
        else:  # a killed --forcerun train: Snakemake removed its outputs, the resume checkpoint stays
            for path in ("train.json", "history.csv", "checkpoints/best.msgpack"):
                (folder / path).unlink()
        self.broken[run_id] = damage
        self.folders_and_statuses_are_true()  # the damage is shown truly before anything runs
        self.invoke()


Workspace.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
    derandomize="SSVAE_STATEFUL_EXAMPLES" not in os.environ, suppress_health_check=list(HealthCheck))
test_workspace_sequences = Workspace.TestCase
