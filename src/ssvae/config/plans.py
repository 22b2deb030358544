"""From a config file to one `Plan` per run: read, expand the sweep, normalise, check, fill and resolve."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

from .. import naming
from .legacy import normalise_legacy
from .loading import read_yaml
from .rules import semantic_errors
from .schema import fill, schema_errors
from .sweeps import SEED_KEY, plan_key, point_label, set_dotted, sweep_points
from .types import DATASETS, ConfigError, ConfigErrors, Experiment


def run_identity(effective: dict) -> str:
    """Content hash of the effective `data` and `model` sections: what decides whether training is reused."""
    payload = json.dumps({"data": effective["data"], "model": effective["model"]}, sort_keys=True, default=str)
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
        return run_identity(self.effective) if self.effective else None

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
        }


def resolve(effective: dict, source: Path) -> None:
    """Fill the defaults that depend on other keys."""
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
    if data["path"] is not None:
        data["path"] = str(data["path"])


def plan_keys(path: Path) -> list[str]:
    """Cheap planning used at Snakefile parse time: read the YAML, expand the sweep, validate nothing."""
    raw, errors = read_yaml(Path(path))
    if errors:
        return [plan_key(Path(path), {})]
    return [plan_key(Path(path), point) for point in sweep_points(raw)]


def _plan_one(source: Path, raw: dict, point: dict, base_warnings: list[str]) -> Plan:
    file = str(source)
    warnings = list(base_warnings)
    raw = copy.deepcopy(raw)
    raw.pop("sweep", None)
    errors: list[ConfigError] = []
    for key, value in point.items():
        try:
            set_dotted(raw, key, value)
        except (KeyError, AttributeError):
            errors.append(ConfigError(file, f"sweep.grid.{key}", value, "cannot set this key"))
    key = plan_key(source, point)
    raw, legacy_errors = normalise_legacy(raw, file, warnings)
    errors += legacy_errors
    errors += schema_errors(raw, file)
    if errors:
        return Plan(file, key, point, None, errors, warnings)
    effective = fill(raw)
    resolve(effective, source)
    base = effective["experiment"]["name"]
    group_point = {k: v for k, v in point.items() if k != SEED_KEY}
    group = f"{base}-{point_label(group_point)}" if group_point else base
    if point:
        effective["experiment"]["name"] = f"{base}-{point_label(point)}"
    errors = semantic_errors(effective, file, warnings)
    if errors:
        return Plan(file, key, point, None, errors, warnings)
    effective["experiment"]["name"] = naming.sanitize_name(effective["experiment"]["name"])
    return Plan(file, key, point, effective, [], warnings, group=naming.sanitize_name(group))


def load_plans(path: str | Path) -> list[Plan]:
    """Read one config file and return a Plan per run it asks for (one, or one per sweep point)."""
    source = Path(path)
    raw, errors = read_yaml(source)
    if errors:
        return [Plan(str(source), plan_key(source, {}), {}, None, errors, [])]
    warnings: list[str] = []
    sweep = raw.get("sweep")
    if sweep is not None:
        sweep_errors = schema_errors({"sweep": sweep}, str(source))
        if sweep_errors:
            return [Plan(str(source), plan_key(source, {}), {}, None, sweep_errors, [])]
    plans = [_plan_one(source, raw, point, warnings) for point in sweep_points(raw)]
    names = [p.name for p in plans if p.ok]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        for plan in plans:
            if plan.ok and plan.name in dupes:
                plan.errors.append(ConfigError(str(source), "sweep", plan.name,
                                               "two sweep points give the same run name (shorten experiment.name)"))
                plan.effective = None
    return plans


def load_plan(path: str | Path, key: str) -> Plan:
    """The plan with this key from a config file."""
    for plan in load_plans(path):
        if plan.key == key:
            return plan
    raise KeyError(f"{path} has no run with key {key!r}")


def load_experiment(path: str | Path) -> Experiment:
    """A single-run config as a validated Experiment; raises ConfigErrors listing every problem."""
    plans = load_plans(path)
    if len(plans) != 1:
        raise ConfigErrors([ConfigError(str(path), "sweep", None, f"declares {len(plans)} runs; use load_plans")])
    return plans[0].experiment()
