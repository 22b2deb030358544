"""Validation of model options that could not act: rejected with the reason, or resolved so that they do;
the warning for mixture components nothing can tell apart reaches the plan (and so summary.json)."""

import pytest

from ssvae import config


def plan_of(write_config, text: str) -> config.Plan:
    (plan,) = config.load_plans(write_config(text + "\n"))
    return plan


def test_a_dirichlet_alpha_alone_stays_valid_keeps_its_name_and_learns_pi(write_config):
    plan = plan_of(write_config, "model: {prior_type: mixture, dirichlet_alpha: 5}")
    assert plan.ok, plan.errors
    assert plan.arch == "mix10-dir_head_plain"
    assert plan.effective["model"]["learnable_pi"] is True  # the effective config shows π learned


def test_learnable_pi_defaults_to_fixed_without_alpha(write_config):
    for prior in ("mixture", "geometric_mog", "vamp", "standard"):
        plan = plan_of(write_config, f"model: {{prior_type: {prior}}}")
        assert plan.ok and plan.effective["model"]["learnable_pi"] is False


def test_explicit_learnable_pi_true_with_alpha_is_kept(write_config):
    plan = plan_of(write_config, "model: {prior_type: mixture, dirichlet_alpha: 2, learnable_pi: true}")
    assert plan.ok and plan.effective["model"]["learnable_pi"] is True


@pytest.mark.parametrize("text,key,fragment", [
    ("model: {prior_type: mixture, dirichlet_alpha: 5, learnable_pi: false}", "model.learnable_pi",
     "the penalty is a constant"),
    ("model: {prior_type: mixture, use_gumbel_softmax: true}", "model.use_gumbel_softmax",
     "acts only through decoder conditioning"),
    ("model: {prior_type: geometric_mog, use_gumbel_softmax: true}", "model.use_gumbel_softmax",
     "acts only through decoder conditioning"),
    ("model: {prior_type: mixture, dirichlet_alpha: 2, c_regularizer: logit_mog}", "model.dirichlet_alpha",
     "leaves out"),
    ("model: {prior_type: mixture, learnable_pi: true, kl_c_weight: 0}", "model.learnable_pi",
     "kl_c_weight 0"),
    ("model: {prior_type: vamp, c_regularizer: both}", "model.c_regularizer", "no component logits of its own"),
])
def test_options_that_could_not_act_are_rejected_with_the_reason(write_config, text, key, fragment):
    plan = plan_of(write_config, text)
    assert [e.key for e in plan.errors] == [key]
    assert fragment in str(plan.errors[0])


@pytest.mark.parametrize("text", [
    "model: {prior_type: mixture, use_gumbel_softmax: true, decoder_conditioning: film}",
    "model: {prior_type: mixture, use_gumbel_softmax: true, latent_layout: decentralized}",
    "model: {prior_type: geometric_mog, use_gumbel_softmax: true, decoder_conditioning: concat}",
])
def test_gumbel_routing_that_reaches_the_decoder_is_valid(write_config, text):
    assert plan_of(write_config, text).ok


def interchangeable(plan) -> list[str]:
    return [w for w in plan.warnings if "cannot specialise" in w]


@pytest.mark.parametrize("text", [
    "model: {prior_type: mixture}",
    "model: {prior_type: mixture, num_components: 10, use_tau_classifier: true, tau_init_counts: 0}",
])
def test_interchangeable_mixture_components_are_warned_about(write_config, text):
    plan = plan_of(write_config, text)
    assert plan.ok
    (warning,) = interchangeable(plan)
    assert "p(z|c) = N(0, I)" in warning and "decoder_conditioning" in warning


@pytest.mark.parametrize("text", [
    "model: {prior_type: mixture, decoder_conditioning: concat}",
    "model: {prior_type: mixture, latent_layout: decentralized}",
    "model: {prior_type: mixture, num_components: 10, use_tau_classifier: true}",
    "model: {prior_type: geometric_mog}",
    "model: {prior_type: vamp}",
    "model: {prior_type: standard}",
])
def test_components_something_can_tell_apart_get_no_warning(write_config, text):
    assert interchangeable(plan_of(write_config, text)) == []


def test_defaults_that_depend_on_other_keys_resolve(write_config):
    eff = plan_of(write_config, "model: {prior_type: mixture, use_tau_classifier: true}").effective
    assert eff["model"]["tau_init_counts"] == 1000.0 and eff["model"]["labeled_batch_size"] == 32
    assert eff["data"]["augment_shift"] == 2  # 28x28 mnist5k
    eff = plan_of(write_config, "data: {dataset: digits, num_labeled: 0}\nmodel: {prior_type: mixture}").effective
    assert eff["model"]["tau_init_counts"] == 0.0 and eff["model"]["labeled_batch_size"] == 0
    assert eff["data"]["augment_shift"] == 0  # 8x8 digits
    explicit = "data: {augment_shift: 0}\nmodel: {use_tau_classifier: true, prior_type: vamp, tau_init_counts: 0, " \
               "labeled_batch_size: 0}"
    eff = plan_of(write_config, explicit).effective
    model = eff["model"]
    assert (eff["data"]["augment_shift"], model["tau_init_counts"], model["labeled_batch_size"]) == (0, 0, 0)


@pytest.mark.parametrize(("text", "shift", "consistency"), [
    ("data: {dataset: mnist5k}", 2, 10.0),                                   # shifted by default: on
    ("data: {dataset: digits}", 0, 10.0),                                    # a head reads a sample of z: on
    ("data: {dataset: digits}\nmodel: {prior_type: vamp, use_tau_classifier: true}", 0, 0.0),  # measured worse
    ("data: {dataset: digits}\nmodel: {prior_type: mixture, use_tau_classifier: true}", 0, 0.0),  # r(x): off
    ("data: {dataset: digits}\nmodel: {prior_type: geometric_mog, use_tau_classifier: true}", 0, 0.0),
    ("data: {dataset: digits, augment_shift: 1}\nmodel: {prior_type: mixture, use_tau_classifier: true}", 1, 10.0),
    ("data: {dataset: mnist5k, augment_shift: 0}\nmodel: {prior_type: mixture, use_tau_classifier: true}", 0, 0.0),
    ("data: {dataset: mnist5k}\nmodel: {consistency_weight: 0}", 2, 0.0),   # an explicit weight wins
    ("data: {dataset: mnist5k}\nmodel: {consistency_weight: 3}", 2, 3.0),
])
def test_consistency_is_on_by_default_with_shifted_images_or_a_head(write_config, text, shift, consistency):
    eff = plan_of(write_config, text).effective
    assert (eff["data"]["augment_shift"], eff["model"]["consistency_weight"]) == (shift, consistency)


@pytest.mark.parametrize("text", ["data: {dataset: digits}", "data: {dataset: mnist5k}",
                                  "model: {prior_type: mixture, use_tau_classifier: true}"])
def test_entropy_minimisation_is_on_by_default(write_config, text):
    assert plan_of(write_config, text).effective["model"]["entropy_weight"] == 1.0


def test_the_usage_spread_reward_is_off_where_there_is_nothing_to_spread(write_config):
    eff = plan_of(write_config, "model: {prior_type: mixture}").effective  # interchangeable components
    assert eff["model"]["component_diversity_weight"] == 0.0
    for text in ("model: {prior_type: mixture, decoder_conditioning: concat}",
                 "model: {prior_type: mixture, use_tau_classifier: true}", "model: {prior_type: geometric_mog}"):
        assert plan_of(write_config, text).effective["model"]["component_diversity_weight"] == -20.0
    explicit = plan_of(write_config, "model: {prior_type: mixture, component_diversity_weight: -5}").effective
    assert explicit["model"]["component_diversity_weight"] == -5
