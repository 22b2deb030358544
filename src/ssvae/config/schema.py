"""The experiment JSON Schema: loading it, its defaults, and its violations as readable `ConfigError`s."""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
from importlib import resources

import jsonschema
import yaml

from ssvae.config.types import SECTIONS, ConfigError, shorten


@functools.cache
def _schema_text() -> str:
    return resources.files("ssvae.config").joinpath("experiment.schema.yaml").read_text()


def schema() -> dict:
    """The experiment JSON Schema (src/ssvae/config/experiment.schema.yaml)."""
    return yaml.safe_load(_schema_text())


def _is_integer(checker, value) -> bool:
    """Integers are ints: 10.0 is not a component count, and true is not 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(checker, value) -> bool:
    """Numbers are finite: .inf and .nan are no weight, rate or size."""
    return _is_integer(checker, value) or (isinstance(value, float) and math.isfinite(value))


_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
StrictValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)


@functools.cache
def _validator():
    return StrictValidator(schema())


@functools.cache
def _section_keys() -> dict[str, frozenset]:
    props = schema()["properties"]
    return {section: frozenset(props[section]["properties"]) for section in SECTIONS}


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


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "null": "null"}
MAX_ERRORS = 50


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
    names: list[str] = types if isinstance(types, list) else [types] if types else []
    kind = " or ".join(_TYPE_WORDS.get(t, t) for t in names)
    if "number" in names:
        kind = kind.replace("number", "finite number")
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

_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


def _type_message(value, spec: dict) -> str:
    """Why a value has the wrong type, in the words a researcher would use."""
    types = spec.get("type")
    names = set(types if isinstance(types, list) else [types])
    if isinstance(value, float) and not math.isfinite(value) and names & {"number", "integer"}:
        return "not a finite number (.inf and .nan are not allowed" + ("; null switches it off)" if "null" in names
                                                                       else ")")
    if isinstance(value, bool) and names & {"number", "integer"}:
        return "a switch (true/false) is not a number"
    if isinstance(value, float) and "integer" in names:
        return "must be a whole number (write 10, not 10.0 or 1e1)"
    if isinstance(value, str) and "boolean" in names and value.strip().lower() in _YAML11_BOOLEANS:
        return "is text, not a switch (YAML 1.2 reads yes/no/on/off and quoted words as text); write true or false"
    if isinstance(value, str) and names & {"number", "integer"}:
        try:
            float(value)
            return "is text, not a number; write it without quotes"
        except ValueError:
            pass
    if "object" in names:
        return "must be a mapping of keys (key: value lines indented under it)"
    if "array" in names:
        return "must be a list, e.g. [a, b]"
    return "wrong type"


def _key_suggestion(extra: str, where: list, known: list[str]) -> str | None:
    """The closest known key here; else the section that has this key; else the nested form of a dotted key."""
    sections = _section_keys()
    text = str(extra)
    if len(where) <= 1:
        for section in SECTIONS:
            if section not in where and text in sections[section]:
                return f"{section}.{text}"
    close = difflib.get_close_matches(text, known, n=1, cutoff=0.5)
    if close:
        return dotted(where + [close[0]])
    head, _, leaf = text.partition(".")
    if not where and head in sections and leaf:
        return f"{head}: {{{leaf}: ...}} (nested, not dotted)"
    return None


def _unknown_keys(err, file: str, budget: int) -> list[ConfigError]:
    """One error per key the schema does not know, with the closest known key."""
    where = list(err.absolute_path)
    if err.schema.get("additionalProperties") not in (False, None):
        return []
    known = sorted(err.schema.get("properties", {}))
    extras = [k for k in err.instance if k not in err.schema.get("properties", {})]
    errors = []
    for extra in extras[:budget]:
        errors.append(ConfigError(
            file, dotted(where + [extra]), err.instance[extra], "unknown key",
            allowed=", ".join(known) if len(known) <= 12 else None,
            suggestion=_key_suggestion(extra, where, known),
        ))
    if len(extras) > budget:
        errors.append(ConfigError(file, dotted(where), None, f"{len(extras) - budget:,} more unknown keys not shown"))
    return errors


def _error(err, file: str) -> ConfigError:
    spec = err.schema if isinstance(err.schema, dict) else {}
    key = dotted(err.absolute_path)
    if err.validator == "type":
        return ConfigError(file, key, err.instance, _type_message(err.instance, spec), allowed=_allowed_text(spec))
    if err.validator == "enum" and isinstance(err.instance, str):
        words = {str(v).lower(): str(v) for v in spec["enum"]}
        close = difflib.get_close_matches(err.instance.lower(), list(words), n=1, cutoff=0.6)
        return ConfigError(file, key, err.instance, "not an allowed value", allowed=_allowed_text(spec),
                           suggestion=words[close[0]] if close else None)
    message = _MESSAGES.get(err.validator) or shorten(err.message, 200)
    return ConfigError(file, key, err.instance, message, allowed=_allowed_text(spec))


def schema_errors(raw: dict, file: str) -> list[ConfigError]:
    """Every schema violation in `raw`, sorted by key; at most `MAX_ERRORS`, then a line saying how many more."""
    found = sorted(_validator().iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    errors: list[ConfigError] = []
    for err in found:
        budget = MAX_ERRORS - len(errors)
        if budget <= 0:
            errors.append(ConfigError(file, "", None, f"more errors not shown (the first {MAX_ERRORS} are above)"))
            break
        if err.validator == "additionalProperties":
            errors += _unknown_keys(err, file, budget)
        else:
            errors.append(_error(err, file))
    return errors
