"""Sweeps (docs/configuration.md, "sweep"): grid x seeds expansion, readable point labels, and the workflow's
plan keys."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

from ssvae import naming
from ssvae.config.types import SECTIONS, ConfigError

SEED_KEY = "model.random_seed"
MAX_SWEEP_POINTS = 10_000

KEY_ABBREVIATIONS = {
    "learning_rate": "lr", "num_components": "k", "latent_dim": "z", "random_seed": "s", "seed": "s",
    "batch_size": "bs", "kl_weight": "kl", "kl_c_weight": "klc", "label_weight": "lw", "num_labeled": "nl",
    "num_samples": "n", "dirichlet_alpha": "alpha", "hidden_dims": "h", "max_epochs": "ep", "patience": "pat",
    "recon_weight": "rw", "weight_decay": "wd", "dropout_rate": "drop", "component_diversity_weight": "div",
    "use_tau_classifier": "tau", "use_gumbel_softmax": "gumbel", "use_heteroscedastic_decoder": "het",
    "learnable_pi": "learnpi", "geometric_radius": "r",
}


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}".replace(".", "p").replace("+", "")
    if isinstance(value, (list, tuple)):
        return "x".join(_format_value(v) for v in value)
    return str(value)


def point_label(point: dict) -> str:
    """A short, readable, stable label for a sweep point, e.g. `lr0p001-mixture-s1`.

    Word values (prior types, arrangements, ...) stand for themselves; numbers and switches get a short key.
    """
    parts = []
    for key, value in point.items():
        if isinstance(value, str):
            parts.append(value)
            continue
        leaf = key.split(".")[-1]
        parts.append(f"{KEY_ABBREVIATIONS.get(leaf, leaf)}{_format_value(value)}")
    return "-".join(parts)


def _axes(raw: dict) -> list[tuple[str, list]]:
    """The sweep's axes in the order written: each grid key with its values, then the seeds."""
    sweep = raw.get("sweep")
    if not isinstance(sweep, dict):
        return []
    grid = sweep.get("grid") or {}
    seeds = sweep.get("seeds")
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        return []
    axes = list(grid.items())
    if isinstance(seeds, list) and seeds:
        axes.append((SEED_KEY, seeds))
    return axes


def sweep_size(raw: dict) -> int:
    """How many runs the sweep asks for (1 without one), computed without expanding it."""
    return math.prod(len(values) for _, values in _axes(raw))


def sweep_points(raw: dict) -> list[dict]:
    """Every grid combination (in the order written) times every seed; [{}] without a sweep."""
    axes = _axes(raw)
    if not axes:
        return [{}]
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in axes])]


def sweep_errors(raw: dict, file: str) -> list[ConfigError]:
    """What the schema cannot say about a sweep: grid keys that name config keys, one seed axis, a bound."""
    errors = []
    sweep = raw.get("sweep") or {}
    grid = sweep.get("grid") or {}
    for key in grid:
        section = key.split(".")[0]
        if section not in SECTIONS or "." not in key or "" in key.split("."):
            errors.append(ConfigError(file, f"sweep.grid.{key}", grid[key],
                                      "a grid key is a dotted config key such as model.learning_rate "
                                      "(a sweep cannot set sweep keys)",
                                      allowed=f"<section>.<key>, section one of {', '.join(SECTIONS)}"))
    if SEED_KEY in grid and sweep.get("seeds"):
        errors.append(ConfigError(file, f"sweep.grid.{SEED_KEY}", grid[SEED_KEY],
                                  "sweep.seeds already sets model.random_seed; use one of the two"))
    size = sweep_size(raw)
    if size > MAX_SWEEP_POINTS:
        shape = " x ".join(str(len(v)) for _, v in _axes(raw))
        errors.append(ConfigError(file, "sweep", size, f"declares {size:,} runs ({shape}); one config may declare "
                                  f"at most {MAX_SWEEP_POINTS:,} (split the sweep into several files)"))
    return errors


def set_dotted(raw: dict, key: str, value) -> None:
    """raw[a][b][c] = value for key `a.b.c`, creating sections on the way; KeyError through a non-mapping."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise KeyError(key)
    node[parts[-1]] = value


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8]


def stem_key(source: Path) -> str:
    """The config file's stem, sanitised; `unnamed-<hash>` for a stem with nothing usable (`!!!.yaml`)."""
    try:
        return naming.sanitize_name(source.stem)
    except naming.NamingError:
        return f"unnamed-{_digest(source.stem)}"


def label_key(point: dict) -> str:
    """A sweep point's label, sanitised; `point-<hash>` for a label with nothing usable."""
    try:
        return naming.sanitize_name(point_label(point))
    except naming.NamingError:
        return f"point-{_digest(point)}"


def plan_key(source: Path, point: dict, label: str | None = None) -> str:
    """The workflow's per-run planning key: the config file's stem plus the sweep point's label (or `label`, a
    search trial's).

    Never raises: whatever the file's name or the point holds, the key is usable (the plan carries the error).
    """
    stem = stem_key(source)
    if label is not None:
        return f"{stem}.{label}"
    if not point:
        return stem
    return f"{stem}.{label_key(point)}"
