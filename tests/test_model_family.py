"""Every architecture the arch code can name builds, has the right shapes and a finite loss; dense and conv.

The forward passes run op by op (eager): each combination is a different graph, and compiling ~280
graphs would take many minutes on 2 cores, while eager ops of the same tiny shapes are compiled once and reused.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssvae import config, naming
from ssvae.model import losses
from ssvae.model.rng import run_keys
from ssvae.model.vae import build_model, init_params
from ssvae.training import step

pytestmark = pytest.mark.jax

H = W = 8
B, K, C, D = 6, 4, 3, 2

PRIORS = {
    "std": {"prior_type": "standard"},
    "mix": {"prior_type": "mixture"},
    "mix-dir": {"prior_type": "mixture", "dirichlet_alpha": 2.0, "learnable_pi": True},
    "mix-dec": {"prior_type": "mixture", "latent_layout": "decentralized"},
    "mix-gbl": {"prior_type": "mixture", "use_gumbel_softmax": True, "gumbel_temperature_anneal_epochs": 3},
    "mix-dir-dec-gbl": {"prior_type": "mixture", "dirichlet_alpha": 0.5, "latent_layout": "decentralized",
                        "use_gumbel_softmax": True, "use_straight_through_gumbel": False},
    "vamp-km": {"prior_type": "vamp", "vamp_pseudo_init_method": "kmeans", "vamp_num_samples_kl": 2,
                "c_regularizer": "categorical"},  # vamp has no free component logits for logit-MoG
    "vamp-rand": {"prior_type": "vamp", "vamp_pseudo_init_method": "random", "c_regularizer": "categorical"},
    "geo-circle": {"prior_type": "geometric_mog", "geometric_arrangement": "circle"},
    "geo-grid": {"prior_type": "geometric_mog", "geometric_arrangement": "grid", "learnable_pi": True},
    "geo-circle-dec": {"prior_type": "geometric_mog", "latent_layout": "decentralized"},
    "geo-grid-gbl": {"prior_type": "geometric_mog", "geometric_arrangement": "grid", "use_gumbel_softmax": True},
    "geo-circle-dec-gbl": {"prior_type": "geometric_mog", "latent_layout": "decentralized",
                           "use_gumbel_softmax": True},
}
CONDITIONING = ["none", "concat", "film", "cin"]


def model_config(**overrides) -> config.ModelConfig:
    values = {**config.defaults()["model"], "hidden_dims": [8], "latent_dim": D, "num_classes": C,
              "num_components": K, "component_embedding_dim": 3, "input_hw": [H, W], "c_regularizer": "both",
              "c_logit_prior_weight": 0.1, "component_diversity_weight": -0.1, "l1_weight": 1e-4, **overrides}
    return config.ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def combinations():
    """(id, overrides) for every prior variant × classifier × decoder the arch code distinguishes."""
    for (prior_name, prior), tau, conditioning, het in itertools.product(
            PRIORS.items(), [False, True], CONDITIONING, [False, True]):
        conditionable = prior["prior_type"] in ("mixture", "geometric_mog")
        if tau and prior["prior_type"] == "standard":
            continue
        if conditioning != "none" and not conditionable:
            continue
        if prior.get("use_gumbel_softmax") and conditioning == "none" and "latent_layout" not in prior:
            continue  # shared-layout routing acts only through conditioning: rejected by validation
        overrides = {**prior, "use_tau_classifier": tau, "decoder_conditioning": conditioning,
                     "use_heteroscedastic_decoder": het, "reconstruction_loss": "mse" if het else "bce"}
        yield naming.arch_code(model_config(**overrides)), overrides


COMBINATIONS = list(combinations())


def test_the_combinations_are_every_arch_code_once():
    codes = [code for code, _ in COMBINATIONS]
    assert len(codes) == len(set(codes))
    assert {"std_head_plain", "std_head_het", "mix4-dir_tau_ca-het", "vamp4-km_tau_plain", "geo4-grid-gbl_head_film",
            "mix4-dir-dec-gbl_head_cin-het"} <= set(codes)
    assert all(naming.is_arch_code(code) for code in codes)
    for code in codes:
        prior, classifier, decoder = code.split("_")
        assert classifier in ("head", "tau") and decoder


def host_params(cfg, seed=0):
    """Random parameters with the model's structure (eval_shape: no compilation)."""
    shapes = jax.eval_shape(build_model(cfg).init, jax.random.PRNGKey(0), jnp.zeros((2, H, W)))["params"]
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(0.0, 0.3, s.shape).astype(np.float32)), shapes)


X = jnp.asarray(np.random.default_rng(1).random((B, H, W)).astype(np.float32))
Y = jnp.asarray([0, 1, -1, 2, -1, 1], jnp.int32)


def expected_decodes(cfg) -> int:
    """How many decoder outputs per image the model should produce."""
    mixture = cfg.prior_type in ("mixture", "geometric_mog")
    if not mixture or cfg.use_gumbel_softmax:
        return 1
    if cfg.latent_layout == "decentralized" or cfg.decoder_conditioning != "none":
        return K
    return 1


@pytest.mark.parametrize("encoder", ["dense", "conv"])
@pytest.mark.parametrize("code,overrides", COMBINATIONS, ids=[code for code, _ in COMBINATIONS])
def test_forward_shapes_and_finite_loss(code, overrides, encoder):
    cfg = model_config(**overrides, encoder_type=encoder, decoder_type=encoder)
    program = step.TrainProgram(cfg, B)
    params = host_params(cfg)
    counts = jnp.ones((K, C)) if cfg.use_tau_classifier else jnp.zeros((0, 0))
    loss, (means, contributions, train_outputs, correct) = program.loss_fn(
        params, counts, X, Y, jnp.ones(B), jax.random.PRNGKey(5), 1)
    eval_outputs = program.model.apply({"params": params}, X, None, 0.7)
    decodes = expected_decodes(cfg)
    for outputs in (train_outputs, eval_outputs):  # sampling and deterministic passes
        assert outputs.recon.shape == ((B, H, W) if decodes == 1 else (B, K, H, W))
        assert (outputs.recon_weights is None) == (decodes == 1)
        assert outputs.z.shape == outputs.z_mean.shape == outputs.z_logvar.shape == (B, D)
        if cfg.is_mixture:
            assert outputs.r.shape == (B, K)
            np.testing.assert_allclose(outputs.r.sum(-1), 1.0, rtol=1e-5)
        else:
            assert outputs.r is None
        assert (outputs.class_logits is None) == cfg.use_tau_classifier
        if cfg.use_heteroscedastic_decoder:
            assert outputs.sigma.shape == ((B,) if decodes == 1 else (B, K))
            assert float(outputs.sigma.min()) >= cfg.sigma_min and float(outputs.sigma.max()) <= cfg.sigma_max
        else:
            assert outputs.sigma is None
    assert np.isfinite(float(loss))
    assert set(contributions) == set(losses.TERMS)
    assert all(np.isfinite(float(v)) for v in contributions.values()), contributions
    assert float(loss) == pytest.approx(sum(float(v) for v in contributions.values()), rel=1e-5)
    if not cfg.is_mixture:
        assert float(contributions["kl_c"]) == float(contributions["diversity"]) == 0.0


@pytest.mark.parametrize("overrides", [
    {"prior_type": "mixture", "use_gumbel_softmax": True, "decoder_conditioning": "cin",
     "use_heteroscedastic_decoder": True, "reconstruction_loss": "mse", "encoder_type": "conv", "decoder_type": "conv"},
    {"prior_type": "geometric_mog", "geometric_arrangement": "grid", "latent_layout": "decentralized",
     "decoder_conditioning": "film", "use_tau_classifier": True},
    {"prior_type": "vamp", "vamp_pseudo_init_method": "kmeans", "use_tau_classifier": True,
     "c_regularizer": "categorical"},
], ids=["conv-mix-gbl-cin-het", "dense-geo-grid-dec-film-tau", "dense-vamp-km-tau"])
def test_a_jitted_train_step_has_finite_gradients_and_updates_tau_counts(overrides):
    cfg = model_config(**overrides)
    x_train = np.random.default_rng(2).random((12, H, W)).astype(np.float32)
    program = step.TrainProgram(cfg, 12)
    keys = run_keys(0)
    state = program.init_state(keys["init"], x_train)
    no_pool = np.zeros(0, np.int32)
    order, weights = program.epoch_plan(keys["train"], no_pool, 0)
    y = jnp.asarray([0, 1, 2, -1, -1, -1, 0, 1, 2, -1, -1, -1], jnp.int32)
    train_step = jax.jit(program.train_step)
    new_state, acc = train_step(state, program.zero_train_acc(), jnp.asarray(x_train), y, order, weights, keys["train"],
                                0, 0)
    assert int(acc["bad"].min()) == step.NEVER  # every term, the loss and the gradient norm finite
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), new_state.params, state.params)
    assert any(jax.tree_util.tree_leaves(changed))
    if cfg.use_tau_classifier:
        labeled_in_batch = float(jnp.sum(weights[0] * (y[order[0]] >= 0)))
        assert float(new_state.tau_counts.sum() - state.tau_counts.sum()) == pytest.approx(labeled_in_batch)


def test_vamp_pseudo_inputs_start_from_training_images():
    x_train = np.random.default_rng(3).random((20, H, W)).astype(np.float32)
    for method in ("random", "kmeans"):
        cfg = model_config(prior_type="vamp", vamp_pseudo_init_method=method)
        pseudo = np.asarray(init_params(cfg, jax.random.PRNGKey(0), x_train)["pseudo"]["pseudo_inputs"])
        assert pseudo.shape == (K, H, W)
        if method == "random":
            assert all(any(np.array_equal(u, img) for img in x_train) for u in pseudo)
        else:
            assert abs(pseudo.mean() - x_train.mean()) < 0.05
