"""Run folders: atomic writes, strict JSON, provenance, the timestamp ledger and the list of existing runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from . import __version__, naming, runstate

SCHEMA_VERSION = 1
PROGRESS_FILE = "progress.json"  # written by the training after every epoch (history.LiveRecord)
_UMASK = os.umask(0)
os.umask(_UMASK)


def jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars and arrays become Python values, NaN and inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file.

    On any failure the temp file is removed and the file at `path` is as it was; an OSError names `path`.
    `durable=False` skips the fsync, for files that are recomputed whenever they are lost (planning files).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, exc.filename or str(path)) from exc
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for colleagues too
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_text(path: str | Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode(), durable=durable)


def write_json(path: str | Path, obj: Any, durable: bool = True) -> None:
    """Strict JSON (no bare NaN), indented, written atomically."""
    write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", durable=durable)


def write_yaml(path: str | Path, obj: Any) -> None:
    write_text(path, yaml.safe_dump(jsonable(obj), sort_keys=False, default_flow_style=None, width=100))


# Write failures that come from outside the program, and what the user does about each.
_FULL = "free space on that file system (or give results/ a roomier home), then run snakemake again"
_LOCKED = "make results/ writable (its owner, permissions or mount), then run snakemake again"
WRITE_FAULTS = {
    errno.ENOSPC: ("the disk is full", _FULL),
    errno.EDQUOT: ("the disk quota is used up", _FULL),
    errno.EFBIG: ("the file is larger than the file system allows", _FULL),
    errno.EROFS: ("the file system is read-only", _LOCKED),
    errno.EACCES: ("permission denied", _LOCKED),
    errno.EPERM: ("operation not permitted", _LOCKED),
}


def write_fault(exc: BaseException) -> OSError | None:
    """The full-disk or unwritable-folder OSError behind `exc` (itself, or one it was raised from)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def write_fault_message(exc: OSError) -> str:
    """One paragraph: which path could not be written, why, that nothing was half-written, what to do."""
    reason, remedy = WRITE_FAULTS[exc.errno]
    where = exc.filename or "a file under results/"
    return (f"cannot write {where}: {reason} ({exc.strerror}). Nothing was half-written: files are written "
            f"to a temp file and renamed, and finished run folders are untouched. To recover: {remedy}; "
            "training resumes from its last checkpoint.")


def report_write_faults(previous_hook=sys.excepthook):
    """An excepthook (for the stage scripts) that turns a write fault into its message instead of a traceback."""

    def hook(kind, exc, tb):
        fault = write_fault(exc)
        if fault is None:
            previous_hook(kind, exc, tb)
            return
        print(write_fault_message(fault), file=sys.stderr, flush=True)

    return hook


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


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
        "ssvae_version": __version__,
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
        text = (Path(run_dir) / "config.yaml").read_text()
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
    try:
        ledger = read_json(path)
    except FileNotFoundError:
        return {}
    return ledger if isinstance(ledger, dict) else {}


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


def read_json_or_reason(path: str | Path) -> tuple[Any, str | None]:
    """(document, None), or (None, why it cannot be read) for a file that is not readable, UTF-8, JSON."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8")), None
    except FileNotFoundError:
        return None, f"{Path(path).name} is missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{Path(path).name} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})"


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


def planned_run_ids(results: str | Path) -> dict[str, str]:
    """name -> run id that the latest plan of each config (results/.plan/<key>/run.json) points to."""
    planned = {}
    for path in sorted(Path(results).glob(".plan/*/run.json")):
        run, _ = read_json_or_reason(path)
        if isinstance(run, dict) and isinstance(run.get("run_id"), str):
            try:
                parsed = naming.RunId.parse(run["run_id"])
            except naming.NamingError:
                continue
            planned[parsed.name] = run["run_id"]
    return planned


def recorded_timestamp(results: str | Path, name: str, identity: str) -> str | None:
    """The timestamp the ledger holds for this name and identity, without minting one."""
    ledger, _ = read_json_or_reason(_ledger_path(Path(results), name))
    entry = ledger.get(identity) if isinstance(ledger, dict) else None
    return entry.get("ts") if isinstance(entry, dict) else None
