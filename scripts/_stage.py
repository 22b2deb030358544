"""Shared by the stage scripts: import the library next to them, and set up JAX jobs before JAX loads.

The scripts put this repository's `src/` first on the import path, so a workflow always runs the library
version it was checked out with (also in a `--sdm conda` environment, which carries only the dependencies).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ssvae import compute  # noqa: E402


def jax_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--validated", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jax-cache", default="auto",
                   help="JAX's persistent compilation cache: a folder, `auto` or `none` (see stages.jax_cache_dir)")
    return p


def setup_jax(args) -> None:
    compute.limit_threads(args.threads, salt=args.run_dir)
    from ssvae import stages  # after the thread limit: it imports numpy

    cache = stages.jax_cache_dir(args.jax_cache, results=Path(args.run_dir).parent)
    if cache:
        compute.enable_compilation_cache(cache)
