"""A job's CPUs: SLURM's allocation, the rule's threads, the affinity mask, and jobs side by side."""

import os
import subprocess
import sys

from ssvae.runtime import compute


def test_job_cpus_follow_slurm_then_the_requested_threads_within_the_affinity_mask():
    allowed = len(os.sched_getaffinity(0))
    assert compute.job_cpus(1, environ={}) == 1
    assert compute.job_cpus(64, environ={}) == allowed
    assert compute.job_cpus(8, environ={"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert compute.job_cpus(1, environ={"SLURM_CPUS_PER_TASK": str(allowed)}) == allowed
    assert compute.job_cpus(2, environ={"SLURM_CPUS_PER_TASK": "junk"}) == min(2, allowed)


def test_limit_threads_pins_the_process_to_the_jobs_cpus():
    code = ("import os; from ssvae.runtime import compute; "
            "chosen = compute.limit_threads(8, environ={'SLURM_CPUS_PER_TASK': '1'}); "
            "print(len(chosen), len(os.sched_getaffinity(0)), 'XLA_FLAGS' in os.environ)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}).stdout.split()
    assert out == ["1", "1", "False"]  # one CPU, and no XLA flag that would split the compilation cache key


def test_one_thread_jobs_side_by_side_take_different_cpus(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        return
    # the lock files live in the temporary folder: a private one, so that other jobs on this machine (another
    # test run, a workflow training) hold none of them
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    code = ("import os, sys, time; from ssvae.runtime import compute; print(compute.limit_threads(1, salt='same')[0], "
            "flush=True); sys.stdin.read()")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    try:
        cpus = [int(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            p.communicate("")
    assert cpus[0] != cpus[1]  # the same salt would have put both on one CPU
