"""From a config file to one `Plan` per run: read, expand the sweep, normalise, check, fill and resolve."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Sequence

from ssvae import naming
from ssvae.config import search as search_mod
from ssvae.config.legacy import normalise_legacy
from ssvae.config.loading import Loaded, read_config
from ssvae.config.rules import RULES, Rule, interchangeable_components, semantic_errors
from ssvae.config.schema import fill, schema_errors
from ssvae.config.sweeps import (
    SEED_KEY,
    label_key,
    plan_key,
    point_label,
    set_dotted,
    stem_key,
    sweep_errors,
    sweep_points,
)
from ssvae.config.types import (
    CONDITIONABLE_PRIORS,
    DATASETS,
    ConfigError,
    ConfigErrors,
    Experiment,
    default_consistency_weight,
    shorten,
)

# Model keys added after runs were trained, with the value that means "as before": at that value a key is left
# out of the run identity, so adding it retrains nothing.
IDENTITY_NEUTRAL = {"entropy_weight": 0.0, "consistency_weight": 0.0}


def run_identity(effective: dict) -> str:
    """Content hash of the effective `data` and `model` sections: what decides whether training is reused."""
    model = {k: v for k, v in effective["model"].items() if k not in IDENTITY_NEUTRAL or v != IDENTITY_NEUTRAL[k]}
    payload = json.dumps({"data": effective["data"], "model": model}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclasses.dataclass
class Plan:
    """One run a config asks for: its name, and either the effective config or the errors."""

    source: str
    key: str
    point: dict
    effective: dict | None
    errors: list[ConfigError]
    warnings: list[str]
    group: str | None = None
    search: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def name(self) -> str | None:
        return self.effective["experiment"]["name"] if self.effective else None

    @property
    def arch(self) -> str | None:
        return naming.arch_code(self.effective["model"]) if self.effective else None

    @property
    def identity(self) -> str | None:
        if not self.effective:
            return None
        if self.search and self.search.get("digest"):  # a TPE trial: its search and number (values asked later)
            return search_mod.tpe_trial_identity(self.search["digest"], self.search["trial"])
        return run_identity(self.effective)

    def experiment(self) -> Experiment:
        if not self.ok:
            raise ConfigErrors(self.errors)
        return Experiment.from_effective(self.effective)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "source": self.source,
            "key": self.key,
            "point": self.point,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": self.warnings,
            "effective": self.effective,
            "name": self.name,
            "arch": self.arch,
            "identity": self.identity,
            "group": self.group,
            "search": self.search,
        }


# τ counts a τ-classifier starts with on its component-to-class assignment when the config leaves them unset:
# enough that the assignment outlasts the first epochs' labeled counts (about 100 per component per epoch with
# 100 labels and labeled_batch_size 32), so the labels move the components rather than rename them.
DEFAULT_TAU_INIT_COUNTS = 1000.0

# Usage-spread reward (weight of H(mean usage)) when unset and the components can specialise.
DEFAULT_DIVERSITY_WEIGHT = -20.0

# Labeled images added to every training batch when the config leaves `labeled_batch_size` unset.
DEFAULT_LABELED_BATCH_SIZE = 32


def default_augment_shift(image_hw) -> int:
    """Random-shift range used when `data.augment_shift` is unset: 2 pixels for 28×28 images, none for the 8×8
    digits (one pixel is an eighth of the image there)."""
    return 2 if min(image_hw) >= 28 else 0


def resolve(effective: dict, source: Path) -> None:
    """Fill the defaults that depend on other keys: `learnable_pi` (true beside a Dirichlet α),
    `tau_init_counts` (with the τ-classifier), `component_diversity_weight` (0 where the components are
    interchangeable), `labeled_batch_size` (with labels), `data.augment_shift` (by image size),
    `consistency_weight` (with shifted images or a head), and the ones below."""
    model = effective["model"]
    data = effective["data"]
    if effective["experiment"]["name"] is None:
        effective["experiment"]["name"] = source.stem
    if model["component_embedding_dim"] is None:
        model["component_embedding_dim"] = model["latent_dim"]
    if model["use_component_aware_decoder"] and model["decoder_conditioning"] == "none":
        model["decoder_conditioning"] = "concat"
    model["use_component_aware_decoder"] = False
    if model["input_hw"] is None:
        model["input_hw"] = list(DATASETS[data["dataset"]]["hw"])
    if model["learnable_pi"] is None:
        model["learnable_pi"] = model["dirichlet_alpha"] is not None and model["prior_type"] in CONDITIONABLE_PRIORS
    if model["tau_init_counts"] is None:
        model["tau_init_counts"] = DEFAULT_TAU_INIT_COUNTS if model["use_tau_classifier"] else 0.0
    if model["component_diversity_weight"] is None:
        model["component_diversity_weight"] = 0.0 if interchangeable_components(model) else DEFAULT_DIVERSITY_WEIGHT
    if model["labeled_batch_size"] is None:
        model["labeled_batch_size"] = DEFAULT_LABELED_BATCH_SIZE if data["num_labeled"] > 0 else 0
    if data["augment_shift"] is None:
        data["augment_shift"] = default_augment_shift(DATASETS[data["dataset"]]["hw"])
    if model["consistency_weight"] is None:
        model["consistency_weight"] = default_consistency_weight(data["augment_shift"],
                                                                 head=not model["use_tau_classifier"])
    if data["path"] is not None:
        data["path"] = str(data["path"])


def _line_of(key: str, lines: dict[str, int], point: dict) -> int | None:
    """The line a dotted key was written on: its own, its list's, or the sweep (or search) entry that set it."""
    for written in point:
        if key == written or key.startswith(written + "."):
            if f"search.space.{written}" in lines:
                return lines[f"search.space.{written}"]
            seeds = written == SEED_KEY and "sweep.seeds" in lines
            return lines.get("sweep.seeds" if seeds else f"sweep.grid.{written}")
    if key in lines:
        return lines[key]
    parent, _, last = key.rpartition(".")
    return lines.get(parent) if last.isdigit() else None


def _located(errors: list[ConfigError], lines: dict[str, int], point: dict | None = None) -> list[ConfigError]:
    """The errors with the line of their key where it was written, in the order of the file."""
    located = [e.with_line(_line_of(e.key, lines, point or {})) for e in errors]
    return sorted(located, key=lambda e: (e.line is None, e.line or 0))


def _sweep_stage(source: Path, loaded: Loaded) -> tuple[list[dict] | None, list[ConfigError]]:
    """The sweep's points, or the errors that stop it from being expanded (schema, grid keys, size)."""
    if loaded.raw.get("search") is not None:
        search, errors = _search_stage(source, loaded)
        if errors:
            return None, errors
        if search_mod.uses_tpe(search):  # asked later (ssvae.pipeline.tpe): planned at the configured values
            return [{} for _ in range(search["trials"])], []
        return [search_mod.trial_values(search, t) for t in range(search["trials"])], []
    sweep = loaded.raw.get("sweep")
    if sweep is None:
        return [{}], []
    errors = schema_errors({"sweep": sweep}, str(source)) or sweep_errors(loaded.raw, str(source))
    if errors:
        return None, _located(errors, loaded.lines)
    return sweep_points(loaded.raw), []


def _search_stage(source: Path, loaded: Loaded) -> tuple[dict | None, list[ConfigError]]:
    """The search's settings (defaults filled), or the errors of its section."""
    errors = search_mod.section_errors(loaded.raw, str(source))
    if errors:
        return None, _located(errors, loaded.lines)
    return search_mod.settings(loaded.raw), []


def _labels(source: Path, loaded: Loaded, points: list[dict]) -> list[str | None]:
    """The label of each point in run names and plan keys: its trial (`t007`) in a search, else None (the point's
    own label)."""
    if loaded.raw.get("search") is not None:
        return [search_mod.trial_label(t) for t in range(len(points))]
    return [None] * len(points)


def plan_keys(path: str | Path) -> list[str]:
    """The plan keys of one config file, read cheaply at Snakefile parse time; never raises.

    Whatever is wrong with the file (encoding, YAML, size, name, sweep), it gets one usable key and its
    validate_config job reports the error.
    """
    source = Path(path)
    try:
        loaded = read_config(source)
        if loaded.errors:
            return [stem_key(source)]
        points, errors = _sweep_stage(source, loaded)
        if errors:
            return [stem_key(source)]
        labels = _labels(source, loaded, points)
        return list(dict.fromkeys(plan_key(source, point, label) for point, label in zip(points, labels)))
    except Exception:  # noqa: BLE001  (parse time must survive any file; the validate_config job reports it)
        return [stem_key(source)]


def _name_findings(effective: dict, point: dict, file: str, warnings: list[str]) -> list[ConfigError]:
    """A run name cut to 64 characters is a warning; a sweep label with nothing usable is an error."""
    errors = []
    if point and label_key(point).startswith("point-"):
        errors.append(ConfigError(file, "sweep", point_label(point),
                                  "this sweep point's label is empty after sanitising, so its run name would not "
                                  "say which point it is", allowed="grid values with letters or digits"))
    name = effective["experiment"]["name"]
    if naming.is_cut(name):
        warnings.append(f"{file}: experiment name {shorten(name)} is over {naming.MAX_NAME_LENGTH} characters once "
                        f"sanitised and is cut to {naming.sanitize_name(name)!r}; names cut alike share a run folder")
    return errors


def _plan_one(source: Path, loaded: Loaded, point: dict, base_warnings: list[str], rules: Sequence[Rule],
              label: str | None = None, search: dict | None = None) -> Plan:
    """One run of a config: the sweep point (or search trial, named by `label`) laid over the file's sections."""
    file = str(source)
    warnings = list(base_warnings)
    raw = copy.deepcopy(loaded.raw)
    raw.pop("sweep", None)
    raw.pop("search", None)
    origin = "search.space" if search is not None else "sweep.grid"
    errors: list[ConfigError] = []
    for key, value in point.items():
        try:
            set_dotted(raw, key, value)
        except (KeyError, AttributeError):
            errors.append(ConfigError(file, f"{origin}.{key}", value,
                                      "cannot set this key: the section it points into is not a mapping"))
    key = plan_key(source, point, label)
    raw, legacy_errors = normalise_legacy(raw, file, warnings)
    errors += legacy_errors
    errors += schema_errors(raw, file)
    if errors:
        return Plan(file, key, point, None, _located(errors, loaded.lines, point), warnings)
    effective = fill(raw)
    resolve(effective, source)
    base = effective["experiment"]["name"]
    group_point = {k: v for k, v in point.items() if k != SEED_KEY}
    group = f"{base}-{point_label(group_point)}" if group_point else base
    if label is not None:
        group = f"{base}-{label}"
        effective["experiment"]["name"] = group
    elif point:
        effective["experiment"]["name"] = f"{base}-{point_label(point)}"
    errors = _name_findings(effective, point if label is None else {}, file, warnings)
    errors += semantic_errors(effective, file, warnings, rules)
    trial = None
    if search is not None:
        errors += search_mod.horizon_errors(search, effective, file)
        trial = {**search, "name": naming.sanitize_name(base), "trial": int(label[1:]), "values": point}
        if search_mod.uses_tpe(search):
            trial["values"] = None
            trial["batch_index"] = search_mod.batch_of(search, trial["trial"])
    if errors:
        return Plan(file, key, point, None, _located(errors, loaded.lines, point), warnings, search=trial)
    effective["experiment"]["name"] = naming.sanitize_name(effective["experiment"]["name"])
    if trial is not None and search_mod.uses_tpe(trial):
        trial["digest"] = search_mod.tpe_digest(run_identity(effective), trial)
    return Plan(file, key, point, effective, [], warnings, group=naming.sanitize_name(group), search=trial)


def _tpe_range_errors(source: Path, loaded: Loaded, rules: Sequence[Rule], search: dict) -> list[ConfigError]:
    """TPE may ask any value of the space, after planning: each end of a range and each choice must be a value
    the model accepts with the rest of the config as written (a drawn random value fails its trial alone; an
    asked one would fail a trial whose folder is planned already)."""
    label = search_mod.trial_label(0)
    if not _plan_one(source, loaded, {}, [], rules, label).ok:
        return []  # the trials' plans fail with the config's own errors
    errors = []
    for key, spec in search["space"].items():
        (kind, values), = spec.items()
        for value in values:
            plan = _plan_one(source, loaded, {key: value}, [], rules, label)
            if not plan.ok:
                first = plan.errors[0]
                errors.append(ConfigError(
                    str(source), f"search.space.{key}.{kind}", value,
                    f"TPE may ask any value of the space, and the model rejects this one ({first.key}: "
                    f"{first.message}); narrow the range or drop the choice", allowed=first.allowed))
                break
    return _located(errors, loaded.lines)


def _run_name(raw: dict, point: dict, source: Path, label: str | None = None) -> str | None:
    """The run name a point gets (as `_plan_one` makes it), computed without validating anything."""
    experiment = raw.get("experiment")
    base = point.get("experiment.name", experiment.get("name") if isinstance(experiment, dict) else None)
    base = source.stem if base is None else str(base)
    try:
        if label is not None:
            return naming.sanitize_name(f"{base}-{label}")
        return naming.sanitize_name(f"{base}-{point_label(point)}" if point else base)
    except naming.NamingError:
        return None


_SHARED_NAME = "two sweep points give the same run name (shorten experiment.name)"
_SHARED_KEY = "two sweep points give the same plan key (their labels differ only in characters sanitising drops)"


def _plans(source: Path, wanted: str | None = None, rules: Sequence[Rule] = RULES) -> list[Plan]:
    """Every plan of a config file, or only those with the plan key `wanted`.

    Points that would share a run name or a plan key are errors, found from every point's name and key
    (cheap) so that planning one point of a large sweep does not validate all of them.
    """
    file = str(source)
    loaded = read_config(source)
    if loaded.errors:
        return [Plan(file, wanted or stem_key(source), {}, None, loaded.errors, [])]
    points, errors = _sweep_stage(source, loaded)
    if errors:
        return [Plan(file, wanted or stem_key(source), {}, None, errors, [])]
    labels = _labels(source, loaded, points)
    search = search_mod.settings(loaded.raw) if loaded.raw.get("search") is not None else None
    keys = [plan_key(source, point, label) for point, label in zip(points, labels)]
    names = [_run_name(loaded.raw, point, source, label) for point, label in zip(points, labels)]
    key_counts, name_counts = Counter(keys), Counter(n for n in names if n is not None)
    range_errors = (_tpe_range_errors(source, loaded, rules, search)
                    if search is not None and search_mod.uses_tpe(search) else [])
    plans = []
    for point, label, key, name in zip(points, labels, keys, names):
        if wanted is not None and key != wanted:
            continue
        plan = _plan_one(source, loaded, point, [], rules, label, search)
        shared = ([ConfigError(file, "sweep", name, _SHARED_NAME)] if name_counts[name] > 1 else []) + (
            [ConfigError(file, "sweep", key, _SHARED_KEY)] if key_counts[key] > 1 else [])
        if shared or range_errors:
            plan.errors += _located(shared, loaded.lines) + range_errors
            plan.effective = None
        plans.append(plan)
    return plans


def tpe_planner(path: str | Path, rules: Sequence[Rule] = RULES):
    """(the search's settings and digest, or None with the errors; plan(trial, values) -> Plan) for the TPE search
    of a config file as it reads now: how the local rule that asks a batch checks the values it asks."""
    source = Path(path)
    loaded = read_config(source)
    errors = list(loaded.errors)
    search = None
    if not errors:
        search, errors = _search_stage(source, loaded)
    if search is None or not search_mod.uses_tpe(search):
        return None, errors or [ConfigError(str(source), "search", None, "asks no TPE search")], None
    base = _plan_one(source, loaded, {}, [], rules, search_mod.trial_label(0), search)
    if not base.ok:
        return None, base.errors, None
    settings = {**search, "name": base.search["name"], "digest": base.search["digest"], "arch": base.arch}

    def plan(trial: int, values: dict) -> Plan:
        return _plan_one(source, loaded, values, [], rules, search_mod.trial_label(trial))

    return settings, [], plan


def load_plans(path: str | Path, rules: Sequence[Rule] = RULES) -> list[Plan]:
    """Read one config file and return a Plan per run it asks for (one, or one per sweep point).

    `rules` are the semantic rules to apply: this package's own by default; `ssvae.pipeline.validation` adds
    the checks against the dataset's files and the metric and plot registries.
    """
    return _plans(Path(path), rules=rules)


def load_plan(path: str | Path, key: str, rules: Sequence[Rule] = RULES) -> Plan:
    """The plan with this key from a config file (a plan carrying an error if the file has no such run).

    Validates only that run: each validate_config job of a large sweep does its own point's work.
    """
    plans = _plans(Path(path), wanted=key, rules=rules)
    if plans:
        return plans[0]
    return Plan(str(path), key, {}, None, [ConfigError(
        str(path), "", key, "this config has no run with this plan key; the file changed after Snakemake planned "
        "it, so run snakemake again")], [])


def load_experiment(path: str | Path, rules: Sequence[Rule] = RULES) -> Experiment:
    """A single-run config as a validated Experiment; raises ConfigErrors listing every problem."""
    plans = load_plans(path, rules)
    if len(plans) != 1:
        raise ConfigErrors([ConfigError(str(path), "sweep", None, f"declares {len(plans)} runs; use load_plans")])
    return plans[0].experiment()
