"""Config validation: every error names file, dotted key, value, what is allowed, and the closest key."""

import dataclasses

import pytest
import yaml

from ssvae import config
from ssvae.pipeline import validation


def errors_of(path):
    (plan,) = validation.load_plans(path)
    return plan.errors


def only_error(path):
    errors = errors_of(path)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_empty_config_is_valid_with_every_default_resolved(write_config):
    (plan,) = config.load_plans(write_config("{}\n", name="my_exp.yaml"))
    assert plan.ok
    eff = plan.effective
    assert eff["experiment"]["name"] == "my_exp"
    assert eff["data"]["dataset"] == "mnist5k"
    assert eff["model"]["component_embedding_dim"] == eff["model"]["latent_dim"]
    assert eff["model"]["input_hw"] == [28, 28]
    assert eff["model"]["label_weight"] == 10.0 and eff["model"]["reconstruction_loss"] == "bce"
    assert eff["model"]["recon_weight"] == 1.0 and eff["model"]["kl_weight"] == 1.0
    assert eff["model"]["monitor_metric"] == "auto"
    assert plan.arch == "std_head_plain"


def test_dataclasses_cover_exactly_the_schema_keys():
    props = config.schema()["properties"]
    for section, kind in [("experiment", config.ExperimentInfo), ("data", config.DataConfig),
                          ("model", config.ModelConfig), ("evaluation", config.EvaluationConfig),
                          ("report", config.ReportConfig)]:
        assert {f.name for f in dataclasses.fields(kind)} == set(props[section]["properties"]), section


def test_unknown_key_suggests_the_closest(write_config):
    path = write_config("model:\n  use_tau_classifer: true\n")
    error = only_error(path)
    assert error.file == str(path)
    assert error.key == "model.use_tau_classifer"
    assert error.suggestion == "model.use_tau_classifier"
    assert "did you mean 'model.use_tau_classifier'" in str(error)


def test_bad_enum_names_value_and_allowed(write_config):
    error = only_error(write_config("model:\n  prior_type: mixtur\n"))
    assert error.key == "model.prior_type" and error.value == "mixtur"
    assert '"mixture"' in error.allowed and '"vamp"' in error.allowed
    assert "exp.yaml:2: model.prior_type: not an allowed value (got 'mixtur')" in str(error)


def test_bad_type_and_range(write_config):
    errors = errors_of(write_config("model:\n  learning_rate: fast\n  batch_size: 0\n"))
    by_key = {e.key: e for e in errors}
    assert by_key["model.learning_rate"].message == "wrong type"
    assert by_key["model.batch_size"].allowed == "integer >= 1 and <= 1048576"


def test_every_error_reported_at_once(write_config):
    path = write_config("""
        experiment: {nmae: x}
        data: {dataset: digitz}
        model: {prior_type: vamp, learning_rate: -1}
    """)
    keys = sorted(e.key for e in errors_of(path))
    assert keys == ["data.dataset", "experiment.nmae", "model.learning_rate"]


def test_yaml_syntax_error_names_line(write_config):
    error = only_error(write_config("model:\n  prior_type: [mixture\n"))
    assert "not valid YAML at column" in error.message and error.line == 3
    assert str(error).startswith(f"{error.file}:3: ")


def test_non_mapping_config(write_config):
    assert "must be a mapping" in only_error(write_config("- a\n- b\n")).message


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ("model: {use_tau_classifier: true}", "model.use_tau_classifier", "needs a mixture-based prior"),
        ("model: {prior_type: mixture, num_components: 5, use_tau_classifier: true}", "model.num_components",
         "num_components >= num_classes"),
        ("model: {decoder_conditioning: film}", "model.decoder_conditioning", "needs a mixture or geometric_mog"),
        ("model: {prior_type: vamp, decoder_conditioning: concat}", "model.decoder_conditioning", "not 'vamp'"),
        ("model: {prior_type: vamp, latent_layout: decentralized}", "model.latent_layout", "not 'vamp'"),
        ("model: {prior_type: vamp, use_gumbel_softmax: true}", "model.use_gumbel_softmax", "not 'vamp'"),
        ("model: {prior_type: geometric_mog, geometric_arrangement: grid, num_components: 10}",
         "model.num_components", "perfect-square"),
        ("model: {sigma_min: 0}", "model.sigma_min", "must be positive"),
        ("model: {sigma_min: 0.5, sigma_max: 0.4}", "model.sigma_max", "must exceed sigma_min"),
        ("model: {use_heteroscedastic_decoder: true}", "model.reconstruction_loss", "does not pair with bce"),
        ("model: {prior_type: mixture, dirichlet_alpha: -1}", "model.dirichlet_alpha", "null or positive"),
        ("model: {gumbel_temperature: 0.1, gumbel_temperature_min: 0.5}", "model.gumbel_temperature", ">= gumbel"),
        ("model: {gumbel_temperature_min: 0, gumbel_temperature: 1}", "model.gumbel_temperature_min", "positive"),
        ("model: {top_m_gating: 3}", "model.top_m_gating", "not supported"),
        ("model: {use_contrastive: true}", "model.use_contrastive", "not supported"),
        ("model: {xla_flags: '--foo'}", "model.xla_flags", "not supported"),
        ("experiment: {name: '!!!'}", "experiment.name", "empty after sanitising"),
        ("data: {dataset: mnist}", "data.path", "set data.path"),
        ("data: {dataset: fashion_mnist, path: /nonexistent/x.npz}", "data.path", "no such file"),
        ("data: {dataset: digits, num_samples: 5000}", "data.num_samples", "never drawn twice"),
        ("data: {dataset: digits, num_labeled: 5000}", "data.num_labeled", "remain after the validation split"),
        ("data: {dataset: digits}\nmodel: {input_hw: [28, 28]}", "model.input_hw", "does not match"),
        ("data: {dataset: digits}\nmodel: {num_classes: 5}", "model.num_classes", "has 10 classes"),
        ("model: {prior_type: standard, learnable_pi: true}", "model.learnable_pi", "learnable pi"),
        ("data: {num_labeled: 0}\nmodel: {labeled_batch_size: 16}", "model.labeled_batch_size", "no labeled pool"),
        ("model: {prior_type: mixture, tau_init_counts: 10}", "model.tau_init_counts", "only the tau-classifier"),
    ],
)
def test_semantic_rules(write_config, text, key, fragment):
    error = only_error(write_config(text + "\n"))
    assert error.key == key
    assert fragment in str(error)


def test_valid_combinations_pass(write_config):
    path = write_config("""
        data: {dataset: digits, num_labeled: 50}
        model: {prior_type: mixture, use_tau_classifier: true, decoder_conditioning: concat,
                use_heteroscedastic_decoder: true, reconstruction_loss: mse, dirichlet_alpha: 2.0,
                latent_layout: decentralized, use_gumbel_softmax: true, encoder_type: conv, decoder_type: conv}
    """)
    (plan,) = config.load_plans(path)
    assert plan.ok, plan.errors
    assert plan.arch == "mix10-dir-dec-gbl_tau_ca-het"


def test_earlier_system_layout_is_accepted(write_config):
    path = write_config("""
        experiment: {name: quick, description: legacy, tags: [a]}
        data: {dataset_variant: digits, num_samples: 1000, num_labeled: 50, seed: 1}
        model:
          prior_type: mixture
          num_components: 10
          use_component_aware_decoder: true
          val_split: 0.2
          use_contrastive: false
          top_m_gating: 0
          monitor_metric: loss
    """)
    (plan,) = config.load_plans(path)
    assert plan.ok, [str(e) for e in plan.errors]
    assert plan.effective["data"]["dataset"] == "digits"
    assert plan.effective["data"]["val_split"] == 0.2
    assert plan.effective["model"]["decoder_conditioning"] == "concat"
    assert plan.arch == "mix10_head_ca"
    assert any("dataset_variant" in w for w in plan.warnings)


def test_identity_ignores_description_but_not_model(write_config, tmp_path):
    base = {"data": {"dataset": "digits"}, "model": {"learning_rate": 0.001}}
    identities = []
    for i, change in enumerate([{}, {"experiment": {"description": "new words", "tags": ["x"]}},
                                {"evaluation": {"num_plot_samples": 10}}, {"model": {"learning_rate": 0.002}}]):
        doc = {**base, **change}
        if "model" in change:
            doc["model"] = change["model"]
        path = tmp_path / f"c{i}" / "exp.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(doc))
        identities.append(config.load_plans(path)[0].identity)
    assert identities[0] == identities[1] == identities[2]
    assert identities[3] != identities[0]


def test_sweep_expands_grid_and_seeds_with_readable_names(write_config):
    path = write_config("""
        experiment: {name: sw}
        data: {dataset: digits}
        sweep:
          grid: {model.learning_rate: [0.001, 0.0003], model.prior_type: [standard, mixture]}
          seeds: [0, 1]
    """, name="sweep.yaml")
    plans = config.load_plans(path)
    assert len(plans) == 8 and all(p.ok for p in plans)
    names = [p.name for p in plans]
    assert names[0] == "sw-lr0p001-standard-s0"
    assert len(set(names)) == 8
    assert {p.group for p in plans} == {"sw-lr0p001-standard", "sw-lr0p001-mixture", "sw-lr0p0003-standard",
                                        "sw-lr0p0003-mixture"}
    assert [p.key for p in plans][:2] == ["sweep.lr0p001-standard-s0", "sweep.lr0p001-standard-s1"]
    assert config.plan_keys(path) == [p.key for p in plans]


def test_invalid_sweep_point_fails_alone(write_config):
    path = write_config("""
        data: {dataset: digits}
        model: {use_tau_classifier: true}
        sweep: {grid: {model.prior_type: [mixture, standard]}}
    """)
    plans = config.load_plans(path)
    assert [p.ok for p in plans] == [True, False]
    assert plans[1].errors[0].key == "model.use_tau_classifier"


def test_experiment_from_effective_is_typed_and_frozen(write_config):
    experiment = config.load_experiment(write_config("model: {hidden_dims: [64, 32]}\n"))
    assert experiment.model.hidden_dims == (64, 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        experiment.model.latent_dim = 3


@pytest.mark.parametrize("prior", ["mixture", "geometric_mog"])
def test_consistency_without_shifts_is_rejected_where_the_classifier_answers_the_same_twice(write_config, prior):
    """A tau-classifier on a mixture or geometric prior reads r(x) from the encoder's logits: without shifts its two
    answers are equal and the term would be 0."""
    text = f"data:\n  dataset: digits\nmodel:\n  prior_type: {prior}\n  use_tau_classifier: true\n"
    errors = errors_of(write_config(text + "  consistency_weight: 1.0\n"))
    assert [(e.key, e.value) for e in errors] == [("model.consistency_weight", 1.0)]
    assert "augment_shift" in errors[0].allowed and prior in errors[0].message
    assert errors_of(write_config(text.replace("digits\n", "digits\n  augment_shift: 1\n")
                                  + "  consistency_weight: 1.0\n")) == []


@pytest.mark.parametrize("model", ["{consistency_weight: 1.0}",  # a head on the sampled z
                                   "{prior_type: vamp, use_tau_classifier: true, consistency_weight: 1.0}"])
def test_consistency_without_shifts_is_accepted_where_the_classifier_reads_the_sampled_z(write_config, model):
    assert errors_of(write_config(f"data: {{dataset: digits}}\nmodel: {model}\n")) == []


def test_a_plan_written_before_the_loss_options_existed_reads_them_as_off(write_config):
    """A plan without entropy_weight and consistency_weight (written before they existed) is the run of a config
    that turns both off: same model, same identity."""
    (plan,) = config.load_plans(write_config("data:\n  dataset: digits\nmodel:\n  entropy_weight: 0\n"
                                             "  consistency_weight: 0\n"))
    old = {**plan.effective, "model": {k: v for k, v in plan.effective["model"].items()
                                       if k not in ("entropy_weight", "consistency_weight")}}
    model = config.Experiment.from_effective(old).model
    assert (model.entropy_weight, model.consistency_weight) == (0.0, 0.0)
    assert config.run_identity(old) == plan.identity
