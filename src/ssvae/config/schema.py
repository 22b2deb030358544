"""The experiment JSON Schema: loading it, its defaults, and its violations as readable `ConfigError`s."""

from __future__ import annotations

import copy
import difflib
import functools
import json
from importlib import resources

import jsonschema
import yaml

from .types import SECTIONS, ConfigError


@functools.cache
def _schema_text() -> str:
    return resources.files("ssvae").joinpath("schemas/experiment.schema.yaml").read_text()


def schema() -> dict:
    """The experiment JSON Schema (also at workflow/schemas/experiment.schema.yaml)."""
    return yaml.safe_load(_schema_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


@functools.cache
def _defaults_json() -> str:
    props = schema()["properties"]
    return json.dumps({
        section: {key: spec.get("default") for key, spec in props[section]["properties"].items()}
        for section in SECTIONS
    })


def defaults() -> dict:
    """Every section with every key at its schema default."""
    return json.loads(_defaults_json())


def fill(raw: dict) -> dict:
    """The raw sections laid over every default."""
    effective = defaults()
    for section in SECTIONS:
        effective[section].update(copy.deepcopy(raw.get(section) or {}))
    return effective


def dotted(path) -> str:
    return ".".join(str(p) for p in path)


def _allowed_text(spec: dict) -> str | None:
    if "enum" in spec:
        return ", ".join(json.dumps(v) for v in spec["enum"])
    types = spec.get("type")
    bounds = []
    if "minimum" in spec:
        bounds.append(f">= {spec['minimum']}")
    if "exclusiveMinimum" in spec:
        bounds.append(f"> {spec['exclusiveMinimum']}")
    if "maximum" in spec:
        bounds.append(f"<= {spec['maximum']}")
    if "exclusiveMaximum" in spec:
        bounds.append(f"< {spec['exclusiveMaximum']}")
    if types is None and not bounds:
        return None
    kind = " or ".join(types) if isinstance(types, list) else (types or "")
    return " ".join(x for x in [kind, " and ".join(bounds)] if x) or None


_MESSAGES = {
    "enum": "not an allowed value",
    "type": "wrong type",
    "minimum": "out of range",
    "maximum": "out of range",
    "exclusiveMinimum": "out of range",
    "exclusiveMaximum": "out of range",
    "minItems": "too few items",
    "maxItems": "too many items",
}


def _unknown_keys(err, file: str) -> list[ConfigError]:
    """One error per key the schema does not know, with the closest known key."""
    where = list(err.absolute_path)
    known = sorted(err.schema.get("properties", {}))
    errors = []
    for extra in sorted(set(err.instance) - set(known)):
        if err.schema.get("additionalProperties") not in (False, None):
            continue
        close = difflib.get_close_matches(str(extra), known, n=1, cutoff=0.5)
        errors.append(ConfigError(
            file, dotted(where + [extra]), err.instance[extra], "unknown key",
            allowed=", ".join(known) if len(known) <= 12 else None,
            suggestion=dotted(where + [close[0]]) if close else None,
        ))
    return errors


def schema_errors(raw: dict, file: str) -> list[ConfigError]:
    """Every schema violation in `raw`, sorted by key."""
    errors = []
    for err in sorted(_validator().iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))):
        if err.validator == "additionalProperties":
            errors += _unknown_keys(err, file)
            continue
        spec = err.schema if isinstance(err.schema, dict) else {}
        message = _MESSAGES.get(err.validator, err.message)
        errors.append(ConfigError(file, dotted(err.absolute_path), err.instance, message,
                                  allowed=_allowed_text(spec)))
    return errors
