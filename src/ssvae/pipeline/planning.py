"""Planning every experiment of an invocation at once: plan keys, one validation pass, one naming pass.

The workflow plans in two jobs however many configs it is given (`validate_config`, then the checkpoint
`derive_arch_code`, each over every plan of the invocation, inside Snakemake's own process), so 5,000 configs
cost seconds rather than two Python processes each. Every plan is still judged alone: whatever is wrong with
one file (unreadable, invalid, a sweep that cannot expand, a plan key or run id it shares with another file)
becomes that plan's error document, never an exception, and only that experiment fails (in the workflow's
`invalid_config` rule, with the readable errors).

Files under `results/.plan/`:
  keys.json                    config file -> (content hash, plan keys): lets the Snakefile skip YAML at parse time
  <key>/validated.json         the effective config of one run, or its errors (validate_config)
  <key>/run.json               {ok, run_id, ...} or {ok: false, errors} (derive_arch_code)
  <key>/errors.txt             the readable errors of an invalid plan
  runs/<run id>.json           which plan names this run (how the train, evaluate and report jobs find it)
  sets/<set>.json              the plans of one invocation (validate_config's last output, derive_arch_code's input)
  sets/<set>.<configs>.runs.json  written by derive_arch_code after every run.json of the set: the set is planned
                               for these configs' contents (its name changes with any change to configs/)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import signal
import stat
import threading
from pathlib import Path
from typing import Callable, Iterable

from ssvae import config as config_mod
from ssvae import disk, naming, text
from ssvae.pipeline import validation
from ssvae.results import halving, runs

PLAN_DIR = ".plan"
KEYS_CACHE = "keys.json"
PLAN_KEY_PATTERN = r"[a-z0-9][a-z0-9._-]*"
# A config that takes longer than this to load is rejected rather than holding up the plans of all the others.
PLAN_SECONDS = 30

_KEY_RE = re.compile(PLAN_KEY_PATTERN)


# plan keys ---------------------------------------------------------------------------------------

@functools.cache
def code_digest() -> str:
    """Hash of the code that turns a config file into plan keys: a change to it invalidates cached keys."""
    config_file = Path(config_mod.__file__)
    files = sorted(config_file.parent.glob("*.py")) if config_file.name == "__init__.py" else [config_file]
    digest = hashlib.sha256()
    for path in [Path(naming.__file__), Path(__file__), *files]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fallback_key(path: str | Path) -> str:
    """A plan key from the file name alone, for a file whose own keys cannot be worked out."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(path).stem.lower()).strip("-._")
    return stem or "config"


def keys_of_file(path: str | Path) -> list[str]:
    """The plan keys one config file gives (its stem, plus one per sweep point); never raises.

    A file that cannot be read for its keys gets one key from its name, under which validation reports why.
    """
    try:
        with _time_limit(PLAN_SECONDS):
            keys = [str(k) for k in config_mod.plan_keys(Path(path))]
    except Exception:  # noqa: BLE001 - one broken file must never stop the planning of the others
        keys = []
    if keys and all(_KEY_RE.fullmatch(k) for k in keys):
        return list(dict.fromkeys(keys))
    return [fallback_key(path)]


def _content_digest(path: str | Path) -> str | None:
    """sha1 of a config file's bytes; None for anything but a readable regular file within the size bound
    (a FIFO, a device or a symlink to one is never opened for reading: Snakefile parsing must not block or
    fill memory; the file's plan then fails with the reason)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > config_mod.MAX_CONFIG_BYTES:
                return None
            data = handle.read(config_mod.MAX_CONFIG_BYTES + 1)
        except OSError:
            return None
    return hashlib.sha1(data).hexdigest() if len(data) <= config_mod.MAX_CONFIG_BYTES else None


def _keys_cache_path(results: str | Path) -> Path:
    return Path(results) / PLAN_DIR / KEYS_CACHE


def _read_keys_cache(results: str | Path) -> dict:
    try:
        cache = json.loads(disk.read_regular(_keys_cache_path(results)))
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict) or cache.get("code") != code_digest():
        return {}
    files = cache.get("files")
    return files if isinstance(files, dict) else {}


def plan_sources(files: Iterable[str], results: str | Path = "results") -> dict[str, list[str]]:
    """Plan key -> the config files giving it, in the order given; two or more files is a collision.

    Keys of a file whose content hash is in `results/.plan/keys.json` are taken from there (the Snakefile is
    parsed on every invocation and in every cluster job); other files are read.
    """
    cache = _read_keys_cache(results)
    sources: dict[str, list[str]] = {}
    for path in files:
        path = str(path)
        entry = cache.get(path)
        digest = _content_digest(path)
        if isinstance(entry, dict) and digest is not None and entry.get("sha1") == digest:
            keys = entry["keys"]
        else:
            keys = keys_of_file(path)
        for key in keys:
            owners = sources.setdefault(key, [])
            if path not in owners:
                owners.append(path)
    return sources


def contents_digest(files: Iterable[str]) -> str:
    """One hash of every config file's path and bytes: what validate_config's result depends on."""
    digest = hashlib.sha256()
    for path in sorted(set(map(str, files))):
        digest.update(f"{path}\0{_content_digest(path)}\n".encode())
    return digest.hexdigest()[:16]


def record_plan_keys(results: str | Path, keys_by_file: dict[str, list[str]]) -> None:
    """Remember the plan keys of these files (merged with other invocations' entries, under a lock)."""
    path = _keys_cache_path(results)
    with runs.locked(path):
        files = _read_keys_cache(results)
        files = {f: e for f, e in files.items() if Path(f).exists()}
        for file, keys in keys_by_file.items():
            digest = _content_digest(file)
            if digest is not None:
                files[file] = {"sha1": digest, "keys": keys}
        disk.write_text(path, json.dumps({"code": code_digest(), "files": files}, sort_keys=True) + "\n",
                        durable=False)


# validate_config over every plan -----------------------------------------------------------------

def error_document(key: str, files: list[str], errors: list[config_mod.ConfigError]) -> dict:
    """validated.json of a plan that cannot run: the same fields as a valid plan's, with the errors."""
    return {"ok": False, "source": files[0], "sources": files, "key": key, "point": {},
            "errors": [e.to_dict() for e in errors], "warnings": [], "effective": None,
            "name": None, "arch": None, "identity": None, "group": None}


class _PlanTimeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int):
    """Raise _PlanTimeout after `seconds` (main thread only; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum, frame):
        raise _PlanTimeout()

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _load_file(path: str) -> list[config_mod.Plan] | config_mod.ConfigError:
    """Every plan of one config file, or the one error that stopped it from loading."""
    try:
        with _time_limit(PLAN_SECONDS):
            return validation.load_plans(path)
    except _PlanTimeout:
        return config_mod.ConfigError(path, "", None, f"took more than {PLAN_SECONDS} s to load; "
                                      "is a sweep or an alias expanding to something huge?")
    except Exception as exc:  # noqa: BLE001 - a bug met by one file fails that file's plans only
        return config_mod.ConfigError(path, "", None, f"could not be planned ({type(exc).__name__}: {exc})")


def judge_all(sources: dict[str, list[str]]) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """validate_config's verdict on every plan, written nowhere: (key -> validated document, config file -> the
    plan keys it gives)."""
    documents: dict[str, dict] = {}
    keys_by_file: dict[str, list[str]] = {}
    cached_keys: dict[str, list[str]] = {}
    for key, files in sources.items():
        for file in files:
            cached_keys.setdefault(file, []).append(key)
        if len(files) > 1:
            documents[key] = error_document(key, files, [config_mod.ConfigError(
                files[0], "", None, f"{' and '.join(files)} {'both' if len(files) == 2 else 'all'} give the run key "
                f"{key!r}; rename one of the files")])
        else:
            keys_by_file.setdefault(files[0], []).append(key)
    for path, keys in keys_by_file.items():
        loaded = _load_file(path)
        if isinstance(loaded, config_mod.ConfigError):
            for key in keys:
                documents[key] = error_document(key, [path], [loaded])
            continue
        cached_keys[path] = list(dict.fromkeys(plan.key for plan in loaded))
        by_key: dict[str, list[config_mod.Plan]] = {}
        for plan in loaded:
            by_key.setdefault(plan.key, []).append(plan)
        for key in keys:
            plans = by_key.get(key, [])
            if len(plans) == 1:
                documents[key] = plans[0].to_dict()
            elif not plans:
                documents[key] = error_document(key, [path], [config_mod.ConfigError(
                    path, "", None, f"has no run with key {key!r} any more (it changed while planning); run again")])
            elif any(not plan.ok for plan in plans):  # the config's own check found why (e.g. repeated seeds)
                documents[key] = next(plan for plan in plans if not plan.ok).to_dict()
            else:
                documents[key] = error_document(key, [path], [config_mod.ConfigError(
                    path, "sweep", key, "two sweep points give the same run key; make their values differ")])
    reject_shared_searches(documents)
    return {key: documents[key] for key in sources}, cached_keys


def shared_search_error(file: str, others: list[str], name: str) -> config_mod.ConfigError:
    """The error of a search whose name another config file's search has too."""
    return config_mod.ConfigError(
        file, "experiment.name", name,
        f"{' and '.join([file, *others])} {'both' if len(others) == 1 else 'all'} declare a search named {name!r}, "
        "so their trials would share "
        f"results/{halving.SEARCH_DIR}/{name}/ (promotions and decisions) and their run names; give one of them "
        "another experiment.name")


def shared_searches(named: dict[str, str | None]) -> dict[str, list[str]]:
    """search name -> the config files declaring it, for the names more than one file declares; `named` maps
    each config file to its search's name (None: no search)."""
    files: dict[str, list[str]] = {}
    for file, name in named.items():
        if name is not None:
            files.setdefault(name, []).append(file)
    return {name: owners for name, owners in files.items() if len(owners) > 1}


def reject_shared_searches(documents: dict[str, dict]) -> None:
    """Two config files whose searches share a name (their `experiment.name`, sanitised) would share one
    `results/.search/<name>/`: every plan of both becomes invalid, its error naming both files."""
    named = {document["source"]: document["search"]["name"] for document in documents.values()
             if isinstance(document.get("search"), dict)}
    shared = shared_searches(named)
    if not shared:
        return
    for key, document in documents.items():
        source = document["source"]
        if isinstance(document.get("search"), dict) and document["search"]["name"] in shared:
            name = document["search"]["name"]
            others = [file for file in shared[name] if file != source]
            documents[key] = error_document(key, [source, *others], [shared_search_error(source, others, name)])


def validate_all(sources: dict[str, list[str]], results: str | Path = "results",
                 log: Callable[[str, str], None] | None = None) -> dict[str, dict]:
    """validate_config for every plan: write `<key>/validated.json` for each (valid or not); key -> document.

    `log(key, line)` receives each plan's warnings and errors (the workflow writes them to the plan's log).
    """
    log = log or (lambda key, line: None)
    documents, cached_keys = judge_all(sources)
    plan_dir = Path(results) / PLAN_DIR
    for key, document in documents.items():
        for warning in document.get("warnings", []):
            log(key, f"warning: {warning}")
        if document["ok"]:
            log(key, f"{document['source']} [{key}]: valid; name {document['name']}, arch {document['arch']}, "
                     f"identity {document['identity']}")
        else:
            log(key, error_text(document))
        disk.write_json(plan_dir / key / "validated.json", document, durable=False)
    record_plan_keys(results, cached_keys)
    return documents


def write_manifest(path: str | Path, sources: dict[str, list[str]], configs_digest: str) -> None:
    """The plan set of one invocation: every key with its config file(s), and the configs' contents digest."""
    disk.write_json(path, {"configs": configs_digest, "plans": sources}, durable=False)


def derived_path(results: str | Path, plan_set: str, configs_digest: str) -> str:
    """derive_arch_code's plan-set file: named by the set of plan keys and by the configs' contents, so that any
    change to configs/ (a file added, removed, renamed or edited; a sweep grown or shrunk) names a file that does
    not exist yet, and Snakemake runs the checkpoint."""
    return f"{Path(results) / PLAN_DIR / 'sets' / plan_set}.{configs_digest}.runs.json"


def write_derived(path: str | Path, documents: dict[str, dict], configs_digest: str) -> None:
    """The plan-set file, written after every run.json of the set: plan key -> run id (None: cannot run).

    The same set's files for other contents of the configs are removed: going back to earlier contents must
    plan again (the run.json files were rewritten since)."""
    path = Path(path)
    plan_set = path.name.split(".")[0]
    for other in path.parent.glob(f"{plan_set}.*.runs.json"):
        if other != path:
            other.unlink(missing_ok=True)
    disk.write_json(path, {"configs": configs_digest,
                           "runs": {key: doc.get("run_id") for key, doc in documents.items()}}, durable=False)


def _plan_outputs_state(derived: str | Path, sources: dict[str, list[str]],
                        results: str | Path) -> tuple[int | None, list[str], bool]:
    """(mtime of the plan-set file or None, the run.json files missing, whether one is newer than the file)."""
    try:
        info = Path(derived).stat()
        planned_at = info.st_mtime_ns if stat.S_ISREG(info.st_mode) else None
    except OSError:
        planned_at = None
    plan_dir = Path(results) / PLAN_DIR
    missing, newer = [], False
    for key in sources:
        path = plan_dir / key / "run.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            missing.append(str(path))
            continue
        newer = newer or (planned_at is not None and mtime > planned_at)
    return planned_at, missing, newer


def plans_current(derived: str | Path, sources: dict[str, list[str]], results: str | Path = "results") -> bool:
    """Whether the last planning of this plan set is still what planning would write now: its plan-set file for
    these very configs exists and every run.json is there, none rewritten since (by another invocation's plan
    set sharing a key). Then the workflow reads the run ids without waiting on the derive_arch_code checkpoint
    (Snakemake would otherwise rebuild the whole DAG once more)."""
    planned_at, missing, newer = _plan_outputs_state(derived, sources, results)
    return planned_at is not None and not missing and not newer


def missing_plan_outputs(derived: str | Path, sources: dict[str, list[str]],
                         results: str | Path = "results") -> list[str]:
    """What the workflow asks for when the plans are not current: derive_arch_code's outputs that are missing,
    so that Snakemake runs it (it runs a job only for missing outputs that something asks for). Removes nothing:
    input functions run many times per invocation."""
    planned_at, missing, _ = _plan_outputs_state(derived, sources, results)
    return ([] if planned_at is not None else [str(derived)]) + missing


_SECTIONS = ("experiment", "data", "model", "evaluation", "report")


def _plan_shape_problem(document, name: str) -> str | None:
    """What is wrong with the shape of a plan file the workflow reads at parse time (checked by hand: a JSON
    Schema validator costs a millisecond a file, seconds at thousands of plans)."""
    if not isinstance(document, dict) or not isinstance(document.get("ok"), bool):
        return "not an object with a boolean `ok`"
    if not document["ok"]:
        return None
    if name == "run.json" and not isinstance(document.get("run_id"), str):
        return "`run_id` is not a string"
    if name == "validated.json":
        effective = document.get("effective")
        if not isinstance(effective, dict) or not all(isinstance(effective.get(s), dict) for s in _SECTIONS):
            return "`effective` does not hold the five config sections"
        if not all(isinstance(document.get(k), str) for k in ("key", "source", "name", "identity")):
            return "`key`, `source`, `name` or `identity` is not a string"
        if not isinstance(document.get("warnings"), list):
            return "`warnings` is not a list"
    return None


def drop_damaged_plan_files(sources: Iterable[str], manifest: str | Path, results: str | Path = "results"
                            ) -> tuple[dict[str, tuple[int, dict]], list[str]]:
    """Read every plan's validated.json and run.json as the Snakefile is parsed: (path -> (mtime_ns, document)
    of each good one, one line per damaged one). A damaged file (cut short, not JSON, the wrong shape) is
    removed, and with it the plan set's manifest, so that this invocation plans again instead of stopping:
    the run folders' config.yaml files (through the ledger) keep every run id as it was."""
    plan_dir = Path(results) / PLAN_DIR
    good: dict[str, tuple[int, dict]] = {}
    damaged = []
    for key in sources:
        for name in ("validated.json", "run.json"):
            path = plan_dir / key / name
            try:
                stamp = path.stat().st_mtime_ns
                document = json.loads(disk.read_regular(path).decode("utf-8"))
                problem = _plan_shape_problem(document, name)
            except FileNotFoundError:
                continue
            except (OSError, ValueError, RecursionError) as exc:
                problem = f"not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"
            if problem is None:
                good[str(path)] = (stamp, document)
                continue
            damaged.append(f"{path} was damaged ({problem}); it is planned again")
            with contextlib.suppress(OSError):
                path.unlink()
    if damaged:
        with contextlib.suppress(OSError):
            Path(manifest).unlink()
    return good, damaged


def error_text(document: dict) -> str:
    """The readable message of an invalid plan, as the user sees it (printed to a terminal: a file name holding
    escape sequences is shown without them)."""
    errors = document["errors"]
    source = " and ".join(document.get("sources") or [document["source"]])
    lines = [f"{source}: invalid config, {len(errors)} error(s):"]
    lines += [f"  - {e['text'] if isinstance(e, dict) else e}" for e in errors]
    return text.terminal_lines("\n".join(lines))


# derive_arch_code over every plan ----------------------------------------------------------------

def run_document(plan: dict, results: str | Path) -> dict:
    """The run id of one valid plan: its arch code and the timestamp minted once for its identity."""
    arch = naming.arch_code(plan["effective"]["model"])
    ts = runs.mint_timestamp(results, plan["name"], arch, plan["identity"])
    run_id = naming.RunId(plan["name"], arch, ts)
    document = {"ok": True, "key": plan["key"], "name": plan["name"], "arch": arch, "ts": ts, "run_id": str(run_id),
                "identity": plan["identity"]}
    if plan.get("search"):
        document["search"] = halving.trial_document(plan["search"], plan["effective"]["model"]["max_epochs"])
    return document


def _shared_runs(plans: dict[str, dict]) -> dict[str, list[str]]:
    """Valid plan key -> the other keys that would train the same run folder (same name and identity)."""
    owners: dict[tuple, list[str]] = {}
    for key, plan in plans.items():
        if plan["ok"]:
            owners.setdefault((plan["name"], plan["identity"]), []).append(key)
    return {key: [k for k in keys if k != key] for keys in owners.values() if len(keys) > 1 for key in keys}


def runnable(plans: dict[str, dict]) -> dict[str, dict]:
    """The validated plans with derive_arch_code's own rule applied: two plans that would share one run folder
    (same experiment name, data and model) are both invalid."""
    shared = _shared_runs(plans)
    checked = {}
    for key, plan in plans.items():
        if plan["ok"] and key in shared:
            others = [plans[k]["source"] for k in shared[key]]
            plan = {**plan, "ok": False, "sources": [plan["source"], *others], "errors": [config_mod.ConfigError(
                plan["source"], "experiment.name", plan["name"],
                f"gives the same run as {', '.join(others)} (same experiment name, data and model), so they "
                "would share one run folder; give one of them another experiment.name").to_dict()]}
        checked[key] = plan
    return checked


def derive_all(keys: Iterable[str], results: str | Path = "results",
               log: Callable[[str, str], None] | None = None) -> dict[str, dict]:
    """derive_arch_code for every plan: write `<key>/run.json` (and `errors.txt` when it cannot run)."""
    log = log or (lambda key, line: None)
    plan_dir = Path(results) / PLAN_DIR
    plans = runnable({key: disk.read_json(plan_dir / key / "validated.json") for key in keys})
    documents = {}
    for key, plan in plans.items():
        errors_file = plan_dir / key / "errors.txt"
        if plan["ok"]:
            document = run_document(plan, results)
            errors_file.unlink(missing_ok=True)
            disk.write_json(plan_dir / "runs" / f"{document['run_id']}.json", {"key": key}, durable=False)
            log(key, f"{key}: run {document['run_id']}")
        else:
            text = error_text(plan)
            document = {"ok": False, "key": key, "sources": plan.get("sources") or [plan["source"]],
                        "errors": [e["text"] for e in plan["errors"]]}
            disk.write_text(errors_file, text + "\n", durable=False)
            log(key, text)
        disk.write_json(plan_dir / key / "run.json", document, durable=False)
        documents[key] = document
    return documents


def run_map(documents: dict[str, dict]) -> dict[str, str]:
    """run id -> plan key, for the plans that run."""
    return {doc["run_id"]: key for key, doc in documents.items() if doc.get("ok")}


class PlanNotFound(LookupError):
    """No plan names this run folder (the planning files are gone, or it is not a run of this workflow)."""


def plan_of_run(results: str | Path, run_id: str) -> tuple[Path, Path]:
    """(validated.json, run.json) of the plan that names run folder `run_id`.

    The train, evaluate and report jobs find their plan this way rather than as declared inputs: a file that
    is one of N outputs of one job costs Snakemake O(N) to look up, for every job that reads it.
    """
    plan_dir = Path(results) / PLAN_DIR
    try:
        key = disk.read_json(plan_dir / "runs" / f"{run_id}.json")["key"]
        candidates = [plan_dir / key / "run.json"]
    except (OSError, ValueError, KeyError, TypeError):
        candidates = sorted(plan_dir.glob("*/run.json"))
    for run_json in candidates:
        try:
            if disk.read_json(run_json).get("run_id") == run_id:
                return run_json.with_name("validated.json"), run_json
        except (OSError, ValueError):
            continue
    raise PlanNotFound(f"no plan under {plan_dir} names the run {run_id}; plan again (run snakemake, "
                       "which re-plans every config of the invocation)")


# The two planning jobs ----------------------------------------------------------------------------------

@contextlib.contextmanager
def job_log(log_file: str | Path):
    """log(key, line) for a planning job: every plan's lines in the job's one log, each with its key."""
    with open(log_file, "w") as handle:
        yield lambda key, line: print(f"[{key}] {line}", file=handle, flush=True)


def validate_job(sources: dict[str, list[str]], manifest: str | Path, configs_digest: str, log_file: str | Path,
                 results: str | Path = "results") -> None:
    """validate_config: every plan's validated.json (valid or with its errors), then the plan set's manifest."""
    with job_log(log_file) as log:
        validate_all(sources, results=results, log=log)
        write_manifest(manifest, sources, configs_digest)


def derive_job(keys: Iterable[str], log_file: str | Path, derived: str | Path, configs_digest: str,
               results: str | Path = "results") -> None:
    """derive_arch_code: every plan's run.json (run id, or the reason it cannot run), then the plan-set file."""
    with job_log(log_file) as log:
        write_derived(derived, derive_all(keys, results=results, log=log), configs_digest)


# the preview: what the next invocation does, without doing it --------------------------------------

ACTIONS = ("new", "stale", "done", "invalid")


def incomplete_outputs(workdir: str | Path = ".") -> set[str]:
    """The output paths Snakemake marked incomplete (a job killed while writing them; the next run redoes it),
    from its `.snakemake/incomplete/` records (each named by the path in URL-safe base64, long names split
    into `@`-prefixed folders)."""
    root = Path(workdir) / ".snakemake" / "incomplete"
    paths: set[str] = set()
    if not root.is_dir():
        return paths
    for record in root.rglob("*"):
        if not record.is_file() or record.name == "migration_underway":
            continue
        encoded = "".join(part.lstrip("@") for part in record.relative_to(root).parts)
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            paths.add(base64.urlsafe_b64decode(encoded).decode())
    return paths


def existing_timestamp(results: Path, name: str, identity: str) -> str | None:
    """The timestamp this identity was planned with before (the ledger, or a run folder recording it)."""
    ts = runs.recorded_timestamp(results, name, identity)
    if ts:
        return ts
    entry = runs.ledger_from_folders(results, name).get(identity)
    return entry["ts"] if entry else None


def preview(files: Iterable[str], results: str | Path = "results", workdir: str | Path = ".") -> list[dict]:
    """For every plan of these config files, what the next `snakemake` does with it, writing nothing:
    {config, key, name, arch, run_id, action, stage, reason}, action one of ACTIONS: `new` (no run folder: trains
    from scratch; run_id is None when the run was never planned, as its timestamp is minted then), `stale`
    (`stage` and every stage after it run again, `reason` says why), `done` (nothing runs), `invalid` (`reason`:
    the errors the plan fails with)."""
    from ssvae.results import runstate

    results = Path(results)
    sources = plan_sources(list(files), results)
    plans = runnable(judge_all(sources)[0])
    incomplete = {str((Path(workdir) / path).absolute()) for path in incomplete_outputs(workdir)}
    rows = []
    for key, plan in plans.items():
        row = {"config": " and ".join(plan.get("sources") or [plan["source"]]), "key": key, "name": plan.get("name"),
               "arch": plan.get("arch"), "run_id": None, "action": None, "stage": None, "reason": None}
        if not plan["ok"]:
            rows.append(row | {"action": "invalid", "reason": error_text(plan)})
            continue
        ts = existing_timestamp(results, plan["name"], plan["identity"])
        if ts is None:
            rows.append(row | {"action": "new", "stage": "train", "reason": "not trained yet"})
            continue
        run_id = str(naming.RunId(plan["name"], plan["arch"], ts))
        if not (results / run_id).is_dir():
            rows.append(row | {"run_id": run_id, "action": "new", "stage": "train",
                               "reason": "no run folder (planned but never started, or deleted): trains under this id"})
            continue
        pending = runstate.pending_stage((results / run_id).absolute(), plan["effective"], incomplete)
        if pending is None:
            rows.append(row | {"run_id": run_id, "action": "done"})
        else:
            rows.append(row | {"run_id": run_id, "action": "stale", "stage": pending[0], "reason": pending[1]})
    return rows
