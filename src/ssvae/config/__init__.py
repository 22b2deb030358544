"""Experiment configs: schema, defaults, legacy keys, semantic rules, sweeps and readable errors.

`load_plans(path)` is the entry point: it reads a YAML file, expands its sweep, and returns one `Plan` per
run, each either valid (with the effective config, every default resolved) or carrying the list of
`ConfigError`s that say what is wrong. `load_experiment(path)` gives a single-run config as a typed
`Experiment`; `plan_keys(path)` is the cheap read the Snakefile plans with.

- `types`: the frozen dataclasses, `ConfigError` / `ConfigErrors`, the dataset table.
- `schema`: the JSON Schema, its defaults, its violations as errors.
- `legacy`: the earlier system's spellings.
- `rules`: one named function per semantic rule (`RULES`).
- `sweeps`: grid expansion, point labels, plan keys.
- `loading`: reading a file; `plans`: putting it all together.

Imports only `ssvae.naming`: the checks that read a dataset's files or the metric and plot registries are
added by `ssvae.pipeline.validation`.
"""

from ssvae.config.legacy import LEGACY_DATASET_VARIANTS, UNSUPPORTED_UNLESS_OFF, normalise_legacy
from ssvae.config.loading import MAX_ALIAS_NODES, MAX_CONFIG_BYTES, MAX_DEPTH, Loaded, read_config, read_yaml
from ssvae.config.plans import (
    Plan,
    load_experiment,
    load_plan,
    load_plans,
    plan_keys,
    resolve,
    run_identity,
    tpe_planner,
)
from ssvae.config.rules import RULES, Findings, semantic_errors
from ssvae.config.schema import StrictValidator, _schema_text, defaults, fill, schema, schema_errors  # noqa: F401
from ssvae.config.sweeps import (
    KEY_ABBREVIATIONS,
    MAX_SWEEP_POINTS,
    SEED_KEY,
    plan_key,
    point_label,
    sweep_points,
    sweep_size,
)
from ssvae.config.types import (
    CONDITIONABLE_PRIORS,
    DATASETS,
    MIXTURE_PRIORS,
    SECTIONS,
    ConfigError,
    ConfigErrors,
    DataConfig,
    EvaluationConfig,
    Experiment,
    ExperimentInfo,
    ModelConfig,
    ReportConfig,
    shorten,
)

__all__ = [
    "CONDITIONABLE_PRIORS", "DATASETS", "KEY_ABBREVIATIONS", "LEGACY_DATASET_VARIANTS", "MAX_ALIAS_NODES",
    "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_SWEEP_POINTS", "MIXTURE_PRIORS", "RULES", "SECTIONS", "SEED_KEY",
    "StrictValidator", "Loaded", "read_config", "shorten", "sweep_size", "UNSUPPORTED_UNLESS_OFF", "ConfigError",
    "ConfigErrors", "DataConfig",
    "EvaluationConfig", "Experiment", "ExperimentInfo", "Findings", "ModelConfig", "Plan", "ReportConfig",
    "defaults", "fill", "load_experiment", "load_plan", "load_plans", "normalise_legacy", "plan_key",
    "plan_keys", "point_label", "read_yaml", "resolve", "run_identity", "schema", "schema_errors",
    "semantic_errors", "sweep_points", "tpe_planner",
]
