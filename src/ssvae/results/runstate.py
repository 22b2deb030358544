"""What state a run folder is in, from facts on disk only: a live train lock, failure markers, each stage's outputs.

A status is never remembered, always derived, so it stays true after a kill, a crash, a deleted file or a
`--forcerun`:
  training     a live process holds the run's train lock (runlock); the last saved epoch when there is one
  interrupted  training started (its log or a resume checkpoint exists) but no process holds the lock and it did
               not finish: killed, Ctrl-C, a time limit; it resumes from its last saved epoch on the next run
  waiting      a halving trial between its jobs: it finished a rung (rungs/<r>.json) and waits for that rung's
               promotion, or for its next rung's job, or (at the top rung) for the job that finishes it
  stopped      a halving trial the promotion of its rung did not send on: it waits for the job that finishes it
  failed       a stage ended with an error: `<stage>_failed.json` names the reason, and its log says more
  planned      the folder exists but no stage ever started in it
  trained / evaluated   training (and evaluation) finished, the later stages not yet
  stale        summary.json is there but an output of some stage is missing: the next run makes it again
  unreadable   summary.json cannot be read
  success / partial     every output of every stage is present and summary.json is this run's; partial when some
               metric or plot failed (summary.json's own status)

Reads no JAX and no large file (the epoch of a resume checkpoint comes from its small metadata).
"""

from __future__ import annotations

import json
from pathlib import Path

from ssvae import shapes
from ssvae.disk import read_regular, unframed, write_json
from ssvae.results import runlock

# Every output of every stage, relative to the run folder (the workflow's rules write exactly these).
STAGE_OUTPUTS = {
    "train": ("train.json", "history.csv", "checkpoints/best.msgpack"),
    "evaluate": ("metrics.json", "predictions.npz"),
    "report": ("summary.json", "REPORT.md", "REPORT.html", "config.yaml", "figures"),
}
STAGES = tuple(STAGE_OUTPUTS)
RUN_OUTPUTS = tuple(path for paths in STAGE_OUTPUTS.values() for path in paths)
RESUME_FILES = ("checkpoints/resume.msgpack", "checkpoints/resume.prev.msgpack")
STATUSES = ("planned", "training", "interrupted", "waiting", "stopped", "failed", "trained", "evaluated", "stale",
            "unreadable", "success", "partial")


def failure_marker(stage: str) -> str:
    """The file a failed stage leaves in the run folder (JSON: stage, reason, log, failed_at)."""
    return f"{stage}_failed.json"


def stage_log(stage: str) -> str:
    return f"logs/{stage}.log"


def record_failure(run_dir: str | Path, stage: str, reason: str, log: str | None = None) -> None:
    """Leave `<stage>_failed.json` in the run folder: the stage, why it failed, which log to read."""
    import datetime as dt

    write_json(Path(run_dir) / failure_marker(stage),
                    {"status": "failed", "stage": stage, "reason": reason, "log": log or stage_log(stage),
                     "failed_at": dt.datetime.now().isoformat(timespec="seconds")})


def clear_failure(run_dir: str | Path, stage: str) -> None:
    (Path(run_dir) / failure_marker(stage)).unlink(missing_ok=True)


def failed_stages(run_dir: str | Path) -> list[str]:
    """The stages whose failure marker is in the run folder (a run the comparison does not wait for)."""
    return [stage for stage in STAGES if (Path(run_dir) / failure_marker(stage)).exists()]


def _read_json(path: Path):
    try:
        return json.loads(read_regular(path).decode("utf-8")), None
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{path.name} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})"


def saved_epoch(run_dir: str | Path) -> int | None:
    """The last epoch a resume checkpoint of this run holds (the newest readable one), or None."""
    import msgpack

    for name in RESUME_FILES:
        path = Path(run_dir) / name
        try:
            payload = unframed(read_regular(path), path)
            document = msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=lambda code, data: None)
            return int(json.loads(document["meta"])["epochs_completed"])
        except Exception:  # noqa: BLE001 - a damaged or foreign file says nothing about the epoch
            continue
    return None


def _failure(run_dir: Path, stage: str) -> dict | None:
    """The failure a stage recorded, unless the stage finished since (its outputs are all there)."""
    marker = run_dir / failure_marker(stage)
    if not marker.exists():
        return None
    if all((run_dir / out).exists() for out in STAGE_OUTPUTS[stage]):
        return None
    document, problem = _read_json(marker)
    if problem is None and not isinstance(document, dict):
        problem = f"{marker.name} holds a {type(document).__name__}, not an object"
    reason = problem if problem else str(document.get("reason") or "no reason recorded")
    log = str(document.get("log")) if isinstance(document, dict) and document.get("log") else stage_log(stage)
    return {"status": "failed", "stage": stage, "reason": f"{stage} failed: {reason}", "log": log}


def _read_summary(run_dir: Path) -> tuple[dict | None, str | None]:
    """summary.json of the right shape, or why not (shapes.read names the file and what is wrong)."""
    return shapes.read(run_dir / "summary.json", "SUMMARY")


def _unreadable_summary(run_dir: Path) -> dict | None:
    if not (run_dir / "summary.json").exists():
        return None
    _, problem = _read_summary(run_dir)
    return {"status": "unreadable", "reason": problem} if problem else None


def folder_state(run_dir: str | Path) -> dict:
    """{status, reason?, log?, epoch?, summary?} of one run folder (see the module docstring)."""
    run_dir = Path(run_dir)
    holder = runlock.holder(run_dir)
    if holder is not None:
        epoch = saved_epoch(run_dir)
        saved = f"epoch {epoch} saved" if epoch is not None else "no epoch saved yet"
        reason = f"{saved}; held by {holder or 'a live process'}"
        failure = _failure(run_dir, "train")
        if failure:  # a failed training tried again
            reason = f"retrying ({failure['reason']}); {reason}"
        return {"status": "training", "epoch": epoch, "reason": reason, "log": stage_log("train")}
    trained = all((run_dir / out).exists() for out in STAGE_OUTPUTS["train"])
    if not trained:
        failure = _failure(run_dir, "train")
        if failure:
            return failure
        between = _between_rungs(run_dir)
        if between:
            return between
        epoch = saved_epoch(run_dir)
        started = any((run_dir / "logs").glob("train_rung*.log")) or (run_dir / stage_log("train")).exists()
        if epoch is not None or started or (run_dir / "train.json").exists():
            where = f"after epoch {epoch}" if epoch is not None else "before its first epoch was saved"
            how = f"resumes from epoch {epoch} on the next run" if epoch is not None else "starts again on the next run"
            return {"status": "interrupted", "epoch": epoch, "reason": f"training stopped {where}; {how}",
                    "log": stage_log("train")}
        if any((run_dir / out).exists() for out in RUN_OUTPUTS):
            unreadable = _unreadable_summary(run_dir)
            if unreadable:
                return unreadable
            missing = [out for out in STAGE_OUTPUTS["train"] if not (run_dir / out).exists()]
            return {"status": "stale", "reason": f"{', '.join(missing)} missing: the next run trains again"}
        return {"status": "planned"}
    for stage in ("evaluate", "report"):
        failure = _failure(run_dir, stage)
        if failure:
            return failure
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        summary, problem = _read_summary(run_dir)
        if summary is None:
            return {"status": "unreadable", "reason": problem or "summary.json cannot be read"}
        recorded = (summary.get("metadata") or {}).get("run_id") if isinstance(summary.get("metadata"), dict) else None
        missing = [out for out in RUN_OUTPUTS if not (run_dir / out).exists()]
        if recorded not in (None, run_dir.name):
            return {"status": "stale", "summary": summary,
                    "reason": f"summary.json is of another run ({recorded}): run snakemake again"}
        if missing:
            return {"status": "stale", "summary": summary,
                    "reason": f"{', '.join(missing)} missing; summary.json says {summary.get('status')!r} from "
                              "before: run snakemake again"}
        return {"status": str(summary.get("status", "unknown")), "summary": summary}
    if all((run_dir / out).exists() for out in STAGE_OUTPUTS["evaluate"]):
        return {"status": "evaluated"}
    return {"status": "trained"}


def rung_records(run_dir: Path) -> list[dict]:
    """The readable rungs/<r>.json records of a halving trial, by rung."""
    records = []
    for path in (run_dir / "rungs").glob("*.json"):
        document, problem = _read_json(path)
        if problem is None and isinstance(document, dict) and document.get("rung") == (
                int(path.stem) if path.stem.isdigit() else None):
            records.append(document)
    return sorted(records, key=lambda record: record["rung"])


def _promotion(run_dir: Path, record: dict) -> bool | None:
    """Whether the promotion of the record's rung sent the trial on; None while that rung is not promoted yet."""
    search = record.get("search") or run_dir.name.split("__")[0].rpartition("-t")[0]
    document, problem = _read_json(run_dir.parent / ".search" / search / f"rung{record['rung']}.json")
    if problem is not None or not isinstance(document, dict) or not isinstance(document.get("promoted"), list):
        return None
    return record.get("trial") in document["promoted"]


def _between_rungs(run_dir: Path) -> dict | None:
    """The state of a halving trial between its jobs (see the module docstring), from its rung records, its logs,
    its resume checkpoint and the promotion of its last rung; None when it is not between jobs: it has no rung
    record, or a job that trains it started after its last rung record and did not finish (interrupted)."""
    records = rung_records(run_dir)
    if not records or (run_dir / stage_log("train")).exists():
        return None  # no rung finished yet, or its train job started (and did not finish: no train outputs)
    last = records[-1]
    rung, epochs = last["rung"], last.get("epochs_completed")
    log = f"logs/train_rung{rung}.log"
    if last.get("status") == "stopped":
        reached = last.get("reached", rung)
        return {"status": "stopped", "rung": reached, "log": log,
                "reason": f"stopped after rung {reached} at epoch {epochs}: not promoted; its train job finishes "
                          "it there"}
    if last.get("status") != "trained":
        return None
    rungs = last.get("rungs")
    of = f" of 0-{len(rungs) - 1}" if isinstance(rungs, list) else ""
    done = f"rung {rung}{of} done (trained to epoch {epochs})"
    if isinstance(rungs, list) and rung == len(rungs) - 1:
        return {"status": "waiting", "rung": rung, "log": log,
                "reason": f"{done}, the top rung; waiting for its train job to finish it"}
    promoted = _promotion(run_dir, last)
    if promoted is False:
        return {"status": "stopped", "rung": rung, "log": log,
                "reason": f"stopped after rung {rung} at epoch {epochs}: not promoted; its train job finishes it "
                          "there"}
    epoch = saved_epoch(run_dir)
    if (run_dir / f"logs/train_rung{rung + 1}.log").exists() or (
            epoch is not None and isinstance(epochs, int) and epoch > epochs):
        return None  # the next rung's training started and was cut short
    if promoted is None:
        return {"status": "waiting", "rung": rung, "log": log, "reason": f"{done}; waiting for the promotion"}
    return {"status": "waiting", "rung": rung, "log": log,
            "reason": f"{done}; promoted, waiting to train on to rung {rung + 1}"}


def _comparable(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _changed_keys(section: str, recorded: dict | None, current: dict | None) -> list[str]:
    recorded, current = _comparable(recorded or {}), _comparable(current or {})
    return [f"{section}.{key}" for key in sorted(set(recorded) | set(current)) if recorded.get(key) != current.get(key)]


def _recorded_config(run_dir: Path) -> dict:
    import yaml

    try:
        document = yaml.safe_load(read_regular(run_dir / "config.yaml").decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return document if isinstance(document, dict) else {}


def _newer_inputs(run_dir: Path, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> list[str]:
    """The inputs modified after the oldest output file (Snakemake's rerun rule; directories not counted)."""
    times = [(run_dir / out).stat().st_mtime for out in outputs if (run_dir / out).is_file()]
    if not times:
        return []
    oldest = min(times)
    return [name for name in inputs if (run_dir / name).is_file() and (run_dir / name).stat().st_mtime > oldest]


STAGE_INPUTS = {
    "evaluate": ("train.json", "checkpoints/best.msgpack"),
    "report": ("train.json", "history.csv", "metrics.json", "predictions.npz"),
}


def pending_stage(run_dir: str | Path, effective: dict, incomplete: set[str] | frozenset = frozenset()) -> \
        tuple[str, str] | None:
    """The first stage the next invocation runs in this existing run's folder and why, or None when it is done.

    Mirrors the workflow's rules: a stage runs when one of its outputs is missing or left incomplete by a killed
    job (`incomplete`: output paths as Snakemake records them), when an input is newer than its outputs, or when
    its config section changed (evaluation: `evaluation`; report: `report`, `experiment`); every stage after it
    runs too. `effective` is the run's current effective config.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "train", "the run folder is gone: trains again under the same run id"

    def missing(stage):
        return [out for out in STAGE_OUTPUTS[stage]
                if not (run_dir / out).exists() or str(run_dir / out) in incomplete]

    gone = missing("train")
    if gone:
        failure = _failure(run_dir, "train")
        if failure:
            return "train", f"{failure['reason']}; tried again"
        between = _between_rungs(run_dir)
        if between:  # a halving trial between its jobs: its next job goes on from its checkpoint
            return "train", between["reason"]
        epoch = saved_epoch(run_dir)
        if epoch is not None:
            return "train", f"interrupted after epoch {epoch}: resumes from it"
        return "train", f"{', '.join(gone)} missing"
    recorded = _recorded_config(run_dir)
    for stage, sections in (("evaluate", ("evaluation",)), ("report", ("report", "experiment"))):
        gone = missing(stage)
        if gone:
            failure = _failure(run_dir, stage)
            return stage, f"{failure['reason']}; tried again" if failure else f"{', '.join(gone)} missing"
        newer = _newer_inputs(run_dir, STAGE_INPUTS[stage], STAGE_OUTPUTS[stage])
        if newer:
            return stage, f"{', '.join(newer)} changed since it ran"
        changed = [key for section in sections
                   for key in _changed_keys(section, recorded.get(section), effective.get(section))]
        if changed:
            return stage, f"{', '.join(changed)} changed"
    return None
