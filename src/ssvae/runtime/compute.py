"""Process setup before JAX is imported: how many CPU threads a job may use, and the shared compilation cache."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path


def job_cpus(requested: int, environ=os.environ) -> int:
    """The CPUs this job may use: SLURM's allocation (SLURM_CPUS_PER_TASK) when inside a SLURM job, else the
    requested threads (Snakemake's `threads`), never more than the CPUs the process may run on."""
    allowed = len(os.sched_getaffinity(0))
    slurm = environ.get("SLURM_CPUS_PER_TASK")
    count = int(slurm) if slurm and slurm.isdigit() and int(slurm) > 0 else int(requested)
    return max(1, min(count, allowed))


_claimed: list[int] = []  # lock files of the CPUs this process holds, open until it exits


def _claim(cpus: list[int]) -> bool:
    """Take this machine's per-CPU lock files for `cpus` (all or none), held until the process exits."""
    folder = Path(tempfile.gettempdir()) / f"ssvae-cpus-{os.getuid()}"
    taken = []
    try:
        folder.mkdir(exist_ok=True)
        for cpu in cpus:
            fd = os.open(folder / f"{cpu}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            taken.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        for fd in taken:
            os.close(fd)
        return False
    _claimed.extend(taken)
    return True


def limit_threads(threads: int, salt: str = "", environ=os.environ) -> list[int]:
    """Pin this process to the job's CPUs (`job_cpus`) so XLA sizes its thread pool to match; returns them.

    XLA reads the number of schedulable CPUs (the affinity mask) when JAX starts, so this must run before
    `import jax`. Jobs running side by side take different CPUs: each claims free ones through per-CPU lock
    files (released when it exits), so two one-thread jobs on a two-core machine never share a core; if none
    are free it starts at a CPU chosen by `salt`. When the mask already is the allocation (SLURM with task
    affinity or cgroups), nothing changes. No XLA flag is set: XLA flags are part of the compilation cache
    key, and jobs with different thread counts (train, evaluate) must share compiled executables.
    """
    allowed = sorted(os.sched_getaffinity(0))
    count = job_cpus(threads, environ)
    if count >= len(allowed):
        return allowed
    first = int(hashlib.sha256(salt.encode()).hexdigest(), 16) % len(allowed)
    offsets = [(first + k) % len(allowed) for k in range(len(allowed))]
    candidates = [[allowed[(start + i) % len(allowed)] for i in range(count)] for start in offsets]
    chosen = next((cpus for cpus in candidates if _claim(cpus)), candidates[0])
    os.sched_setaffinity(0, chosen)
    return chosen


def enable_compilation_cache(cache_dir: str | Path):
    """Share compiled executables between jobs through `cache_dir` (compiling.SharedFileCache: atomic,
    checksummed entries; one job compiles a program while another waiting for the same one loads it)."""
    from ssvae.runtime import compiling

    return compiling.install(cache_dir)
