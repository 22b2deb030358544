"""Every loss term of docs/models.md ("Loss terms"), per sample or per batch, and how they add up to the
training objective.

Terms (names used in history.csv as train_<term> / val_<term>):
  reconstruction  −log p(x|z, c) summed over pixels: BCE on logits, Σ_p (x − x̂)², or the heteroscedastic
                  Gaussian NLL; with K decoder outputs the expectation Σ_k r_k (·) under q(c|x)
  kl_z            KL(q(z|x) ‖ p(z)) for the prior (see priors.py)
  kl_c            KL(q(c|x) ‖ π) (c_regularizer categorical or both)
  logit_mog       Gaussian-mixture penalty on the component logits (c_regularizer logit_mog or both)
  dirichlet       Dirichlet(α) MAP penalty on π
  diversity       entropy of the batch-mean usage H(mean_b r_b)
  classification  mean over labeled samples of −log p(y|x) (head or τ-classifier)
  entropy         mean over unlabeled samples of H(p(y|x)) = −Σ_y p(y|x) log p(y|x) (entropy minimisation)
  consistency     mean over samples of Σ_y (p(y|x') − p(y|x''))², two passes over x, each its own shift and z (training)
  l1              Σ|θ| over weight matrices
`weighted_terms` turns their batch means into the contributions to the loss (each × its weight, the c-terms also
× the KL_c anneal scale s_c, schedules.py), and the loss is the sum of the contributions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ssvae.config import ModelConfig
from ssvae.model import classifiers, priors

TERMS = ("reconstruction", "kl_z", "kl_c", "logit_mog", "dirichlet", "diversity", "classification", "entropy",
         "consistency", "l1")
PER_SAMPLE_TERMS = ("reconstruction", "kl_z", "kl_c", "logit_mog", "classification", "entropy")
UNSUPERVISED_TERMS = tuple(t for t in TERMS if t != "classification")


# Reconstruction ---------------------------------------------------------------------------------

def bce_with_logits(x, logits):
    """Bernoulli NLL on logits l, summed over pixels: Σ_p [max(l, 0) − x·l + log(1 + e^{−|l|})]."""
    per_pixel = jnp.maximum(logits, 0.0) - x * logits + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    return jnp.sum(per_pixel, axis=(-2, -1))


def squared_error(x, mean):
    """MSE reconstruction, summed over pixels: Σ_p (x − x̂)²."""
    return jnp.sum(jnp.square(x - mean), axis=(-2, -1))


def gaussian_nll(x, mean, sigma):
    """Heteroscedastic Gaussian NLL with a per-image σ: Σ_p [(x − μ)² / (2σ²) + log σ + ½ log 2π]."""
    sigma = sigma[..., None, None]
    per_pixel = jnp.square(x - mean) / (2.0 * jnp.square(sigma)) + jnp.log(sigma) + 0.5 * math.log(2.0 * math.pi)
    return jnp.sum(per_pixel, axis=(-2, -1))


def likelihood_mean(cfg: ModelConfig, out):
    """The decoder's mean image in [0, 1]: sigmoid of its output (Bernoulli logits, or the Gaussian mean's
    pre-activation). The only place a sigmoid is applied to decoder outputs."""
    return jax.nn.sigmoid(out)


def reconstruction_nll(cfg: ModelConfig, x, out, sigma):
    """Per-sample reconstruction term for decoder output `out` [B, (K,) H, W] against images x [B, H, W]."""
    if out.ndim == x.ndim + 1:
        x = x[:, None]
    if cfg.use_heteroscedastic_decoder:
        return gaussian_nll(x, likelihood_mean(cfg, out), sigma)
    if cfg.reconstruction_loss == "bce":
        return bce_with_logits(x, out)
    return squared_error(x, likelihood_mean(cfg, out))


def reconstruction_term(cfg: ModelConfig, x, outputs):
    """Per-sample reconstruction: one decoder output, or Σ_k r_k NLL(x, x̂_k) over K outputs."""
    nll = reconstruction_nll(cfg, x, outputs.recon, outputs.sigma)
    if outputs.recon_weights is None:
        return nll
    return jnp.sum(outputs.recon_weights * nll, axis=-1)


# KL terms ---------------------------------------------------------------------------------------

def kl_z_term(cfg: ModelConfig, outputs, key):
    """Per-sample KL_z for the configured prior (`key` feeds the VampPrior's Monte-Carlo samples)."""
    if cfg.prior_type == "standard":
        return priors.kl_z_standard(outputs.mu, outputs.logvar)
    if cfg.prior_type == "mixture":
        return priors.kl_z_mixture(outputs.mu, outputs.logvar, outputs.r)
    if cfg.prior_type == "geometric_mog":
        centres = priors.geometric_centres(cfg.num_components, cfg.latent_dim, cfg.geometric_arrangement,
                                           cfg.geometric_radius)
        return priors.kl_z_geometric(outputs.mu, outputs.logvar, outputs.r, jnp.asarray(centres))
    if cfg.prior_type == "vamp":
        return priors.kl_z_vamp(key, outputs.mu, outputs.logvar, outputs.pseudo_mu, outputs.pseudo_logvar,
                                cfg.vamp_num_samples_kl)
    raise ValueError(f"unknown prior_type {cfg.prior_type!r}")


def uses_categorical(cfg: ModelConfig) -> bool:
    return cfg.is_mixture and cfg.c_regularizer in ("categorical", "both")


def uses_logit_mog(cfg: ModelConfig) -> bool:
    return cfg.is_mixture and cfg.c_regularizer in ("logit_mog", "both")


# Classification ---------------------------------------------------------------------------------

def classification_nll(cfg: ModelConfig, outputs, y, tau):
    """Per-sample −log p(y|x) for known labels (y ≥ 0), 0 elsewhere: head cross-entropy or τ loss."""
    if cfg.use_tau_classifier:
        return classifiers.tau_nll(outputs.r, tau, y)
    return classifiers.head_nll(outputs.class_logits, y)


def prediction_entropy(probs):
    """Per-sample entropy of p(y|x): H = −Σ_y p log p (0·log 0 = 0)."""
    return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.maximum(probs, 1e-30)), 0.0), axis=-1)


def consistency_term(probs, probs_other, weights):
    """Batch mean over the samples that count of Σ_y (p(y|x') − p(y|x''))² (both views carry gradients)."""
    return classifiers.masked_mean(jnp.sum(jnp.square(probs - probs_other), axis=-1), weights)


def class_probabilities(cfg: ModelConfig, outputs, tau):
    """p(y|x): softmax of the head, or r·τ."""
    if cfg.use_tau_classifier:
        return classifiers.tau_predict(outputs.r, tau)
    return jax.nn.softmax(outputs.class_logits, axis=-1)


# L1 ---------------------------------------------------------------------------------------------

def is_weight_matrix(path) -> bool:
    """Dense/Conv kernels: what L1 and weight decay act on (not biases, π, embeddings or pseudo-inputs)."""
    last = path[-1]
    return getattr(last, "key", getattr(last, "name", None)) == "kernel"


def l1_penalty(params):
    """L1 = Σ|θ| over weight matrices."""
    leaves = [jnp.sum(jnp.abs(leaf)) for path, leaf in jax.tree_util.tree_leaves_with_path(params)
              if is_weight_matrix(path)]
    return sum(leaves) if leaves else jnp.asarray(0.0)


# Assembling the objective -----------------------------------------------------------------------

def per_sample_terms(cfg: ModelConfig, outputs, x, y, tau, key) -> dict:
    """The per-sample terms, each [B], unweighted (classification is 0 where the label is unknown)."""
    zeros = jnp.zeros(x.shape[0], jnp.float32)
    terms = {
        "reconstruction": reconstruction_term(cfg, x, outputs),
        "kl_z": kl_z_term(cfg, outputs, key),
        "kl_c": priors.kl_categorical(outputs.logits, outputs.log_pi) if cfg.is_mixture else zeros,
        "logit_mog": (priors.logit_mog_penalty(outputs.logits, cfg.c_logit_prior_mean, cfg.c_logit_prior_sigma)
                      if cfg.is_mixture else zeros),
        "classification": classification_nll(cfg, outputs, y, tau),
        "entropy": prediction_entropy(class_probabilities(cfg, outputs, tau)) if cfg.entropy_weight > 0 else zeros,
    }
    return terms


def batch_terms(cfg: ModelConfig, params, outputs, weights) -> dict:
    """The batch-level terms, unweighted: Dirichlet penalty, usage entropy, L1."""
    zero = jnp.asarray(0.0, jnp.float32)
    dirichlet = zero
    if cfg.uses_dirichlet:
        dirichlet = priors.dirichlet_penalty(outputs.log_pi, cfg.dirichlet_alpha, 1.0)
    diversity = priors.usage_entropy(outputs.r, weights) if cfg.is_mixture else zero
    l1 = l1_penalty(params) if cfg.l1_weight > 0 else zero
    return {"dirichlet": dirichlet, "diversity": diversity, "l1": l1}


def batch_means(terms: dict, weights, labeled) -> dict:
    """Batch means of the per-sample terms: over the samples that count (`weights`), classification over
    the labeled ones, entropy over the others."""
    means = {}
    for name, values in terms.items():
        mask = {"classification": labeled, "entropy": weights - labeled}.get(name, weights)
        means[name] = classifiers.masked_mean(values, mask)
    return means


def weighted_terms(cfg: ModelConfig, means: dict, c_scale) -> dict:
    """Each term's contribution to the loss: recon_weight·rec, kl_weight·KL_z, kl_c_weight·s_c·KL_c,
    c_logit_prior_weight·s_c·logit-MoG, dirichlet_weight·penalty, component_diversity_weight·H(p̂),
    label_weight·classification, entropy_weight·H(p(y|x)), consistency_weight·consistency, l1_weight·L1 (terms
    a config does not use contribute 0)."""
    weights = {
        "reconstruction": cfg.recon_weight,
        "kl_z": cfg.kl_weight,
        "kl_c": cfg.kl_c_weight * c_scale if uses_categorical(cfg) else None,
        "logit_mog": cfg.c_logit_prior_weight * c_scale if uses_logit_mog(cfg) else None,
        "dirichlet": cfg.dirichlet_weight if cfg.uses_dirichlet else None,
        "diversity": cfg.component_diversity_weight if cfg.is_mixture else None,
        "classification": cfg.label_weight,
        "entropy": cfg.entropy_weight,
        "consistency": cfg.consistency_weight,
        "l1": cfg.l1_weight,
    }
    # A term a config does not use contributes an exact 0 (never 0·NaN).
    return {name: jnp.zeros_like(means[name]) if weights[name] is None else weights[name] * means[name]
            for name in TERMS}


def total(contributions: dict, terms=TERMS):
    """Loss = Σ of the terms' contributions."""
    return sum(contributions[name] for name in terms)
