"""Searches: the `search:` section's checks, the trials it proposes, and the halving schedule (pure Python)."""

from __future__ import annotations

import pytest

from ssvae import config
from ssvae.config import search
from ssvae.results import halving

ISSUE_EXAMPLE = """
    experiment: {name: hs}
    data: {dataset: digits}
    model: {max_epochs: 50}
    search:
      method: halving          # random | tpe | halving
      proposals: random        # with halving: random | tpe
      trials: 27
      seed: 0
      metric: val_accuracy     # maximised; val_objective is minimised
      space:
        model.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
        model.label_weight: {uniform: [1, 30]}
        model.latent_dim: {choice: [8, 16, 32]}
      halving: {min_epochs: 5, eta: 3}
"""


def texts(plans) -> list[str]:
    return [str(e) for plan in plans for e in plan.errors]


def test_the_documented_example_plans_one_run_per_trial(write_config):
    path = write_config(ISSUE_EXAMPLE, name="hs.yaml")
    plans = config.load_plans(path)
    assert len(plans) == 27 and all(p.ok for p in plans)
    assert [p.name for p in plans[:2]] == ["hs-t000", "hs-t001"]
    assert config.plan_keys(path) == [p.key for p in plans] and plans[0].key == "hs.t000"
    trial = plans[5]
    assert trial.search["trial"] == 5 and trial.search["method"] == "halving" and trial.search["name"] == "hs"
    assert trial.search["halving"] == {"min_epochs": 5, "eta": 3}
    values = trial.search["values"]
    assert trial.effective["model"]["learning_rate"] == values["model.learning_rate"]
    assert 1e-4 <= values["model.learning_rate"] <= 1e-2 and 1 <= values["model.label_weight"] <= 30
    assert values["model.latent_dim"] in (8, 16, 32)
    # drawn values differ between trials, and the run identities with them
    assert len({p.identity for p in plans}) == 27


def test_a_trial_keeps_its_values_when_the_search_grows(write_config):
    small = config.load_plans(write_config(ISSUE_EXAMPLE, name="hs.yaml"))
    grown = config.load_plans(write_config(ISSUE_EXAMPLE.replace("trials: 27", "trials: 40"), name="hs.yaml"))
    assert len(grown) == 40
    assert [(p.key, p.identity) for p in grown[:27]] == [(p.key, p.identity) for p in small]
    other_seed = config.load_plans(write_config(ISSUE_EXAMPLE.replace("seed: 0", "seed: 1"), name="hs.yaml"))
    assert other_seed[0].identity != small[0].identity


def test_trial_values_follow_each_distribution():
    space = {"model.learning_rate": {"log_uniform": [1e-4, 1e-2]}, "model.kl_weight": {"uniform": [0.5, 2]},
             "model.latent_dim": {"integer": [2, 4]}, "model.prior_type": {"choice": ["standard", "mixture"]}}
    drawn = [search.trial_values({"seed": 3, "space": space}, t) for t in range(400)]
    rates = [d["model.learning_rate"] for d in drawn]
    assert min(rates) >= 1e-4 and max(rates) <= 1e-2
    # log-uniform: about half the draws below the geometric middle 1e-3
    assert 150 < sum(r < 1e-3 for r in rates) < 250
    assert {d["model.latent_dim"] for d in drawn} == {2, 3, 4}
    assert all(isinstance(d["model.latent_dim"], int) for d in drawn)
    assert {d["model.prior_type"] for d in drawn} == {"standard", "mixture"}
    assert all(0.5 <= d["model.kl_weight"] <= 2 for d in drawn)
    assert drawn[7] == search.trial_values({"seed": 3, "space": space}, 7)


@pytest.mark.parametrize("section, key, words", [
    ("{method: tpe, trials: 4, space: {model.prior_type: {choice: [standard, mixture]}}}",
     "search.space.model.prior_type", "one search per architecture"),
    ("{method: halving, proposals: tpe, trials: 4, space: {model.use_tau_classifier: {choice: [true, false]}}}",
     "search.space.model.use_tau_classifier", "use proposals: random"),
    ("{method: tpe, trials: 4, space: {evaluation.num_plot_samples: {integer: [100, 200]}}}",
     "search.space.evaluation.num_plot_samples", "data and model keys"),
    ("{method: tpe, trials: 4, batch: 0, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.batch", "an integer from 1 to 1,000"),
    ("{trials: 4, batch: 4, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.batch", "with method 'random' leave it out"),
    ("{method: halving, trials: 4, batch: 4, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.batch", "with random proposals leave it out"),
    ("{method: grid, trials: 4, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.method", "allowed: random, tpe, halving"),
    ("{trials: 4, space: {model.learning_rate: {log_uniform: [0, 0.01]}}}",
     "search.space.model.learning_rate.log_uniform", "above 0"),
    ("{trials: 4, space: {model.learning_rate: {uniform: [0.01, 0.001]}}}",
     "search.space.model.learning_rate.uniform", "low must be below high"),
    ("{trials: 4, space: {model.latent_dim: {integer: [2.0, 8]}}}",
     "search.space.model.latent_dim.integer", "whole numbers"),
    ("{trials: 4, space: {model.learning_rate: {loguniform: [0.001, 0.01]}}}",
     "search.space.model.learning_rate.loguniform", "did you mean 'log_uniform'"),
    ("{trials: 4, space: {learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.space.learning_rate", "dotted config key"),
    ("{trials: 4, space: {model.max_epochs: {integer: [2, 8]}}}", "search.space.model.max_epochs", "cannot draw"),
    ("{space: {model.learning_rate: {uniform: [0.001, 0.01]}}}", "search.trials", "required"),
    ("{trials: 4, metric: test_accuracy, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.metric", "val_accuracy (maximised)"),
    ("{trials: 4, halvng: {eta: 3}, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.halvng", "did you mean 'halving'"),
    ("{trials: 4, halving: {eta: 3}, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.halving", "belong to method halving"),
    ("{method: halving, trials: 4, halving: {eta: 1}, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}",
     "search.halving.eta", "integer >= 2"),
])
def test_a_bad_search_section_is_one_readable_error(write_config, section, key, words):
    path = write_config(f"data: {{dataset: digits}}\nsearch: {section}\n", name="bad.yaml")
    plans = config.load_plans(path)
    assert len(plans) == 1 and not plans[0].ok
    errors = [e for e in plans[0].errors if e.key == key]
    assert errors, texts(plans)
    text = str(errors[0])
    # file (with the line where the key is written), key, value, what is allowed
    assert text.startswith(f"{path}:2: {key}:" if key != "search.trials" else f"{path}: {key}:"), text
    assert words in text and "(got " in text, text
    assert config.plan_keys(path) == ["bad"]


def test_a_halving_search_needs_two_rungs_below_max_epochs(write_config):
    path = write_config("""
        data: {dataset: digits}
        model: {max_epochs: 10}
        search:
          method: halving
          trials: 3
          space: {model.learning_rate: {uniform: [0.001, 0.01]}}
          halving: {min_epochs: 4, eta: 3}
    """)
    plans = config.load_plans(path)
    assert all(not p.ok for p in plans)
    text = str(plans[0].errors[0])
    assert "search.halving.min_epochs" in text and "min_epochs x eta (4 x 3)" in text and "from 1 to 3" in text


def test_a_config_holds_a_sweep_or_a_search(write_config):
    path = write_config("""
        sweep: {seeds: [1, 2]}
        search: {trials: 2, space: {model.learning_rate: {uniform: [0.001, 0.01]}}}
    """)
    assert "a sweep (a grid) or a search, not both" in texts(config.load_plans(path))[0]


def test_a_drawn_value_the_model_rejects_fails_its_trial_alone(write_config):
    plans = config.load_plans(write_config("""
        data: {dataset: digits}
        search:
          trials: 12
          space: {model.prior_type: {choice: [standard, mixture]}}
        model: {use_tau_classifier: true, num_components: 10}
    """))
    assert {p.ok for p in plans} == {True, False}
    bad = next(p for p in plans if not p.ok)
    assert bad.errors[0].key == "model.use_tau_classifier" and bad.search["trial"] == int(bad.key.split(".t")[-1])


def test_rungs_go_up_by_eta_from_min_epochs_to_max_epochs():
    assert halving.rung_epochs(5, 3, 50) == [5, 15, 50]
    assert halving.rung_epochs(5, 3, 45) == [5, 15, 45]
    assert halving.rung_epochs(1, 2, 8) == [1, 2, 4, 8]
    assert halving.rung_epochs(2, 3, 6) == [2, 6]
    assert halving.rung_epochs(3, 3, 8) == [8]
    assert halving.search_rungs({"method": "random"}, 20) == [20]


def test_each_rung_promotes_the_best_third_by_the_metric():
    values = {t: float(t) for t in range(9)}
    promoted = halving.promote(values, 3, "max")
    assert sorted(t for t, up in promoted.items() if up) == [6, 7, 8]
    promoted = halving.promote(values, 3, "min")
    assert sorted(t for t, up in promoted.items() if up) == [0, 1, 2]
    assert halving.quota(2, 3) == 1 and halving.quota(0, 3) == 0 and halving.quota(27, 3) == 9


def test_a_diverged_or_early_stopped_trial_is_never_promoted():
    values = {0: None, 1: 0.5, 2: 0.9, 3: float("nan"), 4: 0.7, 5: 0.1}
    assert halving.ranking(values, "max")[:3] == [2, 4, 1]
    promoted = halving.promote(values, 3, "max", finished={2})
    assert [t for t, up in promoted.items() if up] == [4]


def test_promotions_are_kept_when_trials_are_added():
    first = halving.promote({t: float(t) for t in range(6)}, 3, "max")
    assert sorted(t for t, up in first.items() if up) == [4, 5]
    # three new trials, one better than everyone: it is promoted; 4 and 5 stay promoted, nobody is revoked
    grown = {**{t: float(t) for t in range(6)}, 6: 10.0, 7: 0.5, 8: 3.5}
    again = halving.promote(grown, 3, "max", decided=first)
    assert sorted(t for t, up in again.items() if up) == [4, 5, 6]
    # and a stopped trial stays stopped even where it would now rank in the quota
    assert halving.promote({0: 9.0, 1: 1.0, 2: 2.0}, 3, "max", decided={0: False, 1: False, 2: True}) == {
        0: False, 1: False, 2: True}


def test_thousands_of_trials_plan(write_config):
    path = write_config(ISSUE_EXAMPLE.replace("trials: 27", "trials: 2000"), name="hs.yaml")
    plans = config.load_plans(path)
    assert len(plans) == 2000 and all(p.ok for p in plans)
    assert len(set(config.plan_keys(path))) == 2000


@pytest.mark.parametrize("method, rungs", [("random", [9]), ("halving", [1, 3, 9])])
def test_a_trial_run_names_its_search_and_rungs(tmp_path, method, rungs):
    from ssvae.pipeline import planning

    path = tmp_path / "s.yaml"
    halving_section = "  halving: {min_epochs: 1, eta: 3}\n" if method == "halving" else ""
    path.write_text("experiment: {name: s}\ndata: {dataset: digits}\nmodel: {max_epochs: 9}\n"
                    f"search:\n  method: {method}\n  trials: 2\n  metric: val_objective\n"
                    "  space: {model.learning_rate: {log_uniform: [0.001, 0.01]}}\n" + halving_section)
    results = tmp_path / "results"
    sources = planning.plan_sources([str(path)], results=results)
    assert list(sources) == ["s.t000", "s.t001"]
    planning.validate_all(sources, results=results)
    documents = planning.derive_all(sources, results=results)
    trial = documents["s.t001"]["search"]
    assert documents["s.t001"]["run_id"].startswith("s-t001__")
    assert trial["name"] == "s" and trial["trial"] == 1 and trial["method"] == method
    assert trial["rungs"] == rungs and (trial["column"], trial["mode"]) == ("val_objective", "min")
