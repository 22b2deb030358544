"""Shared by the JAX stages: limit threads and enable the compilation cache before JAX is imported."""

import argparse

from ssvae import compute


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--validated", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jax-cache", default=None, help="folder of JAX's persistent compilation cache")
    return p


def setup(args) -> None:
    compute.limit_threads(args.threads, salt=args.run_dir)
    if args.jax_cache:
        compute.enable_compilation_cache(args.jax_cache)
