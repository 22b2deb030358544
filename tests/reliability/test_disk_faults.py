"""A full disk and a read-only results folder, for real (a small tmpfs, remounted read-only).

Each scenario runs the real stage scripts or the `ssvae` command as a user would, and checks: exit 1 with one
readable paragraph naming the path and what to do (no traceback), no temp file left, nothing half-written,
and every finished run folder byte-identical. After space is freed the same command succeeds.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_run import make_run, write_config

from ssvae import config, disk
from ssvae.pipeline import planning, stages

from .conftest import temp_files

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SSVAE = str(Path(sys.executable).with_name("ssvae"))


def plan_run(results: Path, config_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """validate_config + derive_arch_code for a tiny digits config: (validated.json, run.json, run folder)."""
    path = write_config(config_dir, name=name, data_cfg={"num_samples": 300, "num_labeled": 30})
    key = config.plan_keys(path)[0]
    validated = results / ".plan" / key / "validated.json"
    run_json = results / ".plan" / key / "run.json"
    stages.validate_config(path, key, validated, log=lambda _: None)
    run = stages.derive_arch_code(validated, results, run_json, log=lambda _: None)
    return validated, run_json, results / run["run_id"]


def trained_run(results: Path, config_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """A run as train + evaluate leave it (a real non-neural model, see synthetic_run)."""
    validated, run_json, run_dir = plan_run(results, config_dir, name)
    make_run(results, run_dir.name, config.Experiment.from_effective(disk.read_json(validated)["effective"]))
    return validated, run_json, run_dir


def finished_run(results: Path, config_dir: Path, name: str) -> Path:
    """A run folder as report leaves it: trained, evaluated and reported."""
    validated, run_json, run_dir = trained_run(results, config_dir, name)
    stages.report(validated, run_json, run_dir, log=lambda _: None)
    return run_dir


def tiny_config(config_dir: Path, name: str) -> Path:
    """A small digits config, not yet planned."""
    return write_config(config_dir, name=name, data_cfg={"num_samples": 300, "num_labeled": 30})


def stage(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(REPO / "scripts" / script), *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def assert_readable_fault(proc: subprocess.CompletedProcess, reason: str, under: Path) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write " + str(under) in proc.stderr, proc.stderr
    assert reason in proc.stderr and "To recover:" in proc.stderr, proc.stderr


def test_atomic_write_on_a_full_disk_keeps_the_old_file(small_fs):
    target = small_fs.path / "results" / "summary.json"
    disk.write_json(target, {"status": "success"})
    before = target.read_bytes()
    small_fs.fill()
    with pytest.raises(OSError) as caught:
        disk.write_json(target, {"status": "success", "padding": "x" * 100_000})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_bytes() == before
    assert temp_files(small_fs.path) == []
    assert "disk is full" in disk.write_fault_message(disk.write_fault(caught.value))


def test_report_on_a_full_disk_then_after_freeing_space(small_fs, tmp_path, run_folder_invariant):
    results = small_fs.path / "results"
    done = finished_run(results, tmp_path, "done")
    third = trained_run(results, tmp_path, "third")
    with run_folder_invariant(results) as finished:
        assert list(finished) == [done.name]
        small_fs.fill()
        proc = stage("report.py", "--run-dir", str(third[2]))
        assert_readable_fault(proc, "the disk is full", results)
        assert not (third[2] / "summary.json").exists()
        assert temp_files(results) == []
    (small_fs.path / "filler.bin").unlink()
    proc = stage("report.py", "--run-dir", str(third[2]))
    assert proc.returncode == 0, proc.stderr
    assert disk.read_json(third[2] / "summary.json")["status"]


def test_derive_arch_code_on_a_full_disk_leaves_the_ledger(small_fs, tmp_path, run_folder_invariant):
    results = small_fs.path / "results"
    finished_run(results, tmp_path, "done")
    path = tiny_config(tmp_path, "fresh")
    fresh = results / ".plan" / "fresh"
    stages.validate_config(path, "fresh", fresh / "validated.json", log=lambda _: None)
    ledgers = {p: p.read_bytes() for p in (results / ".ledger").glob("*.json")}
    with run_folder_invariant(results):
        small_fs.fill()
        # derive_arch_code runs in Snakemake's process: the library raises, the rule prints the paragraph
        with pytest.raises(OSError) as caught:
            planning.derive_all(["fresh"], results)
        assert str(results) in caught.value.filename
        assert "the disk is full" in disk.write_fault_message(disk.write_fault(caught.value))
    assert not (fresh / "run.json").exists()
    assert {p: p.read_bytes() for p in (results / ".ledger").glob("*.json") if p in ledgers} == ledgers
    assert temp_files(results) == []


def test_read_only_results(small_fs, tmp_path, run_folder_invariant):
    results = small_fs.path / "results"
    done = finished_run(results, tmp_path, "done")
    path = tiny_config(tmp_path, "late")
    plan = results / ".plan" / "late"
    (plan / "logs").mkdir(parents=True)  # as Snakemake makes it before the job starts
    with run_folder_invariant(results):
        small_fs.read_only()
        proc = subprocess.run([SSVAE, "legend", "--out", str(results / "NAMING_LEGEND.md")], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"cannot write {results}" in proc.stderr and "read-only" in proc.stderr, proc.stderr
        with pytest.raises(OSError) as caught:  # validate_config, in Snakemake's process (see above)
            planning.validate_all({"late": [str(path)]}, results)
        assert "the file system is read-only" in disk.write_fault_message(disk.write_fault(caught.value))
        proc = stage("report.py", "--run-dir", str(done))
        assert_readable_fault(proc, "the file system is read-only", results)
