"""Sweeps (SPEC section 8): grid x seeds expansion, readable point labels, and the workflow's plan keys."""

from __future__ import annotations

import itertools
from pathlib import Path

from .. import naming

SEED_KEY = "model.random_seed"

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


def sweep_points(raw: dict) -> list[dict]:
    """Every grid combination (in the order written) times every seed; [{}] without a sweep."""
    sweep = raw.get("sweep")
    if not isinstance(sweep, dict):
        return [{}]
    grid = sweep.get("grid") or {}
    seeds = sweep.get("seeds")
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        return [{}]
    axes = list(grid.items())
    if isinstance(seeds, list) and seeds:
        axes.append((SEED_KEY, seeds))
    if not axes:
        return [{}]
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in axes])]


def set_dotted(raw: dict, key: str, value) -> None:
    """raw[a][b][c] = value for key `a.b.c`, creating sections on the way; KeyError through a non-mapping."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise KeyError(key)
    node[parts[-1]] = value


def plan_key(source: Path, point: dict) -> str:
    """The workflow's per-run planning key: the config file's stem plus the sweep point label."""
    stem = naming.sanitize_name(source.stem) if source.stem.strip("_-. ") else "config"
    if not point:
        return stem
    return f"{stem}.{naming.sanitize_name(point_label(point))}"
