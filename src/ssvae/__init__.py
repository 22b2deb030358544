"""Self-documenting semi-supervised VAE experiments in JAX/Flax/Optax."""


def __getattr__(name: str) -> str:
    # The version has one source, pyproject.toml; it is read from the installed package's metadata on demand.
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("ssvae")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'ssvae' has no attribute {name!r}")
