"""The shapes of the JSON files the tools read back: summary.json, metrics.json, a plan's validated.json and
run.json, and the timestamp ledger.

Valid JSON is not enough: a summary.json holding a list where an object belongs, or a string where a number
belongs, would crash whatever reads it. Each file is checked against its JSON Schema here before its contents
are used, and `problem` says what is wrong in one line that names the file and the key. The schemas describe
only what the readers use; other keys may be anything.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ssvae import disk

_STR = {"type": ["string", "null"]}
_INT = {"type": ["integer", "null"]}
_NUM = {"type": ["number", "null"]}
_BOOL = {"type": ["boolean", "null"]}
_STRINGS = {"type": ["array", "null"], "items": {"type": "string"}}


def _entry(value: dict | None = None) -> dict:
    """A {value, status, reason} entry (metrics, baselines, artifacts, plots)."""
    properties = {"status": {"type": "string"}, "reason": _STR}
    if value is not None:
        properties["value"] = value
    return {"type": "object", "required": ["status"], "properties": properties}


def _object_of(fields: dict) -> dict:
    return {"type": ["object", "null"], "properties": fields}


_METRICS = {
    "type": ["object", "null"],
    "additionalProperties": _entry(),
    "properties": {
        "accuracy": _entry(_NUM),
        "k_eff": _entry(_NUM),
        "clustering_accuracy": _entry(_NUM),
        "nmi": _entry(_NUM),
        "elbo": _entry(_object_of({"elbo": _NUM, "likelihood": _STR})),
        "calibration": _entry(_object_of({"ece": _NUM})),
    },
}
_BASELINES = {"type": ["object", "null"], "additionalProperties": _entry(_object_of({"accuracy": _NUM}))}
_EVALUATION = {"split": _STR, "num_examples": _INT, "num_labeled_train": _INT, "metrics": _METRICS,
               "baseline": _BASELINES, "artifacts": {"type": ["object", "null"], "additionalProperties": _entry()}}

SUMMARY = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "failures": _STRINGS,
        "warnings": _STRINGS,
        "diagnostics": {"type": ["array", "null"], "items": {"type": "object", "properties": {"code": _STR}}},
        "metadata": _object_of({"run_id": _STR, "experiment_name": _STR, "architecture_code": _STR,
                                "timestamp": _STR, "description": _STR, "tags": _STRINGS, "group": _STR,
                                "dataset": _STR, "seed": _INT, "config_source": _STR}),
        "config": {"type": ["object", "null"], "additionalProperties": {"type": ["object", "null"]}},
        "training": _object_of({"status": _STR, "best_epoch": _INT, "epochs_completed": _INT,
                                "stopped_early": _BOOL, "training_time_sec": _NUM}),
        "evaluation": _object_of(_EVALUATION),
        "plots": {"type": ["object", "null"], "additionalProperties": _entry(
            _object_of({"files": _STRINGS}))},
        "headline": {"type": ["object", "null"]},
    },
}

METRICS = {"type": "object", "required": ["metrics"], "properties": _EVALUATION}

_TS = {"type": "string", "pattern": r"^\d{8}_\d{6}$"}

LEDGER = {
    "type": "object",
    "additionalProperties": {"type": "object", "required": ["ts"], "properties": {"ts": _TS, "arch": _STR}},
}

PLAN_RUN = {
    "type": "object",
    "required": ["ok"],
    "properties": {"ok": {"type": "boolean"}, "run_id": {"type": "string"}, "errors": _STRINGS},
    "if": {"properties": {"ok": {"const": True}}},
    "then": {"required": ["run_id"]},
}

PLAN_VALIDATED = {
    "type": "object",
    "required": ["ok"],
    "properties": {
        "ok": {"type": "boolean"},
        "source": _STR,
        "key": {"type": "string"},
        "errors": _STRINGS,
        "warnings": _STRINGS,
        "effective": {"type": ["object", "null"], "additionalProperties": {"type": ["object", "null"]}},
    },
    "if": {"properties": {"ok": {"const": True}}},
    "then": {"required": ["effective"], "properties": {"effective": {
        "type": "object", "required": ["experiment", "data", "model", "evaluation", "report"]}}},
}


@functools.cache
def _validator(schema_name: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(globals()[schema_name])


def problem(path: str | Path, document: Any, schema_name: str) -> str | None:
    """None when `document` (read from `path`) has the shape `schema_name` (SUMMARY, METRICS, LEDGER, PLAN_RUN,
    PLAN_VALIDATED) describes; else one line naming the file, the key and what is wrong."""
    validator = _validator(schema_name)
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str,
                                                                                                  e.absolute_path))))
    if not errors:
        return None
    error = errors[0]
    key = ".".join(str(part) for part in error.absolute_path) or "(the whole document)"
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{Path(path).name}: {key}: {message}"


def read(path: str | Path, schema_name: str) -> tuple[Any, str | None]:
    """(document, None) for a readable UTF-8 JSON file of the right shape; else (None, why not), naming the
    file."""
    document, reason = disk.read_json_or_reason(path)
    if reason is not None:
        return None, reason
    reason = problem(path, document, schema_name)
    return (None, reason) if reason else (document, None)
