"""At most one live train job per run folder: a lock file in the folder that names the job holding it.

After the submitting Snakemake dies (kill -9, a lost login shell) its SLURM jobs keep running; `--unlock` and a
new invocation would start a second train job on the same folder, and two trainings would write one resume
checkpoint. The lock is an flock on `<run>/.train.lock`, so it is released when the holding process ends,
however it ends (no stale locks after a crash or a time limit). The file's text names the holder, for the
message the second job fails with.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".train.lock"


class RunFolderBusy(RuntimeError):
    """Another live job holds this run folder's train lock."""


def holder_description() -> str:
    """Who this process is: the SLURM job when there is one, host and pid always."""
    slurm = os.environ.get("SLURM_JOB_ID")
    job = f"SLURM job {slurm}, " if slurm else ""
    return f"{job}pid {os.getpid()} on {socket.gethostname()}, since {dt.datetime.now().isoformat(timespec='seconds')}"


def _busy_message(run_dir: Path, holder: str) -> str:
    slurm = holder.split(",")[0] if holder.startswith("SLURM job ") else None
    how = (f"`squeue -j {slurm.split()[-1]}` shows it; wait for it to end or `scancel {slurm.split()[-1]}`"
           if slurm else "wait for that process to end or kill it")
    return (f"{run_dir}: another train job is still running for this run folder ({holder or 'unknown holder'}); "
            f"{how}, then run snakemake again")


# Folders whose lock this process holds: the train script takes it before loading JAX (so the run shows as
# training from its first second), and the stage function inside it finds it held.
_held: set[Path] = set()
# `holder` probes the lock with a shared lock for an instant; a train job starting in that instant waits it out.
_ACQUIRE_SECONDS = 2.0


@contextlib.contextmanager
def holding(run_dir: str | Path):
    """Hold the run folder's train lock for the `with` block; RunFolderBusy at once if a live job holds it."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _held:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + _ACQUIRE_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunFolderBusy(_busy_message(run_dir, path.read_text().strip())) from None
                time.sleep(0.05)
            except OSError as exc:
                # a filesystem without locks (rare on NFS/Lustre mounts): go on, as before this lock existed
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                break
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder_description() + "\n").encode(), 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # releases the flock


def holder(run_dir: str | Path) -> str | None:
    """Who holds the run folder's train lock: its description ("" if it wrote none), or None when no live process
    holds it. Probes with a shared lock, released at once; never creates the lock file."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return os.pread(fd, 4096, 0).decode(errors="replace").strip()
            except OSError:
                return ""
        except OSError:
            return None  # a filesystem without locks: nothing can be said
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
