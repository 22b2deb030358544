"""TPE proposals: planning a TPE search, Optuna's distributions, and batches asked from files (no Snakemake)."""

from __future__ import annotations

import json
import math

import pytest

from ssvae import config, disk, naming
from ssvae.config import search
from ssvae.pipeline import tpe
from ssvae.results import halving

TPE_CONFIG = """
    experiment: {name: ts}
    data: {dataset: digits}
    model: {max_epochs: 4}
    search:
      method: tpe
      trials: 5
      batch: 2
      seed: 3
      metric: val_objective
      space:
        model.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
        model.label_weight: {uniform: [1, 30]}
        model.latent_dim: {integer: [2, 6]}
        model.hidden_dims: {choice: [[32, 16], [64, 32]]}
"""


def test_tpe_trials_are_planned_before_any_value_is_asked(write_config):
    plans = config.load_plans(write_config(TPE_CONFIG, name="ts.yaml"))
    assert len(plans) == 5 and all(p.ok for p in plans)
    assert [p.name for p in plans[:2]] == ["ts-t000", "ts-t001"]
    trial = plans[3].search
    assert trial["values"] is None and trial["batch"] == 2 and trial["batch_index"] == 1 and trial["trial"] == 3
    # planned at the configured values: one digest, one architecture, a run identity per trial
    assert len({p.search["digest"] for p in plans}) == 1 and len({p.arch for p in plans}) == 1
    assert len({p.identity for p in plans}) == 5
    grown = config.load_plans(write_config(TPE_CONFIG.replace("trials: 5", "trials: 9"), name="ts.yaml"))
    assert [(p.key, p.identity) for p in grown[:5]] == [(p.key, p.identity) for p in plans]
    # another seed, space, batch size or trained config is another search: new digest, new identities
    for old, new in [("seed: 3", "seed: 4"), ("[1, 30]", "[1, 20]"), ("batch: 2", "batch: 3"),
                     ("max_epochs: 4", "max_epochs: 5")]:
        other = config.load_plans(write_config(TPE_CONFIG.replace(old, new), name="ts.yaml"))
        assert other[0].search["digest"] != plans[0].search["digest"] and other[0].identity != plans[0].identity


def test_batch_defaults_to_eight_and_belongs_to_tpe(write_config):
    section = search.settings({"search": {"method": "halving", "proposals": "tpe", "trials": 3, "space": {}}})
    assert section["batch"] == search.DEFAULT_BATCH == 8 and search.uses_tpe(section)
    assert search.settings({"search": {"method": "halving", "trials": 3, "space": {}}})["batch"] is None
    assert search.settings({"search": {"method": "random", "trials": 3, "space": {}}})["batch"] is None


def test_a_range_the_model_rejects_fails_every_tpe_trial(write_config):
    path = write_config("""
        data: {dataset: digits}
        search:
          method: tpe
          trials: 3
          space:
            model.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
            model.dropout_rate: {uniform: [0.1, 1.5]}
    """, name="bad.yaml")
    plans = config.load_plans(path)
    assert len(plans) == 3 and not any(p.ok for p in plans)
    text = str(plans[0].errors[0])
    assert text.startswith(f"{path}:8: search.space.model.dropout_rate.uniform: TPE may ask any value"), text
    assert "model.dropout_rate" in text and "(got 1.5)" in text and "allowed:" in text


def test_the_architecture_keys_are_those_the_code_reads():
    class Recording(dict):
        def __getitem__(self, key):
            read.add(key)
            return super().__getitem__(key)

    defaults = config.defaults()["model"]
    read: set[str] = set()
    for prior in ("standard", "mixture", "vamp", "geometric_mog"):
        for layout in ("centralized", "decentralized"):
            naming.arch_code(Recording({**defaults, "prior_type": prior, "latent_layout": layout,
                                        "dirichlet_alpha": 1.0, "decoder_conditioning": "none",
                                        "num_components": 4}))
    assert read == set(naming.ARCH_KEYS)


def test_each_distribution_maps_to_optuna():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {"model.learning_rate": {"log_uniform": [1e-4, 1e-2]}, "model.kl_weight": {"uniform": [0.5, 2]},
             "model.latent_dim": {"integer": [2, 8]}, "model.activation": {"choice": ["relu", "gelu"]},
             "model.hidden_dims": {"choice": [[32], [64, 32]]}}
    found = tpe.distributions(space)
    assert found["model.learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert found["model.kl_weight"] == FloatDistribution(0.5, 2.0)
    assert found["model.latent_dim"] == IntDistribution(2, 8)
    assert found["model.activation"] == CategoricalDistribution(["relu", "gelu"])
    # lists cannot be Optuna choices: their positions are
    assert found["model.hidden_dims"] == CategoricalDistribution([0, 1])


SPACE = {"model.learning_rate": {"log_uniform": [1e-4, 1e-2]}, "model.latent_dim": {"integer": [2, 6]},
         "model.hidden_dims": {"choice": [[32, 16], [64, 32]]}}


def settings(**changes) -> dict:
    return {"method": "tpe", "seed": 0, "metric": "val_accuracy", "batch": 4, "space": SPACE} | changes


def test_the_same_told_trials_give_the_same_proposals():
    first, rejected = tpe.ask(settings(), 0, [])
    assert not rejected and [e["trial"] for e in first] == [0, 1, 2, 3]
    assert first == tpe.ask(settings(), 0, [])[0]
    for entry in first:
        values = entry["values"]
        assert 1e-4 <= values["model.learning_rate"] <= 1e-2 and values["model.latent_dim"] in range(2, 7)
        assert values["model.hidden_dims"] in ([32, 16], [64, 32])
        assert values["model.learning_rate"] == float(f"{values['model.learning_rate']:.6g}")
    # a batch is seeded by its number too: batch 1 does not start as batch 0 did
    assert [e["values"] for e in tpe.ask(settings(), 1, [])[0]] != [e["values"] for e in first]
    assert [e["values"] for e in tpe.ask(settings(seed=1), 0, [])[0]] != [e["values"] for e in first]
    # told trials steer the next batch; the same told trials, the same proposals
    told = [(e["trial"], e["params"], v) for e, v in zip(first, [0.2, 0.9, 0.1, 0.4])]
    second = tpe.ask(settings(), 1, told)[0]
    assert second == tpe.ask(settings(), 1, list(reversed(told)))[0]
    assert [e["trial"] for e in second] == [4, 5, 6, 7]
    flipped = [(t, p, None if v is None else 1 - v) for t, p, v in told]
    assert tpe.ask(settings(), 1, flipped)[0] != second
    # and the direction follows the metric: val_objective is minimised
    assert tpe.ask(settings(metric="val_objective"), 1, flipped)[0] == second


def test_the_trials_of_one_batch_spread_out_instead_of_repeating_one_point():
    """Asked together, a batch's trials are not told to each other: without the constant liar TPE asks one or two
    neighbourhoods eight times (the median distance from a trial to its nearest neighbour in the batch is 0.01 to
    0.02 decades of learning rate here), with it the batch spreads out (0.06 to 0.14)."""
    space = {"model.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]}}
    spreads = []
    for seed in range(3):
        first = tpe.ask(settings(space=space, batch=8, seed=seed), 0, [])[0]
        # the value peaks at a learning rate of 1e-3
        told = [(e["trial"], e["params"], -abs(math.log10(e["values"]["model.learning_rate"]) + 3)) for e in first]
        second = [math.log10(e["values"]["model.learning_rate"])
                  for e in tpe.ask(settings(space=space, batch=8, seed=seed), 1, told)[0]]
        nearest = sorted(min(abs(a - b) for j, b in enumerate(second) if j != i) for i, a in enumerate(second))
        spreads.append(nearest[len(nearest) // 2])
    assert min(spreads) > 0.04, spreads


def test_a_batch_after_failed_trials_is_proposed_by_tpe_once_one_trial_has_a_value():
    first = tpe.ask(settings(), 0, [])[0]
    random_start = tpe.ask(settings(), 1, [])[0]  # what batch 1 draws when nothing is told with a value

    def told(values):
        return [(e["trial"], e["params"], v) for e, v in zip(first, values)]

    # trials that all failed teach TPE nothing: batch 1 starts at random again
    assert tpe.ask(settings(), 1, told([None] * 4))[0] == random_start
    # two of four diverged: the other two still steer batch 1 (Optuna counts only completed trials toward its
    # random start), and the same told trials give the same proposals
    proposed = tpe.ask(settings(), 1, told([0.2, None, 0.9, None]))[0]
    assert proposed != random_start
    assert proposed == tpe.ask(settings(), 1, told([0.2, None, 0.9, None]))[0]
    assert tpe.ask(settings(), 1, told([0.9, None, 0.2, None]))[0] != proposed
    # one trial with a value is enough
    assert tpe.ask(settings(), 1, told([None, None, 0.5, None]))[0] != random_start


def test_a_rejected_ask_is_told_as_failed_and_asked_again():
    def accept(trial, values):
        return "too fast" if values["model.learning_rate"] > 1e-3 else None

    asked, rejected = tpe.ask(settings(), 0, [], accept)
    assert len(asked) == 4 and all(e["values"]["model.learning_rate"] <= 1e-3 for e in asked)
    assert rejected and all(r["reason"] == "too fast" for r in rejected)
    with pytest.raises(tpe.AskFailed, match="narrow the search's space"):
        tpe.ask(settings(), 0, [], lambda trial, values: "never")


def rung_record(trial: int, value: float | None) -> dict:
    if value is None:
        return {"status": halving.FAILED, "trial": trial, "rung": 0, "reached": 0, "epochs_completed": 1,
                "reason": "diverged"}
    return {"status": halving.TRAINED, "trial": trial, "rung": 0, "epochs": 4, "epochs_completed": 4,
            "horizon_reached": True, "metric": "val_objective", "value": value, "best_epoch": 3,
            "continued_from_epoch": None, "resumed_from_epoch": None}


def ask_from_files(source, results, batch: int, values: dict[int, float | None]) -> dict:
    """Run the ask job for `batch` with rung-0 records of the given values for the trials before it."""
    search_settings, errors, _ = config.tpe_planner(source)
    assert not errors
    name, digest = search_settings["name"], search_settings["digest"]
    records = []
    for trial, value in values.items():
        path = results / f"t{trial}" / "rungs" / "0.json"
        disk.write_json(path, rung_record(trial, value))
        records.append(path)
    batches = [tpe.batch_path(results, name, digest, b) for b in range(batch)]
    out = tpe.batch_path(results, name, digest, batch)
    return tpe.ask_job(results, source, name, digest, batch, batches, records, out, log=lambda line: None)


def test_batches_asked_from_files_are_the_same_anywhere_and_never_asked_twice(write_config, tmp_path):
    source = write_config(TPE_CONFIG, name="ts.yaml")
    runs = {}
    for where in ("a", "b"):
        results = tmp_path / where
        first = ask_from_files(source, results, 0, {})
        assert first["told"] == [] and [e["trial"] for e in first["trials"]] == [0, 1]
        second = ask_from_files(source, results, 1, {0: 3.0, 1: None})
        assert second["told"] == [{"trial": 0, "value": 3.0}, {"trial": 1, "value": None}]
        runs[where] = (first, second)
    assert runs["a"] == runs["b"]
    first, second = runs["a"]
    # every asked trial carries the sections it trains with: the values applied, the rest as planned
    entry = second["trials"][1]
    assert entry["trial"] == 3 and entry["model"]["learning_rate"] == entry["values"]["model.learning_rate"]
    assert entry["model"]["hidden_dims"] == entry["values"]["model.hidden_dims"]
    assert entry["data"]["dataset"] == "digits"
    # asked once: told other values later, the batch is written from the ledger as it was
    again = ask_from_files(source, tmp_path / "a", 1, {0: 1.0, 1: 2.0})
    assert again == second
    assert ask_from_files(source, tmp_path / "c", 0, {}) == first
    assert ask_from_files(source, tmp_path / "c", 1, {0: 1.0, 1: 2.0})["trials"] != second["trials"]


def test_a_changed_config_is_not_asked_for_the_old_search(write_config, tmp_path):
    source = write_config(TPE_CONFIG, name="ts.yaml")
    search_settings, _, _ = config.tpe_planner(source)
    source.write_text(source.read_text().replace("seed: 3", "seed: 5"))
    out = tpe.batch_path(tmp_path, "ts", search_settings["digest"], 0)
    with pytest.raises(tpe.AskFailed, match="changed since it was planned"):
        tpe.ask_job(tmp_path, source, "ts", search_settings["digest"], 0, [], [], out, log=lambda line: None)
    assert not out.exists()


def test_a_trial_trains_with_the_values_asked_for_it(write_config, tmp_path):
    from ssvae.pipeline import planning

    source = write_config(TPE_CONFIG, name="ts.yaml")
    results = tmp_path / "results"
    sources = planning.plan_sources([str(source)], results=results)
    planning.validate_all(sources, results=results)
    documents = planning.derive_all(sources, results=results)
    run = documents["ts.t001"]
    assert run["search"]["values"] is None and run["search"]["batch_index"] == 0
    plan = disk.read_json(results / ".plan" / "ts.t001" / "validated.json")
    with pytest.raises(tpe.NotAsked, match="has not been asked yet"):
        tpe.with_asked_values(plan, run, results)
    asked = ask_from_files(source, results, 0, {})["trials"][1]
    plan_now, run_now = tpe.with_asked_values(plan, run, results)
    assert run_now["search"]["values"] == plan_now["search"]["values"] == asked["values"]
    assert plan_now["effective"]["model"]["latent_dim"] == asked["values"]["model.latent_dim"]
    assert plan_now["effective"]["evaluation"] == plan["effective"]["evaluation"]
    experiment = config.Experiment.from_effective(plan_now["effective"])
    assert math.isclose(experiment.model.learning_rate, asked["values"]["model.learning_rate"])
    # the plan files on disk are left as planned (a finished run never looks stale for it)
    assert json.loads((results / ".plan" / "ts.t001" / "validated.json").read_text()) == plan


def test_a_batch_is_not_asked_without_every_trial_before_it(write_config, tmp_path):
    source = write_config(TPE_CONFIG, name="ts.yaml")
    ask_from_files(source, tmp_path, 0, {})
    with pytest.raises(tpe.AskFailed, match=r"trial\(s\) \[1\] cannot run"):
        ask_from_files(source, tmp_path, 1, {0: 3.0})
