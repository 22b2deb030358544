"""Shared by the reliability tests: the run-folder invariant, and a real small or read-only file system.

`finished_runs_unchanged(results)` is the invariant every fault scenario keeps: it hashes every file of every
finished run folder (one with a summary.json) before the scenario and checks after it that each is still
there, byte for byte. Use it as a context manager, or take the `run_folder_invariant` fixture.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def finished_run_hashes(results: Path) -> dict[str, dict[str, str]]:
    """Run id -> relative path -> sha256, for every finished run folder (one holding summary.json)."""
    hashes = {}
    for folder in sorted(Path(results).glob("*__*__*")):
        if (folder / "summary.json").is_file():
            hashes[folder.name] = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                                   for p in sorted(folder.rglob("*")) if p.is_file()}
    return hashes


@contextlib.contextmanager
def finished_runs_unchanged(results: Path):
    """Assert that every run folder finished before the block is byte-identical after it."""
    before = finished_run_hashes(results)
    yield before
    after = finished_run_hashes(results)
    for run_id, files in before.items():
        assert run_id in after, f"finished run {run_id} is gone (or lost its summary.json)"
        changed = sorted(p for p in set(files) | set(after[run_id]) if files.get(p) != after[run_id].get(p))
        assert not changed, f"finished run {run_id} changed: {changed}"


@pytest.fixture
def run_folder_invariant():
    """`with run_folder_invariant(results): ...` checks that finished run folders come out byte-identical."""
    return finished_runs_unchanged


def temp_files(root: Path) -> list[Path]:
    """Temp files an atomic write leaves behind if it did not clean up (`.<name>.<random>.tmp`)."""
    return sorted(p for p in Path(root).rglob(".*.tmp"))


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def small_fs(tmp_path):
    """A real 4 MiB tmpfs (root only; skipped otherwise): `fill()` fills it to the last byte, `read_only()`
    remounts it read-only. Unmounted afterwards."""
    if not _can_mount():
        pytest.skip("mounting a small tmpfs needs root (the sandbox and CI run as root)")
    mount = tmp_path / "fs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")

    class SmallFs:
        path = mount

        @staticmethod
        def fill() -> None:
            """Write a filler file until the file system has no byte left."""
            fd = os.open(mount / "filler.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                for chunk in (1 << 16, 1):
                    with contextlib.suppress(OSError):
                        while True:
                            os.write(fd, b"\0" * chunk)
            finally:
                os.close(fd)
            assert shutil.disk_usage(mount).free < 4096

        @staticmethod
        def read_only() -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)

    try:
        yield SmallFs
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
