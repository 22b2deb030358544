"""Faults around training and compilation, for real: damaged checkpoints, SIGTERM, a train job that runs again,
the compilation cache under a full disk, damaged entries and two jobs compiling the same program at once.

Each scenario uses the real stage scripts (subprocesses, real signals) or the library on a tiny digits model;
the message a user gets must name the file and say what to do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from ssvae import config
from ssvae.data import datasets
from ssvae.model import checkpoints, inference
from ssvae.pipeline import stages
from ssvae.training import fit

pytestmark = pytest.mark.jax

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
TINY = {"hidden_dims": [32, 16], "latent_dim": 4, "batch_size": 128, "patience": 100}


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """One compilation cache for the module's subprocesses and, installed here, for its in-process runs."""
    from ssvae.runtime import compiling

    path = tmp_path_factory.mktemp("jax-cache")
    compiling.install(path)
    yield path
    compiling.uninstall()


def planned(tmp_path: Path, name: str, **model) -> tuple[Path, Path, Path, config.Experiment]:
    """validate_config + derive_arch_code of a tiny digits config: (validated.json, run.json, run dir, experiment)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"experiment": {"name": name},
                                    "data": {"dataset": "digits", "num_samples": 400, "num_labeled": 40},
                                    "model": {**TINY, **model}, "evaluation": {"baseline": False}}))
    results = tmp_path / "results"
    key = config.plan_keys(path)[0]
    validated, run_json = results / ".plan" / key / "validated.json", results / ".plan" / key / "run.json"
    stages.validate_config(path, key, validated, log=lambda _: None)
    run = stages.derive_arch_code(validated, results, run_json, log=lambda _: None)
    experiment = config.Experiment.from_effective(json.loads(validated.read_text())["effective"])
    return validated, run_json, results / run["run_id"], experiment


def history(run_dir: Path) -> list[str]:
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, c in enumerate(header) if c != "epoch_seconds"]
    return [",".join(row.split(",")[i] for i in keep) for row in lines]


class Stop(Exception):
    pass


def stop_after(epoch: int, messages: list):
    def log(message):
        messages.append(message)
        if message.startswith(f"epoch {epoch}/"):
            raise Stop(message)
    return log


def test_a_damaged_resume_checkpoint_resumes_from_the_previous_epoch_with_the_same_numbers(tmp_path, jax_cache):
    _, _, run_dir, exp = planned(tmp_path, "damaged", max_epochs=5)
    splits = datasets.load_splits(exp.data)
    reference = tmp_path / "reference"
    fit.fit(exp, splits, reference, resume_tag="t", log=lambda _: None)
    with pytest.raises(Stop):
        fit.fit(exp, splits, run_dir, resume_tag="t", log=stop_after(3, []))
    resume = run_dir / "checkpoints" / "resume.msgpack"
    assert checkpoints.previous_path(resume).exists()
    resume.write_bytes(resume.read_bytes()[:-100])  # cut short, as a copy interrupted or a disk error leaves it
    messages = []
    result = fit.fit(exp, splits, run_dir, resume_tag="t", log=messages.append)
    warning = next(m for m in messages if m.startswith("warning:"))
    assert str(resume) in warning and "truncated" in warning
    assert any(f"resuming from {checkpoints.previous_path(resume)} after epoch 2" in m for m in messages)
    assert result["resumed_from_epoch"] == 2
    assert history(run_dir) == history(reference)


def test_a_finished_training_run_again_retrains_from_scratch_and_a_killed_one_resumes(tmp_path, jax_cache):
    _, _, run_dir, exp = planned(tmp_path, "again", max_epochs=3)
    splits = datasets.load_splits(exp.data)
    first = fit.fit(exp, splits, run_dir, resume_tag="t", log=lambda _: None)
    before = history(run_dir)
    messages = []
    again = fit.fit(exp, splits, run_dir, resume_tag="t", log=messages.append)
    assert again["resumed_from_epoch"] is None
    assert any("holds a finished training (3 epochs): training again from scratch" in m for m in messages)
    assert sum(m.startswith("epoch ") for m in messages) == 3
    assert history(run_dir) == before and again["best_value"] == first["best_value"]


def test_a_damaged_best_checkpoint_is_named_with_the_command_that_recovers_it(tmp_path, jax_cache):
    validated, run_json, run_dir, exp = planned(tmp_path, "best", max_epochs=2)
    stages.train(validated, run_json, run_dir, log=lambda _: None)
    best = run_dir / "checkpoints" / "best.msgpack"
    intact = best.read_bytes()
    flipped = bytearray(intact)
    flipped[-10] ^= 0xFF
    for damaged, what in ((intact[: len(intact) // 2], "truncated"), (bytes(flipped), "corrupted")):
        best.write_bytes(damaged)
        with pytest.raises(checkpoints.CheckpointError) as info:
            inference.load_model(run_dir, exp)
        assert str(best) in str(info.value) and what in str(info.value)
        assert f"--forcerun {best}" in str(info.value)
    # the evaluate stage as Snakemake runs it: exit 1, the readable message, no traceback
    best.write_bytes(intact[:-7])
    proc = subprocess.run([sys.executable, str(SCRIPTS / "evaluate.py"), "--run-dir", str(run_dir),
                           "--threads", "1", "--jax-cache", str(jax_cache)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"cannot evaluate: {best} is truncated" in proc.stderr and "--forcerun" in proc.stderr
    assert "Traceback" not in proc.stderr and "Unpack failed" not in proc.stderr
    assert not (run_dir / "metrics.json").exists()


def test_sigterm_saves_the_last_epoch_and_exits(tmp_path, jax_cache):
    _, _, run_dir, _ = planned(tmp_path, "sigterm", max_epochs=20000, patience=20000)
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(SCRIPTS / "train.py"), "--run-dir", str(run_dir),
                                 "--threads", "1", "--jax-cache", str(jax_cache)],
                                stdout=out, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and log.read_text().count("] epoch ") < 3:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "training interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    last_logged = max(int(line.split("] epoch ")[1].split("/")[0]) for line in log.read_text().splitlines()
                      if "] epoch " in line)
    saved = json.loads(checkpoints.read_checked(run_dir / "checkpoints" / "resume.msgpack")["meta"])
    assert saved["epochs_completed"] == last_logged >= 3  # every finished epoch is on disk: at most one lost
    assert not (run_dir / "train.json").exists()


def test_a_train_job_without_a_plan_says_so_and_nothing_else(tmp_path):
    """The run lock is released before the interpreter tears down (no "Exception ignored" traceback after the
    message)."""
    run_dir = tmp_path / "results" / "ghost__std_head_plain__20260101_000000"
    run_dir.mkdir(parents=True)
    proc = subprocess.run([sys.executable, str(SCRIPTS / "train.py"), "--run-dir", str(run_dir), "--threads", "1",
                           "--jax-cache", "none"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "no plan under" in proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


# The compilation cache ---------------------------------------------------------------------------------

COMPILE = textwrap.dedent("""
    import json, os, pathlib, sys, time
    from ssvae.runtime import compiling
    cache = compiling.install(sys.argv[1])
    import jax, jax.numpy as jnp

    def f(x):
        for i in range(60):
            x = jnp.sin(x @ x.T + i) * jnp.cos(x + 0.5 * i)
        return x

    lowered = jax.jit(f).lower(jax.ShapeDtypeStruct((8, 8), jnp.float32))
    if os.environ.get("COMPILING_MARK"):
        pathlib.Path(os.environ["COMPILING_MARK"]).touch()
    start = time.perf_counter()
    lowered.compile()
    print(json.dumps({**cache.stats, "seconds": time.perf_counter() - start}))
""")


def compile_in_subprocess(cache: Path, limit_bytes: int | None = None) -> tuple[dict, str]:
    prefix = ""
    if limit_bytes:  # a file-size limit: writes past it fail with EFBIG, as on a full disk
        prefix = (f"import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                  f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))\n")
    proc = subprocess.run([sys.executable, "-c", prefix + COMPILE, str(cache)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.xla"))


def test_compiled_programs_are_shared_between_processes_and_damaged_entries_replaced(tmp_path):
    cache = tmp_path / "cache"
    first, _ = compile_in_subprocess(cache)
    assert first["misses"] >= 1 and first["writes"] == first["misses"]
    second, stderr = compile_in_subprocess(cache)
    assert second["misses"] == 0 and second["hits"] >= 1 and "warning" not in stderr.lower()
    # a damaged entry (cut short) is named once, removed, compiled and written again; the next run is clean
    (entry,) = [e for e in entries(cache) if e.name.startswith("jit_f-")]
    entry.write_bytes(entry.read_bytes()[:1000])
    third, stderr = compile_in_subprocess(cache)
    assert third["damaged"] == 1 and third["writes"] >= 1
    assert f"compilation cache entry {entry} is damaged" in stderr
    fourth, stderr = compile_in_subprocess(cache)
    assert fourth["damaged"] == 0 and fourth["misses"] == 0 and "damaged" not in stderr


def test_a_full_disk_leaves_no_partial_cache_entry_and_compiling_still_works(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    stats, stderr = compile_in_subprocess(cache, limit_bytes=4096)
    assert stats["write_errors"] >= 1 and stats["writes"] == 0
    assert stderr.count("cannot write to the compilation cache") == 1  # once, however many programs
    assert entries(cache) == [] and list(cache.glob(".*.tmp")) == []
    # once there is space again, the entries are written and used
    assert compile_in_subprocess(cache)[0]["writes"] >= 1
    assert compile_in_subprocess(cache)[0]["misses"] == 0


def test_two_jobs_compiling_one_program_at_once_compile_it_once(tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-c", COMPILE, str(cache)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((cache / "locks").glob("jit_f-*.lock")):
        time.sleep(0.005)
    first.send_signal(signal.SIGSTOP)  # held in the middle of compiling f, its lock taken
    try:
        mark = tmp_path / "second-compiling"
        second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "COMPILING_MARK": str(mark)})
        while time.time() < deadline and not mark.exists():
            time.sleep(0.01)
        time.sleep(0.5)  # the second job is now asking the cache for f
    finally:
        first.send_signal(signal.SIGCONT)
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    # one job compiled f and wrote it; the other waited for it and loaded the executable instead of compiling
    assert sorted((r["writes"], r["waited"]) for r in results) == [(0, 1), (1, 0)], results
    assert len(list(cache.glob("jit_f-*.xla"))) == 1
