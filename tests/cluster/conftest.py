"""A real single-node SLURM cluster on this machine for the cluster tier: started once, stopped and purged after.

Runs where it can: root on Debian with apt reachable (CI's container, a developer's VM). Anywhere else the tier
is skipped with the reason. SLURM's client tools are removed again at the end, because installed clients without
a running controller slow every local `snakemake` by ~10 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INSTALLED = Path("/var/lib/ssvae-test-slurm/installed-packages")


def _why_not() -> str | None:
    if os.environ.get("SSVAE_NO_CLUSTER"):
        return "SSVAE_NO_CLUSTER is set"
    if os.geteuid() != 0:
        return "needs root to install and start SLURM (tests/cluster/start_slurm.sh)"
    if not Path("/etc/debian_version").exists() or not shutil.which("apt-get"):
        return "needs Debian with apt-get (tests/cluster/start_slurm.sh installs Debian's SLURM packages)"
    if shutil.which("sbatch") and not INSTALLED.exists():
        return "a SLURM installation not made by these tests is present; not touching it"
    return None


def _stop(purge: bool) -> subprocess.CompletedProcess:
    return subprocess.run([str(HERE / "stop_slurm.sh")], env={**os.environ, "PURGE": "1" if purge else "0"},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the cluster (installing the packages if needed); yields the seconds setting up took."""
    reason = _why_not()
    if reason:
        pytest.skip(f"cluster tier skipped: {reason}")
    start = time.perf_counter()
    proc = subprocess.run([str(HERE / "start_slurm.sh")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "INSTALL": "0" if shutil.which("slurmctld") else "1"})
    if proc.returncode == 3:
        pytest.skip(f"cluster tier skipped: apt cannot install SLURM here:\n{proc.stderr[-2000:]}")
    if proc.returncode != 0:
        _stop(purge=True)
        pytest.fail(f"start_slurm.sh failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    try:
        yield time.perf_counter() - start
    finally:
        stopped = _stop(purge=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
