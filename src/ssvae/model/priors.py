"""Priors over the latent z and the component channel c, each with its KL next to it.

Notation (docs/models.md, "Notation"): q(z|x) = N(μ, σ²) with logσ² = `logvar`; q(c|x) = softmax(ℓ) = r
(responsibilities); π = softmax(π-logits) the component weights; K components, D latent dimensions.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


# Gaussians ---------------------------------------------------------------------------------------

def gaussian_log_density(z, mu, logvar):
    """log N(z; μ, σ²) summed over the last axis."""
    return -0.5 * jnp.sum(LOG_2PI + logvar + jnp.square(z - mu) * jnp.exp(-logvar), axis=-1)


def kl_normal_standard(mu, logvar):
    """KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_d (σ² + μ² − 1 − log σ²)."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mu) - 1.0 - logvar, axis=-1)


def kl_normal_unit(mu, logvar, centre):
    """KL(N(μ, σ²) ‖ N(m, I)) = ½ Σ_d (σ² + (μ − m)² − 1 − log σ²)."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mu - centre) - 1.0 - logvar, axis=-1)


def reparameterize(key, mu, logvar):
    """z = μ + σ·ε, ε ~ N(0, I)."""
    return mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)


# Standard prior: p(z) = N(0, I) -------------------------------------------------------------------

def kl_z_standard(mu, logvar):
    """Standard prior: KL_z = KL(q(z|x) ‖ N(0, I)), analytic."""
    return kl_normal_standard(mu, logvar)


# Mixture prior: p(c) = π, p(z|c) = N(0, I) -------------------------------------------------------

class MixturePrior(nn.Module):
    """π-logits (fixed uniform unless `learnable`) and component embeddings e_c ∈ ℝ^E that condition the decoder."""

    num_components: int
    embedding_dim: int
    learnable: bool

    def setup(self):
        self.pi_logits = self.param("pi_logits", nn.initializers.zeros, (self.num_components,))
        self.embeddings = self.param("embeddings", nn.initializers.normal(1.0),
                                     (self.num_components, self.embedding_dim))

    def log_pi(self):
        """log π = log softmax(π-logits); no gradient unless π is learnable."""
        logits = self.pi_logits if self.learnable else jax.lax.stop_gradient(self.pi_logits)
        return jax.nn.log_softmax(logits)

    def __call__(self):
        return self.log_pi(), self.embeddings


def kl_z_mixture(mu, logvar, r=None):
    """Mixture prior: KL_z = KL(q(z|x) ‖ N(0, I)) (shared layout); Σ_k r_k KL(q(z_k|x) ‖ N(0, I)) (decentralized)."""
    kl = kl_normal_standard(mu, logvar)
    return kl if mu.ndim == 2 else jnp.sum(r * kl, axis=-1)


def dirichlet_penalty(log_pi, alpha, weight):
    """Dirichlet(α) MAP penalty: dirichlet_weight · (−(α − 1) Σ_k log π_k)."""
    return weight * (-(alpha - 1.0) * jnp.sum(log_pi))


# Geometric MoG: p(z|c) = N(m_c, I), fixed centres ------------------------------------------------
#
# The fixed geometry renames components faster than the labels can name them: KL_z = Σ_k r_k KL(q ‖ N(m_k, I))
# pulls every q(c|x) towards the centre nearest μ, so the components form by latent position alone, and with
# few initial τ counts the labeled counts soon outweigh the assignment and τ's rows follow the geometry. The
# centre layout matters less than holding the assignment; and the further apart the fixed centres, the more
# the pull towards the nearest one overrides the labels. So the centres stay where the arrangement's name says
# (the first two latent dimensions, which the latent plots show), the τ counts default to holding their
# assignment, and the default radius is small (benchmarks/RESULTS.md has the runs behind each choice).

def geometric_centres(num_components: int, latent_dim: int, arrangement: str, radius: float) -> np.ndarray:
    """Fixed centres m_c in the first two latent dimensions: K points on a circle of radius r, or a √K×√K grid
    spanning [−r, r]²; zero elsewhere."""
    centres = np.zeros((num_components, latent_dim), np.float32)
    if arrangement == "circle":
        angles = 2.0 * np.pi * np.arange(num_components) / num_components
        centres[:, 0] = radius * np.cos(angles)
        centres[:, 1] = radius * np.sin(angles)
    elif arrangement == "grid":
        side = math.isqrt(num_components)
        if side * side != num_components:
            raise ValueError(f"the grid arrangement needs a perfect-square number of components, got {num_components}")
        ticks = np.linspace(-radius, radius, side) if side > 1 else np.zeros(1)
        gy, gx = np.meshgrid(ticks, ticks, indexing="ij")
        centres[:, 0] = gx.ravel()
        centres[:, 1] = gy.ravel()
    else:
        raise ValueError(f"unknown geometric arrangement {arrangement!r}")
    return centres


def kl_z_geometric(mu, logvar, r, centres):
    """Geometric MoG: KL_z = Σ_k r_k KL(q(z|x) ‖ N(m_k, I)) (shared μ [B,D] or decentralized μ_k [B,K,D])."""
    mu_k = mu[:, None, :] if mu.ndim == 2 else mu
    logvar_k = logvar[:, None, :] if logvar.ndim == 2 else logvar
    return jnp.sum(r * kl_normal_unit(mu_k, logvar_k, centres[None]), axis=-1)


# VampPrior: p(z) = Σ_k π_k q(z|u_k) --------------------------------------------------------------

class VampPseudoInputs(nn.Module):
    """K learned pseudo-inputs u_k with the image shape; initialised from training data by `vamp_init_pseudo_inputs`."""

    num_components: int
    image_hw: tuple[int, int]

    @nn.compact
    def __call__(self):
        return self.param("pseudo_inputs", nn.initializers.uniform(1.0), (self.num_components, *self.image_hw))


def vamp_init_pseudo_inputs(x_train: np.ndarray, num_components: int, method: str, seed: int) -> np.ndarray:
    """Pseudo-inputs from training images: k-means centres (sklearn KMeans, seeded) or K random distinct images."""
    flat = np.asarray(x_train, np.float32).reshape(len(x_train), -1)
    if num_components > len(flat):
        raise ValueError(f"VampPrior needs at least K={num_components} training images, got {len(flat)}")
    if method == "kmeans":
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        # one thread: KMeans' OpenMP chunks sum in an order that depends on the thread count (centres differ by
        # ~1e-6 between 1 and 2 threads, and training amplifies that), so the same seed gives the same run
        # whatever CPUs the job has
        with threadpool_limits(1):
            centres = KMeans(n_clusters=num_components, n_init=3, random_state=seed).fit(flat).cluster_centers_
    elif method == "random":
        centres = flat[np.random.default_rng(seed).choice(len(flat), num_components, replace=False)]
    else:
        raise ValueError(f"vamp_pseudo_init_method must be kmeans or random, got {method!r}")
    return centres.reshape(num_components, *x_train.shape[1:]).astype(np.float32)


def vamp_class_assignment(pseudo_inputs: np.ndarray, x_labeled: np.ndarray, y_labeled: np.ndarray,
                          num_classes: int) -> np.ndarray:
    """The class each pseudo-input stands for at initialisation, [K] ints: a balanced matching (each class at most
    ceil(K/C) times; scipy's linear_sum_assignment) of the pseudo-inputs to the classes that minimises the summed
    pixel distance from each pseudo-input to the mean labeled image of its class. A class without labeled images
    is matched last. The τ-classifier's initial counts sit on this assignment, so that component k's pseudo-input
    already looks like the class that τ gives it (with the k mod C assignment of interchangeable mixture components,
    a k-means centre of a 3 would start as the component of whichever class k mod C names)."""
    from scipy.optimize import linear_sum_assignment

    k = len(pseudo_inputs)
    flat = np.asarray(pseudo_inputs, np.float64).reshape(k, -1)
    x = np.asarray(x_labeled, np.float64).reshape(len(x_labeled), -1)
    y = np.asarray(y_labeled)
    cost = np.empty((k, num_classes))
    for c in range(num_classes):
        members = x[y == c]
        cost[:, c] = (np.linalg.norm(flat - members.mean(axis=0), axis=1) if len(members)
                      else np.inf)
    finite = np.isfinite(cost)
    cost[~finite] = (cost[finite].max() + 1.0) * 10.0 if finite.any() else 1.0
    slots = -(-k // num_classes)
    rows, cols = linear_sum_assignment(np.tile(cost, (1, slots)))
    assignment = np.empty(k, np.int32)
    assignment[rows] = cols % num_classes
    return assignment


def vamp_log_responsibilities(z, log_pi, pseudo_mu, pseudo_logvar):
    """VampPrior responsibilities in log space: log r_k = log softmax_k(log π_k + log q(z|u_k)), z [B, D]."""
    log_components = gaussian_log_density(z[:, None, :], pseudo_mu[None], pseudo_logvar[None])  # [B, K]
    return jax.nn.log_softmax(log_pi + log_components, axis=-1)


def kl_z_vamp(key, mu, logvar, pseudo_mu, pseudo_logvar, num_samples: int):
    """VampPrior: KL_z ≈ (1/S) Σ_s [log q(z_s|x) − log Σ_k π_k q(z_s|u_k)], z_s ~ q(z|x), π uniform, S fresh samples."""
    eps = jax.random.normal(key, (num_samples, *mu.shape), mu.dtype)
    z = mu[None] + jnp.exp(0.5 * logvar)[None] * eps                                   # [S, B, D]
    log_q = gaussian_log_density(z, mu[None], logvar[None])                            # [S, B]
    log_components = gaussian_log_density(z[:, :, None, :], pseudo_mu[None, None], pseudo_logvar[None, None])
    log_p = jax.nn.logsumexp(log_components, axis=-1) - math.log(pseudo_mu.shape[0])  # [S, B]
    return jnp.mean(log_q - log_p, axis=0)


# The component channel c ------------------------------------------------------------------------

def kl_categorical(logits, log_pi):
    """KL(q(c|x) ‖ π) = Σ_k r_k (log r_k − log π_k), r = softmax(ℓ)."""
    log_r = jax.nn.log_softmax(logits, axis=-1)
    return jnp.sum(jnp.exp(log_r) * (log_r - log_pi), axis=-1)


def logit_mog_penalty(logits, mean, sigma):
    """Logit-MoG: −log Σ_k (1/K) N(ℓ; M·e_k, σ² I), ℓ ∈ ℝ^K the encoder logits, e_k the k-th unit vector."""
    k = logits.shape[-1]
    targets = mean * jnp.eye(k, dtype=logits.dtype)                                    # [K, K]
    sq = jnp.sum(jnp.square(logits[..., None, :] - targets), axis=-1)                  # [..., K]
    log_components = -0.5 * k * math.log(2.0 * math.pi * sigma**2) - sq / (2.0 * sigma**2)
    return -(jax.nn.logsumexp(log_components, axis=-1) - math.log(k))


def usage_entropy(r, weights=None):
    """Entropy of batch-mean usage: H(p̂) = −Σ_k p̂_k log p̂_k, p̂ = mean_b r_b."""
    if weights is None:
        usage = jnp.mean(r, axis=0)
    else:
        usage = jnp.sum(weights[:, None] * r, axis=0) / jnp.maximum(jnp.sum(weights), 1.0)
    return -jnp.sum(usage * jnp.log(jnp.clip(usage, 1e-12, 1.0)))


# Gumbel-softmax routing -------------------------------------------------------------------------

def gumbel_softmax(key, logits, temperature, straight_through: bool):
    """y = softmax((ℓ + g)/T), g = −log(−log u), u ~ U(0, 1); straight-through: one_hot(argmax y) + y − sg(y)."""
    g = jax.random.gumbel(key, logits.shape, logits.dtype)
    y = jax.nn.softmax((logits + g) / temperature, axis=-1)
    return straight_through_one_hot(y) if straight_through else y


def straight_through_one_hot(y):
    """Hard one-hot forward, soft gradient: one_hot(argmax y) + y − sg(y)."""
    hard = jax.nn.one_hot(jnp.argmax(y, axis=-1), y.shape[-1], dtype=y.dtype)
    return hard + y - jax.lax.stop_gradient(y)
