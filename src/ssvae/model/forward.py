"""The deterministic pass over a split (z = μ, no noise, no dropout), in fixed-size chunks: one compiled function
that training's validation and the evaluate stage both run, so evaluate loads it from the persistent
compilation cache instead of compiling it again.

The pass takes the parameters in their flat `params.ParamGroups` layout, the τ counts, a chunk of images and
labels (−1 where unknown), the Gumbel temperature and the key of the VampPrior's Monte-Carlo KL, all as
arguments; its shapes depend on the architecture and the chunk size only (`chunk_size`).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ssvae.config import ModelConfig
from ssvae.model import classifiers, losses
from ssvae.model.params import ParamGroups
from ssvae.model.vae import build_model
from ssvae.runtime.compiling import fast_compile_options

# Largest chunk of the pass: conv activations of 256 images are already a few hundred MB with K decoders.
MAX_CHUNK = {"dense": 1024, "conv": 256}


def chunk_size(cfg: ModelConfig, batch_size: int) -> int:
    """The pass's chunk: `evaluation.batch_size`, at most MAX_CHUNK for the model kind. Validation and
    evaluation use the same, so they share one executable."""
    return max(1, min(int(batch_size), MAX_CHUNK["conv" if cfg.is_conv else "dense"]))


def split_chunks(x: np.ndarray, y: np.ndarray | None, chunk: int):
    """Images [N, H, W] and labels [N] (−1 if None) as padded host arrays [n_chunks, chunk, ...], with weights
    (1 for real images, 0 for padding)."""
    n = len(x)
    num_chunks = max(1, -(-n // chunk))
    pad = num_chunks * chunk - n
    x = np.concatenate([np.asarray(x, np.float32), np.zeros((pad, *x.shape[1:]), np.float32)])
    y = np.full(n, -1, np.int32) if y is None else np.asarray(y, np.int32)
    y = np.concatenate([y, np.full(pad, -1, np.int32)])
    w = (np.arange(num_chunks * chunk) < n).astype(np.float32)
    return (x.reshape(num_chunks, chunk, *x.shape[1:]), y.reshape(num_chunks, chunk),
            w.reshape(num_chunks, chunk))


class ChunkPass:
    """The compiled deterministic pass of one architecture over chunks of `chunk` images."""

    def __init__(self, cfg: ModelConfig, chunk: int, layout: ParamGroups | None = None):
        self.cfg = cfg
        self.chunk = chunk
        self.model = build_model(cfg)
        self.layout = layout or ParamGroups.for_config(cfg)
        self._compiled = None
        self.compile_seconds = 0.0

    def outputs(self, groups, counts, x, y, temperature, key) -> dict:
        """Per-image outputs of one chunk: z (= μ), its log-variance, p(y|x), responsibilities r, the mean
        reconstruction (Σ_k r_k x̂_k with K decoder outputs), σ, the per-sample loss terms, and log π."""
        cfg = self.cfg
        params = self.layout.unflatten(groups)
        outputs = self.model.apply({"params": params}, x, None, temperature)
        tau = classifiers.tau_matrix(counts) if cfg.use_tau_classifier else None
        terms = losses.per_sample_terms(cfg, outputs, x, y, tau, key)
        mean = losses.likelihood_mean(cfg, outputs.recon)
        sigma = outputs.sigma
        if outputs.recon_weights is not None:
            mean = jnp.einsum("bk,bkhw->bhw", outputs.recon_weights, mean)
            if sigma is not None:
                sigma = jnp.sum(outputs.recon_weights * sigma, axis=-1)
        result = {"z": outputs.z_mean, "z_logvar": outputs.z_logvar,
                  "y_prob": losses.class_probabilities(cfg, outputs, tau), "recon": mean,
                  "terms": {t: terms[t] for t in losses.PER_SAMPLE_TERMS}}
        if outputs.r is not None:
            result["responsibilities"] = outputs.r
        if sigma is not None:
            result["sigma"] = sigma
        if outputs.log_pi is not None:
            result["log_pi"] = outputs.log_pi
        return result

    def lower(self, groups, counts, key):
        """The pass lowered for these parameter and τ-count shapes, and the options it compiles with (the same
        wherever it runs, training's validation or evaluate: one cache entry)."""
        spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (groups, counts))
        x = jax.ShapeDtypeStruct((self.chunk, *self.cfg.input_hw), jnp.float32)
        y = jax.ShapeDtypeStruct((self.chunk,), jnp.int32)
        scalar = jax.ShapeDtypeStruct((), jnp.float32)
        key_spec = jax.ShapeDtypeStruct(np.shape(key), jnp.uint32)
        return jax.jit(self.outputs).lower(*spec, x, y, scalar, key_spec), fast_compile_options()

    def use(self, compiled) -> None:
        self._compiled = compiled

    def compile(self, groups, counts, key) -> None:
        """Compile (or load from the persistent cache) the pass for these parameter and τ-count shapes."""
        start = time.perf_counter()
        lowered, options = self.lower(groups, counts, key)
        self._compiled = lowered.compile(options)
        self.compile_seconds += time.perf_counter() - start

    def __call__(self, groups, counts, x_chunk, y_chunk, temperature, key) -> dict:
        if self._compiled is None:
            self.compile(groups, counts, key)
        return self._compiled(groups, counts, x_chunk, y_chunk, np.float32(temperature), key)

    def run(self, groups, counts, xs, ys, temperature, key) -> list[dict]:
        """The pass over a list of image chunks and their labels (each [chunk, ...]); device outputs, no sync."""
        return [self(groups, counts, x, y, temperature, key) for x, y in zip(xs, ys)]
