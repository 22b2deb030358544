"""What a trained model says about a split: the best checkpoint, loaded without any of the training machinery,
run through the deterministic pass that validation compiled (forward.ChunkPass, the same executable from the
persistent cache), once; every metric and plot reuses its outputs."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ssvae.config import Experiment, ModelConfig
from ssvae.evaluation.predictions import Predictions
from ssvae.model import checkpoints, classifiers, forward, losses, priors
from ssvae.model.params import ParamGroups
from ssvae.model.rng import key as prng_key
from ssvae.model.rng import run_keys
from ssvae.model.vae import build_model
from ssvae.runtime.compiling import fast_compile_options

DEFAULT_BATCH_SIZE = 1024


class EvaluationPrograms:
    """The programs only evaluate runs besides the shared pass: π and τ, and images sampled from the prior.

    Compiled ahead of time with the options the rest of the deterministic side uses, so that training can put
    them into the persistent cache (`lowered`), compiled beside its own programs, and evaluate loads them."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.model = build_model(cfg)

    def prior_and_tau(self, params, counts):
        """(log π [K] or None, τ [K, C] or None)."""
        cfg = self.cfg
        log_pi = None
        if cfg.has_component_embeddings:
            log_pi = self.model.apply({"params": params}, method="log_pi")
        elif cfg.is_vamp:
            log_pi = jnp.full((cfg.num_components,), -jnp.log(cfg.num_components), jnp.float32)
        tau = classifiers.tau_matrix(counts) if cfg.use_tau_classifier else None
        return log_pi, tau

    def sample(self, params, key, n: int):
        """n images per component drawn from the prior, decoded to their mean: [K or 1, n, H, W]."""
        cfg = self.cfg
        if not cfg.is_mixture:
            z = jax.random.normal(key, (1, n, cfg.latent_dim))
            components = None
        else:
            k = cfg.num_components
            eps = jax.random.normal(key, (k, n, cfg.latent_dim))
            if cfg.is_vamp:
                mu, logvar = self.model.apply({"params": params}, method="pseudo_posteriors")
                z = mu[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
            elif cfg.prior_type == "geometric_mog":
                centres = priors.geometric_centres(k, cfg.latent_dim, cfg.geometric_arrangement,
                                                   cfg.geometric_radius)
                z = jnp.asarray(centres)[:, None] + eps
            else:
                z = eps
            components = jnp.repeat(jnp.arange(k), n)
        rows = z.shape[0]
        out, _ = self.model.apply({"params": params}, z.reshape(rows * n, -1), components, method="generate")
        return losses.likelihood_mean(cfg, out).reshape(rows, n, *cfg.input_hw)

    def lowered(self, params, counts, n: int) -> list:
        """[(lowered, compiler options)] of both programs for these parameter (tree) and τ-count shapes."""
        spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (params, counts))
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        options = fast_compile_options()
        return [(jax.jit(self.prior_and_tau).lower(*spec), options),
                (jax.jit(self.sample, static_argnums=2).lower(spec[0], key, n), options)]


class TrainedModel:
    """The best checkpoint of a run, ready to predict and sample.

    pi:  π [K] of a mixture-based prior (uniform for vamp), else None
    tau: τ [K, C] of the τ-classifier, else None
    """

    def __init__(self, cfg: ModelConfig, params, tau_counts: np.ndarray | None, meta: dict,
                 layout: ParamGroups | None = None):
        self.cfg = cfg
        self.layout = layout or ParamGroups.for_config(cfg)
        params = jax.tree_util.tree_map(np.asarray, params)
        self.groups = jax.device_put(self.layout.flatten(params))
        self.params = jax.device_put(params)
        self.tau_counts = None if tau_counts is None else np.asarray(tau_counts, np.float32)
        self._counts = jax.device_put(self.tau_counts if self.tau_counts is not None
                                      else np.zeros((0, 0), np.float32))
        self.meta = meta
        self.temperature = float(meta.get("gumbel_temperature", cfg.gumbel_temperature))
        self._eval_key = run_keys(cfg.random_seed)["eval"]
        self._passes: dict[int, forward.ChunkPass] = {}
        self._programs = EvaluationPrograms(cfg)
        self._samplers: dict[int, object] = {}
        start = time.perf_counter()
        (prior, options), _ = self._programs.lowered(self.params, self._counts, 1)
        log_pi, tau = jax.device_get(prior.compile(options)(self.params, self._counts))
        self._other_compile_seconds = time.perf_counter() - start
        self.pi = None if log_pi is None else np.exp(np.asarray(log_pi))
        self.tau = None if tau is None else np.asarray(tau)

    @property
    def compile_seconds(self) -> float:
        return self._other_compile_seconds + sum(p.compile_seconds for p in self._passes.values())

    def predict(self, x: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> Predictions:
        """The deterministic pass over images x [N, H, W] (z = μ, no noise, no dropout), in chunks of
        forward.chunk_size(cfg, batch_size) images."""
        chunk = forward.chunk_size(self.cfg, batch_size)
        if chunk not in self._passes:
            self._passes[chunk] = forward.ChunkPass(self.cfg, chunk, self.layout)
        n = len(x)
        xs, ys, _ = forward.split_chunks(np.asarray(x, np.float32), None, chunk)
        chunks = jax.device_get(self._passes[chunk].run(self.groups, self._counts, list(xs), list(ys),
                                                        self.temperature, self._eval_key))

        def cat(name):
            if name not in chunks[0]:
                return None
            return np.concatenate([c[name] for c in chunks])[:n]

        terms = {t: np.concatenate([c["terms"][t] for c in chunks])[:n]
                 for t in ("reconstruction", "kl_z") + (("kl_c",) if self.cfg.is_mixture else ())}
        return Predictions(z=cat("z"), z_logvar=cat("z_logvar"), y_prob=cat("y_prob"),
                           responsibilities=cat("responsibilities"), recon=cat("recon"), sigma=cat("sigma"),
                           terms=terms)

    def sample(self, n_per_component: int, seed: int = 0) -> np.ndarray:
        """Images drawn from the prior, decoded to their mean in [0, 1]: [K, n, H, W] for mixture-based priors
        (row k from component k: N(0, I) or N(m_k, I) routed to e_k, or q(z|u_k) for vamp), [1, n, H, W] else."""
        n = int(n_per_component)
        if n not in self._samplers:
            start = time.perf_counter()
            _, (lowered, options) = self._programs.lowered(self.params, self._counts, n)
            self._samplers[n] = lowered.compile(options)
            self._other_compile_seconds += time.perf_counter() - start
        return np.asarray(self._samplers[n](self.params, prng_key(seed)))


def load_model(run_dir: str | Path, experiment: Experiment) -> TrainedModel:
    """The run's best model from `run_dir/checkpoints/best.msgpack` (CheckpointError names a damaged file)."""
    cfg = experiment.model
    layout = ParamGroups.for_config(cfg)
    path = Path(run_dir) / "checkpoints" / "best.msgpack"
    try:
        params, counts, meta = checkpoints.load_best(path, params_template=layout.template)
    except checkpoints.CheckpointError as exc:
        raise checkpoints.CheckpointError(
            f"{exc}. It holds the run's best model; to recover it, train the run again: "
            f"snakemake --cores 2 --forcerun {path} (training is deterministic: the same numbers come back)") from exc
    # the layout training validated with, so that the pass is the executable training compiled
    layout = ParamGroups(layout.template, flat=meta.get("layout", "flat") == "flat")
    return TrainedModel(cfg, params, counts, meta, layout)
