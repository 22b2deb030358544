"""Each loss formula against a hand computation or a Monte-Carlo estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats
from scipy.special import logsumexp, softmax

from ssvae import config
from ssvae.model import classifiers, losses, networks, priors
from ssvae.model.vae import Outputs
from ssvae.training import optimizer as optimizer_mod

pytestmark = pytest.mark.jax

RNG = np.random.default_rng(0)


def model_config(**overrides) -> config.ModelConfig:
    values = {**config.defaults()["model"], "input_hw": [8, 8], "component_embedding_dim": 4, **overrides}
    return config.ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def gaussian(shape, scale=1.0):
    return jnp.asarray(RNG.normal(0.0, scale, shape).astype(np.float32))


# KL_z --------------------------------------------------------------------------------------------

def monte_carlo_kl(mu, logvar, log_p, n=400_000, seed=1):
    """E_q[log q(z) − log p(z)] by sampling, for one posterior N(mu, exp(logvar)) (1-D arrays)."""
    sd = np.exp(0.5 * logvar)
    z = mu + sd * np.random.default_rng(seed).standard_normal((n, len(mu)))
    log_q = stats.norm.logpdf(z, mu, sd).sum(axis=1)
    return float(np.mean(log_q - log_p(z)))


def test_kl_standard_matches_monte_carlo():
    mu, logvar = np.array([0.5, -1.0, 0.2]), np.array([-0.3, 0.4, -1.2])
    analytic = float(priors.kl_z_standard(jnp.asarray(mu)[None], jnp.asarray(logvar)[None])[0])
    mc = monte_carlo_kl(mu, logvar, lambda z: stats.norm.logpdf(z).sum(axis=1))
    assert analytic == pytest.approx(mc, abs=0.01)
    hand = 0.5 * np.sum(np.exp(logvar) + mu**2 - 1 - logvar)
    assert analytic == pytest.approx(hand, rel=1e-6)


def test_kl_to_shifted_unit_gaussian_matches_monte_carlo():
    mu, logvar, centre = np.array([1.5, -0.5]), np.array([0.2, -0.7]), np.array([2.0, 0.0])
    analytic = float(priors.kl_normal_unit(jnp.asarray(mu), jnp.asarray(logvar), jnp.asarray(centre)))
    mc = monte_carlo_kl(mu, logvar, lambda z: stats.norm.logpdf(z, centre).sum(axis=1))
    assert analytic == pytest.approx(mc, abs=0.01)


def test_kl_geometric_is_responsibility_weighted_per_component():
    k, d = 4, 3
    centres = priors.geometric_centres(k, d, "circle", 2.0)
    mu, logvar = gaussian((2, d)), gaussian((2, d), 0.3)
    r = jax.nn.softmax(gaussian((2, k)), axis=-1)
    got = np.asarray(priors.kl_z_geometric(mu, logvar, r, jnp.asarray(centres)))
    mu_n, lv_n, r_n = map(np.asarray, (mu, logvar, r))
    hand = [sum(r_n[b, j] * 0.5 * np.sum(np.exp(lv_n[b]) + (mu_n[b] - centres[j]) ** 2 - 1 - lv_n[b])
                for j in range(k)) for b in range(2)]
    np.testing.assert_allclose(got, hand, rtol=1e-5)
    # decentralized: one posterior per component
    mu_k, lv_k = gaussian((2, k, d)), gaussian((2, k, d), 0.3)
    got = np.asarray(priors.kl_z_geometric(mu_k, lv_k, r, jnp.asarray(centres)))
    mk, lk = np.asarray(mu_k), np.asarray(lv_k)
    hand = [sum(r_n[b, j] * 0.5 * np.sum(np.exp(lk[b, j]) + (mk[b, j] - centres[j]) ** 2 - 1 - lk[b, j])
                for j in range(k)) for b in range(2)]
    np.testing.assert_allclose(got, hand, rtol=1e-5)


def test_kl_mixture_decentralized_weights_each_component_by_its_responsibility():
    mu_k, lv_k = gaussian((3, 5, 2)), gaussian((3, 5, 2), 0.3)
    r = jax.nn.softmax(gaussian((3, 5)), axis=-1)
    got = priors.kl_z_mixture(mu_k, lv_k, r)
    per_component = priors.kl_normal_standard(mu_k, lv_k)
    np.testing.assert_allclose(got, np.sum(np.asarray(r) * np.asarray(per_component), axis=1), rtol=1e-6)
    # shared layout: the plain standard-normal KL (every component has p(z|c) = N(0, I))
    mu, lv = gaussian((3, 2)), gaussian((3, 2))
    np.testing.assert_allclose(priors.kl_z_mixture(mu, lv, r), priors.kl_normal_standard(mu, lv), rtol=1e-6)


def test_geometric_centres_circle_and_grid():
    circle = priors.geometric_centres(6, 3, "circle", 2.5)
    np.testing.assert_allclose(np.linalg.norm(circle, axis=1), 2.5, rtol=1e-6)
    assert np.all(circle[:, 2] == 0)
    grid = priors.geometric_centres(9, 2, "grid", 1.0)
    assert sorted(set(np.round(grid[:, 0], 6))) == [-1.0, 0.0, 1.0]
    assert len({tuple(c) for c in np.round(grid, 6)}) == 9
    with pytest.raises(ValueError):
        priors.geometric_centres(8, 2, "grid", 1.0)


def test_vamp_kl_is_the_monte_carlo_formula_with_fresh_samples():
    mu, logvar = gaussian((2, 3)), gaussian((2, 3), 0.3)
    pmu, plv = gaussian((4, 3)), gaussian((4, 3), 0.3)
    key = jax.random.PRNGKey(7)
    got = np.asarray(priors.kl_z_vamp(key, mu, logvar, pmu, plv, num_samples=5))
    eps = np.asarray(jax.random.normal(key, (5, 2, 3)))
    mu_n, lv_n, pmu_n, plv_n = map(np.asarray, (mu, logvar, pmu, plv))
    z = mu_n + np.exp(0.5 * lv_n) * eps
    log_q = stats.norm.logpdf(z, mu_n, np.exp(0.5 * lv_n)).sum(-1)
    log_components = stats.norm.logpdf(z[:, :, None], pmu_n, np.exp(0.5 * plv_n)).sum(-1)
    log_p = logsumexp(log_components, axis=-1) - np.log(4)
    np.testing.assert_allclose(got, np.mean(log_q - log_p, axis=0), rtol=1e-4, atol=1e-5)
    # a different key gives different samples (the step's RNG, not a fixed one)
    assert not np.allclose(got, priors.kl_z_vamp(jax.random.PRNGKey(8), mu, logvar, pmu, plv, 5))


def test_vamp_kl_estimate_converges_and_vanishes_when_prior_equals_posterior():
    mu, logvar = jnp.array([[0.3, -0.2]]), jnp.array([[-0.5, 0.1]])
    pmu = jnp.array([[0.0, 0.0], [1.0, -1.0]])
    plv = jnp.array([[0.0, 0.0], [-0.2, 0.3]])
    estimate = float(priors.kl_z_vamp(jax.random.PRNGKey(0), mu, logvar, pmu, plv, 200_000)[0])

    def log_p(z):
        parts = [stats.norm.logpdf(z, np.asarray(pmu[k]), np.exp(0.5 * np.asarray(plv[k]))).sum(1) for k in range(2)]
        return logsumexp(np.stack(parts), axis=0) - np.log(2)

    assert estimate == pytest.approx(monte_carlo_kl(np.asarray(mu[0]), np.asarray(logvar[0]), log_p), abs=0.01)
    same = priors.kl_z_vamp(jax.random.PRNGKey(0), mu, logvar, mu, logvar, 3)
    np.testing.assert_allclose(same, 0.0, atol=1e-5)


def test_vamp_pseudo_inputs_from_training_data():
    x = RNG.random((40, 4, 4)).astype(np.float32)
    x[:20] *= 0.1
    km = priors.vamp_init_pseudo_inputs(x, 2, "kmeans", seed=0)
    assert km.shape == (2, 4, 4)
    assert sorted(km.mean(axis=(1, 2)) < 0.1) == [False, True]  # one centre per cluster
    rand = priors.vamp_init_pseudo_inputs(x, 3, "random", seed=0)
    assert all(any(np.array_equal(u, img) for img in x) for u in rand)
    np.testing.assert_array_equal(rand, priors.vamp_init_pseudo_inputs(x, 3, "random", seed=0))


def test_vamp_kmeans_pseudo_inputs_do_not_depend_on_the_cpu_count():
    """A job's CPUs (1 on a laptop, 2 on a cluster node) must not change the run: k-means sums in thread order."""
    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_limits

    x = (load_digits().data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    by_threads = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            by_threads.append(priors.vamp_init_pseudo_inputs(x, 10, "kmeans", seed=0))
    np.testing.assert_array_equal(*by_threads)


# The component channel ----------------------------------------------------------------------------

def test_categorical_kl_matches_hand():
    logits, log_pi = gaussian((3, 4)), jax.nn.log_softmax(gaussian((4,)))
    r = softmax(np.asarray(logits), axis=1)
    hand = np.sum(r * (np.log(r) - np.asarray(log_pi)), axis=1)
    np.testing.assert_allclose(priors.kl_categorical(logits, log_pi), hand, rtol=1e-5)


def test_dirichlet_penalty_matches_hand():
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    got = float(priors.dirichlet_penalty(jnp.log(jnp.asarray(pi)), alpha=2.5, weight=0.3))
    assert got == pytest.approx(0.3 * (-(2.5 - 1) * np.sum(np.log(pi))), rel=1e-6)


def test_logit_mog_penalty_matches_scipy_mixture_density():
    k, mean, sigma = 4, 3.0, 0.7
    logits = gaussian((3, k), 2.0)
    got = np.asarray(priors.logit_mog_penalty(logits, mean, sigma))
    for b in range(3):
        density = np.mean([stats.multivariate_normal.pdf(np.asarray(logits[b]), mean * np.eye(k)[j], sigma**2)
                           for j in range(k)])
        assert got[b] == pytest.approx(-np.log(density), rel=1e-4)


def test_usage_entropy_is_entropy_of_batch_mean():
    r = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0]], np.float32)
    usage = r.mean(0)
    hand = -np.sum(usage * np.log(usage))
    assert float(priors.usage_entropy(jnp.asarray(r))) == pytest.approx(hand, rel=1e-5)
    weighted = float(priors.usage_entropy(jnp.asarray(r), jnp.array([1.0, 1.0, 0.0])))
    usage = r[:2].mean(0)
    assert weighted == pytest.approx(-np.sum(usage[usage > 0] * np.log(usage[usage > 0])), rel=1e-5)


# Gumbel-softmax -----------------------------------------------------------------------------------

def test_gumbel_softmax_samples_the_categorical_and_straight_through_is_one_hot():
    logits = jnp.log(jnp.array([0.6, 0.3, 0.1]))
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    y = jax.vmap(lambda k: priors.gumbel_softmax(k, logits, 0.5, False))(keys)
    np.testing.assert_allclose(np.asarray(y).sum(1), 1.0, rtol=1e-5)
    freq = np.bincount(np.asarray(jnp.argmax(y, 1)), minlength=3) / len(keys)
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=0.015)  # Gumbel-max trick
    hard = priors.gumbel_softmax(keys[0], logits, 0.5, True)
    assert sorted(np.asarray(hard).round(6).tolist()) == [0.0, 0.0, 1.0]

    # the straight-through estimator passes the soft sample's gradient
    def soft(logits):
        return jnp.sum(priors.gumbel_softmax(keys[0], logits, 0.5, False) * jnp.arange(3.0))

    def st(logits):
        return jnp.sum(priors.gumbel_softmax(keys[0], logits, 0.5, True) * jnp.arange(3.0))

    np.testing.assert_allclose(jax.grad(st)(logits), jax.grad(soft)(logits), rtol=1e-5)


# Reconstruction -----------------------------------------------------------------------------------

def test_bce_on_logits_matches_hand_and_is_stable():
    x = RNG.random((2, 3, 3)).astype(np.float32)
    logits = RNG.normal(0, 3, (2, 3, 3)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    hand = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2))
    np.testing.assert_allclose(losses.bce_with_logits(jnp.asarray(x), jnp.asarray(logits)), hand, rtol=1e-5)
    extreme = losses.bce_with_logits(jnp.ones((1, 1, 1)), jnp.full((1, 1, 1), -200.0))
    assert float(extreme[0]) == pytest.approx(200.0)


def test_squared_error_and_heteroscedastic_gaussian_nll():
    x = RNG.random((2, 4, 4)).astype(np.float32)
    mean = RNG.random((2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(losses.squared_error(x, mean), ((x - mean) ** 2).sum((1, 2)), rtol=1e-5)
    sigma = np.array([0.1, 0.4], np.float32)
    hand = -stats.norm.logpdf(x, mean, sigma[:, None, None]).sum((1, 2))
    np.testing.assert_allclose(losses.gaussian_nll(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(sigma)), hand,
                               rtol=1e-4)


def test_heteroscedastic_sigma_is_clipped_softplus():
    s = jnp.array([-50.0, -1.0, 0.0, 2.0, 50.0])
    got = np.asarray(networks.heteroscedastic_sigma(s, 0.05, 0.5))
    hand = np.clip(0.05 + np.log1p(np.exp(np.asarray(s, np.float64))), 0.05, 0.5)
    np.testing.assert_allclose(got, hand, rtol=1e-5)
    assert got.min() >= 0.05 and got.max() <= 0.5


def test_reconstruction_over_k_outputs_is_the_expectation_under_q_c():
    cfg = model_config(prior_type="mixture", num_components=3)
    x = jnp.asarray(RNG.random((2, 8, 8)).astype(np.float32))
    recon = gaussian((2, 3, 8, 8))
    r = jax.nn.softmax(gaussian((2, 3)), axis=-1)
    outputs = Outputs(mu=None, logvar=None, z=None, z_mean=None, z_logvar=None, recon=recon, sigma=None,
                      recon_weights=r, logits=None, r=r, selection=r, class_logits=None, log_pi=None,
                      pseudo_mu=None, pseudo_logvar=None)
    got = losses.reconstruction_term(cfg, x, outputs)
    per_k = np.stack([np.asarray(losses.bce_with_logits(x, recon[:, k])) for k in range(3)], axis=1)
    np.testing.assert_allclose(got, np.sum(np.asarray(r) * per_k, axis=1), rtol=1e-5)


# τ-classifier -------------------------------------------------------------------------------------

def test_tau_init_counts_add_a_round_robin_assignment():
    counts = np.asarray(classifiers.tau_init_counts(5, 2, 0.5, assigned=10.0))
    np.testing.assert_array_equal(counts, [[10.5, 0.5], [0.5, 10.5], [10.5, 0.5], [0.5, 10.5], [10.5, 0.5]])
    np.testing.assert_array_equal(classifiers.tau_init_counts(5, 2, 0.5, assigned=0.0), np.full((5, 2), 0.5))


def test_tau_counts_update_predict_and_loss():
    counts = classifiers.tau_init_counts(3, 2, 0.5)
    np.testing.assert_array_equal(counts, np.full((3, 2), 0.5))
    r = jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    y = jnp.array([0, 1, -1])
    mask = jnp.array([1.0, 1.0, 0.0])  # the third sample is unlabeled
    counts = classifiers.tau_update_counts(counts, r, y, mask)
    hand = np.full((3, 2), 0.5)
    hand[:, 0] += [0.7, 0.2, 0.1]
    hand[:, 1] += [0.1, 0.1, 0.8]
    np.testing.assert_allclose(counts, hand, rtol=1e-6)
    tau = classifiers.tau_matrix(counts)
    np.testing.assert_allclose(tau, hand / hand.sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(classifiers.tau_predict(r, tau), np.asarray(r) @ np.asarray(tau), rtol=1e-6)
    nll = classifiers.tau_nll(r, tau, y)
    p = np.asarray(r) @ np.asarray(tau)
    np.testing.assert_allclose(nll, [-np.log(p[0, 0] + 1e-8), -np.log(p[1, 1] + 1e-8), 0.0], rtol=1e-5)


def test_tau_loss_does_not_differentiate_through_tau():
    r = jnp.array([[0.7, 0.3]])
    counts = jnp.array([[2.0, 1.0], [1.0, 3.0]])
    grad_counts = jax.grad(lambda c: classifiers.tau_nll(r, classifiers.tau_matrix(c), jnp.array([1])).sum())(counts)
    np.testing.assert_array_equal(grad_counts, 0.0)
    grad_r = jax.grad(lambda q: classifiers.tau_nll(q, classifiers.tau_matrix(counts), jnp.array([1])).sum())(r)
    assert np.all(np.asarray(grad_r) != 0)


def test_head_cross_entropy_on_labeled_samples_only():
    logits = gaussian((3, 4))
    y = jnp.array([2, -1, 0])
    log_p = np.asarray(jax.nn.log_softmax(logits))
    nll = classifiers.head_nll(logits, y)
    np.testing.assert_allclose(nll, [-log_p[0, 2], 0.0, -log_p[2, 0]], rtol=1e-6)
    mean = classifiers.masked_mean(nll, (y >= 0).astype(jnp.float32))
    assert float(mean) == pytest.approx((-log_p[0, 2] - log_p[2, 0]) / 2, rel=1e-6)
    assert float(classifiers.masked_mean(nll, jnp.zeros(3))) == 0.0


# Assembling the objective ---------------------------------------------------------------------------

@pytest.mark.parametrize("regularizer", ["categorical", "logit_mog", "both"])
def test_weighted_terms_apply_each_weight_and_honour_c_regularizer(regularizer):
    cfg = model_config(prior_type="geometric_mog", c_regularizer=regularizer, recon_weight=2.0, kl_weight=0.5,
                       kl_c_weight=3.0, c_logit_prior_weight=0.1, dirichlet_alpha=2.0, dirichlet_weight=0.7,
                       component_diversity_weight=-0.2, label_weight=5.0, entropy_weight=0.3, consistency_weight=0.2,
                       l1_weight=1e-3)
    means = {t: jnp.asarray(float(i + 1)) for i, t in enumerate(losses.TERMS)}
    got = {t: float(v) for t, v in losses.weighted_terms(cfg, means, jnp.asarray(0.5)).items()}
    categorical = regularizer in ("categorical", "both")
    mog = regularizer in ("logit_mog", "both")
    assert got == pytest.approx({
        "reconstruction": 2.0 * 1, "kl_z": 0.5 * 2, "kl_c": 3.0 * 0.5 * 3 if categorical else 0.0,
        "logit_mog": 0.1 * 0.5 * 4 if mog else 0.0, "dirichlet": 0.7 * 5, "diversity": -0.2 * 6,
        "classification": 5.0 * 7, "entropy": 0.3 * 8, "consistency": 0.2 * 9, "l1": 1e-3 * 10})


def test_prediction_entropy_is_averaged_over_the_unlabeled_images_only():
    probs = jnp.asarray([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]])
    expected = [0.0, np.log(2.0), -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5)),
                -(0.5 * np.log(0.25) + 0.5 * np.log(0.5))]
    entropy = losses.prediction_entropy(probs)
    np.testing.assert_allclose(np.asarray(entropy), expected, rtol=1e-6)
    weights, labeled = jnp.asarray([1.0, 1.0, 1.0, 0.0]), jnp.asarray([0.0, 1.0, 0.0, 0.0])
    means = losses.batch_means({"entropy": entropy}, weights, labeled)
    assert float(means["entropy"]) == pytest.approx((expected[0] + expected[2]) / 2)


def test_consistency_is_the_mean_squared_difference_of_the_two_predictions():
    p1 = jnp.asarray([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]])
    p2 = jnp.asarray([[0.5, 0.5], [0.0, 1.0], [0.6, 0.4]])
    got = losses.consistency_term(p1, p2, jnp.asarray([1.0, 1.0, 0.0]))
    assert float(got) == pytest.approx((0.0 + 2.0) / 2)


def test_terms_a_prior_does_not_have_contribute_exact_zero():
    cfg = model_config(prior_type="standard", dirichlet_alpha=2.0, component_diversity_weight=1.0)
    means = {t: jnp.asarray(np.nan) for t in losses.TERMS}
    got = losses.weighted_terms(cfg, means, jnp.asarray(1.0))
    for term in ("kl_c", "logit_mog", "dirichlet", "diversity"):
        assert float(got[term]) == 0.0


def test_l1_counts_weight_matrices_only():
    params = {"dense": {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([5.0])},
              "prior": {"embeddings": jnp.ones((2, 2)), "pi_logits": jnp.ones(2)},
              "pseudo": {"pseudo_inputs": jnp.ones((2, 2, 2))}}
    assert float(losses.l1_penalty(params)) == 3.0


# Optimiser --------------------------------------------------------------------------------------------

def test_vamp_pseudo_inputs_get_a_real_learning_rate_scale():
    """Adam's first step moves every parameter by about lr·sign(g) whatever the gradient's size, so scaling the
    gradient would change nothing: the pseudo-inputs must move by lr·scale."""
    cfg = model_config(prior_type="vamp", learning_rate=0.01, vamp_pseudo_lr_scale=0.1, weight_decay=0.0,
                       grad_clip_norm=None)
    optimizer = optimizer_mod.make_optimizer(cfg)
    params = {"encoder": {"kernel": jnp.ones((2, 2))}, "pseudo": {"pseudo_inputs": jnp.ones((3, 2, 2))}}
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 123.0), params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    np.testing.assert_allclose(updates["encoder"]["kernel"], -0.01, rtol=1e-4)
    np.testing.assert_allclose(updates["pseudo"]["pseudo_inputs"], -0.001, rtol=1e-4)


def test_weight_decay_acts_on_weight_matrices_and_clipping_on_the_global_norm():
    cfg = model_config(learning_rate=0.1, weight_decay=0.5, grad_clip_norm=1.0)
    optimizer = optimizer_mod.make_optimizer(cfg)
    params = {"dense": {"kernel": jnp.full((2,), 2.0), "bias": jnp.full((2,), 2.0)}}
    zero_grads = jax.tree_util.tree_map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zero_grads, optimizer.init(params), params)
    np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * 0.5 * 2.0, rtol=1e-5)
    np.testing.assert_allclose(updates["dense"]["bias"], 0.0)
    clip = optax.clip_by_global_norm(1.0)
    big = {"a": jnp.array([30.0, 40.0])}
    clipped, _ = clip.update(big, clip.init(big))
    assert float(optax.tree.norm(clipped)) == pytest.approx(1.0)
