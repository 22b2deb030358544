"""Run folders: provenance, the timestamp ledger and the list of existing runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import math
import platform
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from ssvae import naming, shapes
from ssvae.disk import read_json_or_reason, read_regular, write_json
from ssvae.results import runstate

PROGRESS_FILE = "progress.json"  # written by the training after every epoch (history.LiveRecord)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance(code_dir: str | Path | None = None) -> dict:
    """Where and with what code a stage ran: git commit and dirty flag, package versions, host, device."""
    code_dir = Path(code_dir or Path(__file__).resolve().parent)
    commit = _git(["rev-parse", "HEAD"], code_dir)
    status = _git(["status", "--porcelain", "--untracked-files=no"], code_dir)
    device = None
    if "jax" in sys.modules:
        import jax

        device = str(jax.devices()[0].platform)
    return {
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "ssvae_version": _version("ssvae"),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("jax", "jaxlib", "flax", "optax", "numpy", "snakemake")},
        "host": socket.gethostname(),
        "device": device,
    }


# The ledger maps a run identity (hash of data + model) to the timestamp it was first planned with, per name.
# It is deliberately not a Snakemake output: outputs are deleted before their job reruns. It can always be
# rebuilt from the run folders, whose config.yaml records the identity they were trained for.

def _ledger_path(results: Path, name: str) -> Path:
    return results / ".ledger" / f"{name}.json"


@contextlib.contextmanager
def locked(path: str | Path):
    """An exclusive lock on `path` + `.lock` (other processes and invocations wait for it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_IDENTITY_LINE = re.compile(r"^identity: ['\"]?([0-9a-f]+)['\"]?\s*$", re.M)


def recorded_identity(run_dir: str | Path) -> str | None:
    """The identity a run folder was trained for, from the top-level `identity:` of its config.yaml."""
    try:
        text = read_regular(Path(run_dir) / "config.yaml").decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = _IDENTITY_LINE.search(text)
    return match.group(1) if match else None


def ledger_from_folders(results: str | Path, name: str) -> dict:
    """The ledger of one name as its run folders record it: identity -> {ts, arch} (the latest folder wins)."""
    ledger = {}
    for folder in sorted(Path(results).glob(f"{name}__*__*")):
        try:
            run_id = naming.RunId.parse(folder.name)
        except naming.NamingError:
            continue
        identity = recorded_identity(folder) if run_id.name == name else None
        if identity:
            ledger[identity] = {"ts": run_id.ts, "arch": run_id.arch, "recovered_from": folder.name}
    return ledger


def rebuild_ledger(results: str | Path) -> dict[str, int]:
    """Write every name's ledger from the run folders' config.yaml (entries already there are kept)."""
    results = Path(results)
    names = set()
    for folder in results.glob("*__*__*"):
        with contextlib.suppress(naming.NamingError):
            names.add(naming.RunId.parse(folder.name).name)
    counts = {}
    for name in sorted(names):
        path = _ledger_path(results, name)
        with locked(path):
            ledger = _read_ledger(path)
            recovered = {k: v for k, v in ledger_from_folders(results, name).items() if k not in ledger}
            if recovered:
                write_json(path, {**ledger, **recovered})
            counts[name] = len(recovered)
    return counts


def _read_ledger(path: Path) -> dict:
    """The ledger at `path`; empty when it is missing or damaged (not JSON, or not its shape): the callers then
    recover every entry from the run folders, the ledger's source of truth."""
    ledger, _ = shapes.read(path, "LEDGER")
    return ledger if ledger is not None else {}


def mint_timestamp(results: str | Path, name: str, arch: str, identity: str, now: dt.datetime | None = None) -> str:
    """The run's timestamp: the one recorded for this identity, or a new one (local time) recorded now.

    An identity missing from the ledger (lost, or `results/*` copied without its dot-folders) is first looked
    for in the run folders of the same name, so an existing run is found again instead of trained anew.
    """
    results = Path(results)
    path = _ledger_path(results, name)
    with locked(path):
        ledger = _read_ledger(path)
        if identity in ledger:
            return ledger[identity]["ts"]
        recovered = {k: v for k, v in ledger_from_folders(results, name).items() if k not in ledger}
        if identity in recovered:
            write_json(path, {**ledger, **recovered})
            return recovered[identity]["ts"]
        moment = (now or dt.datetime.now()).replace(microsecond=0)
        taken = {entry["ts"] for entry in ledger.values()}
        while True:
            ts = moment.strftime(naming.TS_FORMAT)
            if ts not in taken and not (results / str(naming.RunId(name, arch, ts))).exists():
                break
            moment += dt.timedelta(seconds=1)
        ledger[identity] = {"ts": ts, "arch": arch, "planned": dt.datetime.now().isoformat(timespec="seconds")}
        write_json(path, ledger)
        return ts




def read_progress(folder: str | Path) -> dict | None:
    """The live progress of a run's training: {epoch, max_epochs, eta_s, seconds_per_epoch, losses, ...} from its
    progress.json, or None when there is none (or it cannot be read)."""
    document, _ = read_json_or_reason(Path(folder) / PROGRESS_FILE)
    return document if isinstance(document, dict) else None


def duration_text(seconds: float | None) -> str:
    """`45 s`, `1 m 20 s`, `2 h 05 m`: durations as a person reads them."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = round(max(0.0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} m"
    if seconds >= 60:
        return f"{seconds // 60} m {seconds % 60:02d} s"
    return f"{seconds} s"


def progress_text(progress: dict | None) -> str:
    """`37/150, ETA 1 m 20 s` (or `compiling`) for a run's live progress; empty when there is none."""
    if not progress:
        return ""
    done, total = progress.get("epoch"), progress.get("max_epochs")
    epochs = f"{done}/{total}" if done is not None and total else ""
    if progress.get("phase") == "compiling":
        return ", ".join(filter(None, [epochs if done else "", "compiling"]))
    if progress.get("eta_s") is None:
        return epochs
    return f"{epochs}, ETA {duration_text(progress['eta_s'])}"


def list_runs(results: str | Path, warn: Callable[[str], None] | None = None) -> list[dict]:
    """Every run folder under `results`, parsed from its name, with its status (runstate.folder_state: from the
    files and the train lock, never remembered), its live `progress` while it trains (see `read_progress`) and,
    where readable, its summary. A folder whose summary.json cannot be read is listed as `unreadable` with the
    reason (and `warn` is called with a line naming the folder); one with an output of some stage missing is
    `stale`."""
    rows = []
    for folder in sorted(Path(results).glob("*__*__*")):
        if not folder.is_dir():
            continue
        try:
            run_id = naming.RunId.parse(folder.name)
        except naming.NamingError:
            continue
        row = {"run_id": folder.name, "name": run_id.name, "arch": run_id.arch, "ts": run_id.ts,
               "path": str(folder), **runstate.folder_state(folder)}
        if row["status"] == "training":
            row["progress"] = read_progress(folder)
        if row["status"] == "unreadable" and warn is not None:
            warn(f"skipped {folder}: {row['reason']}")
        rows.append(row)
    return rows


def planned_runs(results: str | Path) -> dict[str, dict]:
    """name -> the run document (results/.plan/<key>/run.json) that the latest plan of each config points to."""
    planned = {}
    for path in sorted(Path(results).glob(".plan/*/run.json")):
        run, _ = read_json_or_reason(path)
        if isinstance(run, dict) and isinstance(run.get("run_id"), str):
            try:
                parsed = naming.RunId.parse(run["run_id"])
            except naming.NamingError:
                continue
            planned[parsed.name] = run
    return planned


def planned_run_ids(results: str | Path) -> dict[str, str]:
    """name -> run id that the latest plan of each config (results/.plan/<key>/run.json) points to."""
    return {name: run["run_id"] for name, run in planned_runs(results).items()}


def recorded_timestamp(results: str | Path, name: str, identity: str) -> str | None:
    """The timestamp the ledger holds for this name and identity, without minting one."""
    ledger, _ = read_json_or_reason(_ledger_path(Path(results), name))
    entry = ledger.get(identity) if isinstance(ledger, dict) else None
    return entry.get("ts") if isinstance(entry, dict) else None
