"""Process setup before JAX is imported: how many CPU threads a job may use, and the shared compilation cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

JAX_CACHE_ENV = "SSVAE_JAX_CACHE"


def job_cpus(requested: int, environ=os.environ) -> int:
    """The CPUs this job may use: SLURM's allocation (SLURM_CPUS_PER_TASK) when inside a SLURM job, else the
    requested threads (Snakemake's `threads`), never more than the CPUs the process may run on."""
    allowed = len(os.sched_getaffinity(0))
    slurm = environ.get("SLURM_CPUS_PER_TASK")
    count = int(slurm) if slurm and slurm.isdigit() and int(slurm) > 0 else int(requested)
    return max(1, min(count, allowed))


def limit_threads(threads: int, salt: str = "", environ=os.environ) -> list[int]:
    """Pin this process to the job's CPUs (`job_cpus`) so XLA sizes its thread pool to match; returns them.

    XLA reads the number of schedulable CPUs (the affinity mask) when JAX starts, so this must run before
    `import jax`. Jobs running side by side start at different CPUs (chosen by `salt`) to spread the load; when
    the mask already is the allocation (SLURM with task affinity or cgroups), nothing changes. No XLA flag is
    set: XLA flags are part of the compilation cache key, and jobs with different thread counts (train, evaluate)
    must share compiled executables.
    """
    allowed = sorted(os.sched_getaffinity(0))
    count = job_cpus(threads, environ)
    if count >= len(allowed):
        return allowed
    start = int(hashlib.sha256(salt.encode()).hexdigest(), 16) % len(allowed)
    chosen = [allowed[(start + i) % len(allowed)] for i in range(count)]
    os.sched_setaffinity(0, chosen)
    return chosen


def cache_location(flag: str | None, environ=os.environ) -> str | None:
    """The compilation cache folder: the `--jax-cache` flag, else $SSVAE_JAX_CACHE; "" or "none" turns it off."""
    value = flag if flag is not None else environ.get(JAX_CACHE_ENV)
    if value is None or value.strip().lower() in ("", "none", "off"):
        return None
    return value


def enable_compilation_cache(cache_dir: str | Path):
    """Share compiled executables between jobs through `cache_dir` (compiling.SharedFileCache: atomic,
    checksummed entries; one job compiles a program while another waiting for the same one loads it)."""
    from . import compiling

    return compiling.install(cache_dir)
