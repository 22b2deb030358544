"""Self-documenting semi-supervised VAE experiments in JAX/Flax/Optax."""

__version__ = "0.1.0"
