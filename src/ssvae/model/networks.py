"""Encoders and decoders: dense (hidden_dims, leaky ReLU) and conv (32 s2, 64 s2, 128 s1, 3×3) with mirrored decoders.

Images are [B, H, W] in [0, 1]; the conv pair works for any H, W divisible by 4 (8×8 digits, 28×28 MNIST).
A decoder conditioned on the component c (concat at its input, FiLM or CIN at every hidden layer) runs once per
(latent, component) pair it is asked for; an unconditioned one once per latent.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LEAKY_SLOPE = 0.2
CONV_CHANNELS = (32, 64, 128)


def leaky_relu(x):
    return nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


def depth_to_space(x, factor: int = 2):
    """[B, h, w, f²·C] → [B, f·h, f·w, C] (pixel shuffle)."""
    b, h, w, c = x.shape
    c_out = c // (factor * factor)
    x = x.reshape(b, h, w, factor, factor, c_out)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * factor, w * factor, c_out)


class UpConv(nn.Module):
    """×2 up-sampling as a sub-pixel convolution: a 2×2 conv to 4·C channels at low resolution, then a pixel
    shuffle. Same receptive field as a 4×4 stride-2 transposed convolution, and several times faster on XLA:CPU,
    whose transposed (input-dilated) convolutions are slow."""

    features: int

    @nn.compact
    def __call__(self, x):
        return depth_to_space(nn.Conv(4 * self.features, (2, 2), padding="SAME")(x))


# Encoders ---------------------------------------------------------------------------------------

class DenseTrunk(nn.Module):
    """Flatten, then Dense(h) + leaky ReLU for each h in hidden_dims."""

    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden_dims:
            h = leaky_relu(nn.Dense(width)(h))
        return h


class ConvTrunk(nn.Module):
    """Conv 32 s2 → 64 s2 → 128 s1 (3×3, SAME, leaky ReLU), flattened."""

    @nn.compact
    def __call__(self, x):
        h = x[..., None]
        for channels, stride in zip(CONV_CHANNELS, (2, 2, 1)):
            h = leaky_relu(nn.Conv(channels, (3, 3), strides=(stride, stride), padding="SAME")(h))
        return h.reshape(h.shape[0], -1)


class Encoder(nn.Module):
    """x → (μ, logσ², ℓ): q(z|x) = N(μ, σ²) ([B, D], or [B, K, D] for the decentralized layout) and component
    logits ℓ [B, K] (None without a component channel)."""

    encoder_type: str
    hidden_dims: Sequence[int]
    latent_dim: int
    num_components: int  # 0: no component channel
    decentralized: bool = False

    @nn.compact
    def __call__(self, x):
        h = ConvTrunk()(x) if self.encoder_type == "conv" else DenseTrunk(self.hidden_dims)(x)
        copies = self.num_components if self.decentralized else 1
        mu = nn.Dense(copies * self.latent_dim, name="z_mean")(h)
        logvar = nn.Dense(copies * self.latent_dim, name="z_logvar")(h)
        if self.decentralized:
            mu = mu.reshape(-1, copies, self.latent_dim)
            logvar = logvar.reshape(-1, copies, self.latent_dim)
        logits = nn.Dense(self.num_components, name="component_logits")(h) if self.num_components else None
        return mu, logvar, logits


# Conditioning on component embeddings e_c --------------------------------------------------------

class Conditioner(nn.Module):
    """Per-layer decoder conditioning on e_c: FiLM h·γ + β, or CIN IN(h)·γ + β (instance norm over H, W for conv
    features, over the features for dense ones); γ = 1 + γ̃ and (γ̃, β) = Dense(e_c) with a zero-initialised
    kernel, so both start as the identity (γ = 1, β = 0)."""

    mode: str  # film | cin
    spatial: bool

    @nn.compact
    def __call__(self, h, e):
        features = h.shape[-1]
        gamma_beta = nn.Dense(2 * features, kernel_init=nn.initializers.zeros, name="gamma_beta")(e)
        gamma, beta = jnp.split(gamma_beta, 2, axis=-1)
        if self.spatial:
            gamma, beta = gamma[:, None, None, :], beta[:, None, None, :]
        if self.mode == "cin":
            axes = (1, 2) if self.spatial else (-1,)
            mean = jnp.mean(h, axis=axes, keepdims=True)
            var = jnp.var(h, axis=axes, keepdims=True)
            h = (h - mean) * jax.lax.rsqrt(var + 1e-5)
        elif self.mode != "film":
            raise ValueError(f"unknown per-layer decoder conditioning {self.mode!r}")
        return h * (1.0 + gamma) + beta


# Output heads -----------------------------------------------------------------------------------

def heteroscedastic_sigma(s, sigma_min: float, sigma_max: float):
    """Per-image σ = clip(σ_min + softplus(s), σ_min, σ_max); s starts where σ = (σ_min + σ_max) / 2."""
    return jnp.clip(sigma_min + jax.nn.softplus(s), sigma_min, sigma_max)


class OutputHead(nn.Module):
    """Features → per-pixel output [N, H, W] (Bernoulli logits, or the Gaussian mean's pre-sigmoid) and, for the
    heteroscedastic decoder, the per-image σ [N] (from the features, globally pooled for conv). Conv features
    come at half the image size and are up-sampled to pixels by a sub-pixel convolution."""

    image_hw: tuple[int, int]
    spatial: bool
    heteroscedastic: bool
    sigma_min: float
    sigma_max: float

    @nn.compact
    def __call__(self, h):
        n = h.shape[0]
        if self.spatial:
            # the last ×2 up-sampling (mirror of the encoder's first stride-2 conv) straight to pixels
            out = depth_to_space(nn.Conv(4, (3, 3), padding="SAME", name="pixels")(h))[..., 0]
            pooled = jnp.mean(h, axis=(1, 2))
        else:
            out = nn.Dense(self.image_hw[0] * self.image_hw[1], name="pixels")(h).reshape(n, *self.image_hw)
            pooled = h
        if not self.heteroscedastic:
            return out, None
        # Start σ midway between its bounds: softplus(0) = 0.69 would put σ_min + softplus(s) above a typical
        # σ_max, where the clip has no gradient and σ would stay at σ_max for good.
        start = math.log(math.expm1(0.5 * (self.sigma_max - self.sigma_min)))
        s = nn.Dense(1, bias_init=nn.initializers.constant(start), name="log_sigma")(pooled)[:, 0]
        return out, heteroscedastic_sigma(s, self.sigma_min, self.sigma_max)


class Decoder(nn.Module):
    """p(x|z, c), mirroring the encoder: dense (Dense + leaky ReLU over reversed hidden_dims), or conv
    (Dense → H/4×W/4×128, conv 3×3 to 64, ×2 up to 32 channels at H/2×W/2, ×2 up to the pixels; leaky ReLU), then
    the output head.

    Conditioning on the component embedding e_c: `concat` feeds [z; e_c] to the first layer; `film` and `cin`
    modulate every hidden layer."""

    decoder_type: str
    hidden_dims: Sequence[int]
    image_hw: tuple[int, int]
    conditioning: str  # none | concat | film | cin
    heteroscedastic: bool
    sigma_min: float
    sigma_max: float

    @nn.compact
    def __call__(self, z, e=None):
        """z [N, D], e [N, E] (None without conditioning) → (out [N, H, W], σ [N] or None)."""
        spatial = self.decoder_type == "conv"
        per_layer = self.conditioning in ("film", "cin")

        def condition(h):
            return Conditioner(self.conditioning, spatial)(h, e) if per_layer else h

        h = jnp.concatenate([z, e], axis=-1) if self.conditioning == "concat" else z
        if spatial:
            h4, w4 = self.image_hw[0] // 4, self.image_hw[1] // 4
            h = leaky_relu(nn.Dense(h4 * w4 * CONV_CHANNELS[2])(h)).reshape(z.shape[0], h4, w4, CONV_CHANNELS[2])
            h = condition(h)
            h = condition(leaky_relu(nn.Conv(CONV_CHANNELS[1], (3, 3), padding="SAME")(h)))
            h = condition(leaky_relu(UpConv(CONV_CHANNELS[0])(h)))
        else:
            for width in reversed(self.hidden_dims):
                h = condition(leaky_relu(nn.Dense(width)(h)))
        return OutputHead(self.image_hw, spatial, self.heteroscedastic, self.sigma_min, self.sigma_max)(h)
