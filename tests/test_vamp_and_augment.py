"""The VampPrior's components are its pseudo-inputs (no separate head), and the random-shift augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import softmax

from ssvae import config
from ssvae.model import priors
from ssvae.model.rng import run_keys
from ssvae.model.vae import build_model, init_params
from ssvae.training import augment, step

pytestmark = pytest.mark.jax

H = W = 8
X = np.random.default_rng(4).random((6, H, W)).astype(np.float32)


def vamp_config(**overrides) -> config.ModelConfig:
    values = {**config.defaults()["model"], "prior_type": "vamp", "num_components": 4, "num_classes": 3,
              "hidden_dims": [8], "latent_dim": 2, "input_hw": [H, W], "use_tau_classifier": True, **overrides}
    return config.ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def test_vamp_responsibilities_are_the_pseudo_input_posteriors_at_z():
    cfg = vamp_config()
    params = init_params(cfg, jax.random.PRNGKey(0), X)
    assert "component_logits" not in params["encoder"]  # no separate head
    model = build_model(cfg)
    pmu, plv = (np.asarray(a) for a in model.apply({"params": params}, method="pseudo_posteriors"))

    def expected(z):
        log_q = stats.norm.logpdf(z[:, None, :], pmu[None], np.exp(0.5 * plv)[None]).sum(-1)
        return softmax(np.log(1.0 / 4) + log_q, axis=-1)

    deterministic = model.apply({"params": params}, jnp.asarray(X), None)  # z = μ
    np.testing.assert_allclose(deterministic.r, expected(np.asarray(deterministic.z)), rtol=1e-4, atol=1e-6)
    sampled = model.apply({"params": params}, jnp.asarray(X), jax.random.PRNGKey(1))  # z ~ q(z|x)
    np.testing.assert_allclose(sampled.r, expected(np.asarray(sampled.z)), rtol=1e-4, atol=1e-6)
    assert not np.allclose(sampled.r, deterministic.r)


def test_the_tau_loss_moves_the_pseudo_inputs():
    cfg = vamp_config(tau_init_counts=10.0)  # a uniform τ would give the τ loss no gradient at all
    program = step.TrainProgram(cfg, len(X))
    state = program.init_state(run_keys(0)["init"], X)
    y = jnp.asarray([0, 1, 2, 0, 1, 2], jnp.int32)

    def classification(params):
        _, (means, *_rest) = program.loss_fn(params, state.tau_counts, jnp.asarray(X), y, jnp.ones(6),
                                             jax.random.PRNGKey(2), 0)
        return means["classification"]

    grads = jax.grad(classification)(program.layout.unflatten(state.params))
    assert float(jnp.abs(grads["pseudo"]["pseudo_inputs"]).max()) > 0


def test_tau_starts_on_the_class_each_pseudo_input_resembles():
    """Pseudo-inputs that are (noisy) copies of labeled images of classes 2, 0, 1, 2 get τ's initial counts on
    those classes, not on k mod C = 0, 1, 2, 0; a balanced matching gives no class more than ceil(K/C) of them."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((3, H, W)).astype(np.float32)
    x_labeled = np.concatenate([prototypes + 0.01 * rng.standard_normal((3, H, W)) for _ in range(2)])
    y_labeled = np.array([0, 1, 2, 0, 1, 2])
    pseudo = prototypes[[2, 0, 1, 2]] + 0.05 * rng.standard_normal((4, H, W)).astype(np.float32)
    np.testing.assert_array_equal(priors.vamp_class_assignment(pseudo, x_labeled, y_labeled, 3), [2, 0, 1, 2])
    crowded = prototypes[[0, 0, 0, 0]]  # all four look like class 0: at most two may have it
    assert np.bincount(priors.vamp_class_assignment(crowded, x_labeled, y_labeled, 3), minlength=3).max() == 2

    cfg = vamp_config(tau_init_counts=10.0, vamp_pseudo_init_method="random")
    program = step.TrainProgram(cfg, len(x_labeled))
    state = program.init_state(run_keys(0)["init"], x_labeled, (x_labeled, y_labeled))
    pseudo_inputs = np.asarray(program.layout.unflatten(state.params)["pseudo"]["pseudo_inputs"])
    expected = priors.vamp_class_assignment(pseudo_inputs, x_labeled, y_labeled, 3)
    np.testing.assert_array_equal(np.asarray(state.tau_counts).argmax(axis=1), expected)
    # the random pseudo-inputs are labeled images themselves: each sits on its own image's class
    nearest = [y_labeled[np.abs(x_labeled - u).sum(axis=(1, 2)).argmin()] for u in pseudo_inputs]
    np.testing.assert_array_equal(expected, nearest)
    unlabeled = program.init_state(run_keys(0)["init"], x_labeled)  # no labels given: k mod C as before
    np.testing.assert_array_equal(np.asarray(unlabeled.tau_counts).argmax(axis=1), [0, 1, 2, 0])


def test_random_shift_translates_each_image_within_the_range_with_zero_fill():
    x = jnp.zeros((64, 9, 9)).at[:, 4, 4].set(1.0)  # one lit pixel in the centre
    shifted = np.asarray(augment.random_shift(jax.random.PRNGKey(0), x, 2))
    assert shifted.sum() == pytest.approx(64.0)  # the pixel moved, nothing else lit
    positions = np.argwhere(shifted)[:, 1:]
    assert (np.abs(positions - 4) <= 2).all()
    assert len({tuple(p) for p in positions}) > 10  # many of the 25 shifts drawn
    np.testing.assert_array_equal(augment.random_shift(jax.random.PRNGKey(0), x, 0), x)
    edge = jnp.ones((16, 5, 5))
    assert float(augment.random_shift(jax.random.PRNGKey(1), edge, 1).min()) == 0.0  # zero fill at the border


def test_augment_shift_changes_the_training_step():
    cfg = vamp_config(prior_type="standard", use_tau_classifier=False, num_components=1)
    x, y = jnp.asarray(X), jnp.asarray([0, 1, 2, -1, -1, -1], jnp.int32)
    losses = []
    for shift in (0, 2):
        program = step.TrainProgram(cfg, len(X), augment_shift=shift)
        keys = run_keys(0)
        state = program.init_state(keys["init"], X)
        order, weights = program.epoch_plan(keys["train"], np.zeros(0, np.int32), 0)
        _, acc = program.train_step(state, program.zero_train_acc(), x, y, order, weights, keys["train"], 0, 0)
        losses.append(float(acc["sum_reconstruction"]))
    assert losses[0] != losses[1]


def test_a_model_config_without_the_plans_resolution_gets_consistency_exactly_where_it_can_act():
    """A ModelConfig made from the schema's defaults (library use) leaves consistency_weight unset: the train
    program resolves it as a config's plan would, with the shifts it is given."""
    head = vamp_config(prior_type="standard", use_tau_classifier=False, num_components=1)
    assert head.consistency_weight is None
    assert step.TrainProgram(head, len(X), augment_shift=2).cfg.consistency_weight == 10.0
    assert step.TrainProgram(head, len(X), augment_shift=0).cfg.consistency_weight == 10.0  # reads a sampled z
    tau = vamp_config(prior_type="mixture", use_tau_classifier=True, component_embedding_dim=2)
    assert step.TrainProgram(tau, len(X), augment_shift=2).cfg.consistency_weight == 10.0
    assert step.TrainProgram(tau, len(X), augment_shift=0).cfg.consistency_weight == 0.0  # r(x): same answer twice
    explicit = vamp_config(prior_type="standard", use_tau_classifier=False, num_components=1, consistency_weight=0.0)
    assert step.TrainProgram(explicit, len(X), augment_shift=2).cfg.consistency_weight == 0.0


@pytest.mark.parametrize(("prior", "tau", "acts"), [("standard", False, True), ("vamp", True, True),
                                                    ("mixture", True, False)])
def test_without_shifts_the_consistency_term_acts_exactly_where_the_classifier_reads_the_sampled_z(prior, tau, acts):
    """No shifts: the two passes differ only in their samples of z (and the head's dropout). A head and the
    VampPrior's tau answer differently on them; a mixture's tau reads r(x) and answers the same (the config rule
    rejects it there)."""
    cfg = vamp_config(prior_type=prior, use_tau_classifier=tau, num_components=1 if prior == "standard" else 4,
                      component_embedding_dim=2, consistency_weight=10.0)
    program = step.TrainProgram(cfg, len(X), augment_shift=0)
    keys = run_keys(0)
    state = program.init_state(keys["init"], X)
    order, weights = program.epoch_plan(keys["train"], np.zeros(0, np.int32), 0)
    x, y = jnp.asarray(X), jnp.asarray([0, 1, 2, -1, -1, -1], jnp.int32)
    _, acc = program.train_step(state, program.zero_train_acc(), x, y, order, weights, keys["train"], 0, 0)
    assert (float(acc["sum_consistency"]) > 0) == acts, float(acc["sum_consistency"])
