"""Searches (docs/search.md): the `search:` section, its checks, and the trials it proposes.

A search is an adaptive sweep: `trials` runs whose values of the keys in `space` are drawn, trial by trial, from
one seeded stream each (`numpy.random.default_rng([seed, trial])`), so trial t has the same values however many
trials the search asks for: adding trials adds runs and leaves the others alone. With `method: halving` the
trials train in rungs (ssvae.results.halving) and only the best 1/eta of each rung train on. With TPE proposals
(`method: tpe`, or halving with `proposals: tpe`) the values are asked later, batch by batch
(ssvae.pipeline.tpe): a trial is planned at the configured values, its identity from the search's digest and its
number, so the space may hold only data and model keys that leave the architecture code alone.

Each trial is a run named `<name>-t<trial>` (three digits at least, so names stay put as a search grows).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from typing import TypeGuard

from .types import SECTIONS, ConfigError

METHODS = ("random", "tpe", "halving")
PROPOSALS = ("random", "tpe")
# metric -> (history.csv column, "max" | "min")
METRICS = {"val_accuracy": ("val_accuracy", "max"), "val_objective": ("val_objective", "min")}
DISTRIBUTIONS = ("log_uniform", "uniform", "integer", "choice")
MAX_TRIALS = 100_000
KEYS = ("method", "proposals", "trials", "seed", "metric", "space", "halving", "batch")
HALVING_KEYS = ("min_epochs", "eta")
DEFAULTS = {"method": "random", "proposals": "random", "seed": 0, "metric": "val_accuracy"}
DEFAULT_HALVING = {"min_epochs": 1, "eta": 3}
# TPE asks its trials in batches of this many (each batch told every trial of the batches before it); the first
# batch is Optuna's random start.
DEFAULT_BATCH = 8
MAX_BATCH = 1000
# With TPE proposals the sections whose keys a space may draw: what is trained (the values are asked after the
# run folders are planned, and evaluation, report and experiment keys are read from the plan).
TPE_SECTIONS = ("data", "model")
# Keys a search cannot draw: who the run is, and (with halving) the horizon every rung is a part of.
FIXED_KEYS = ("experiment.name", "model.max_epochs")


def _is_int(value) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def trial_label(trial: int) -> str:
    """`t007`: the trial's part of its run name and plan key."""
    return f"t{trial:03d}"


def uses_tpe(search: dict) -> bool:
    """Whether a search's trials are asked of TPE (`method: tpe`, or halving with `proposals: tpe`)."""
    return search.get("method") == "tpe" or (search.get("method") == "halving" and search.get("proposals") == "tpe")


def settings(raw: dict) -> dict:
    """The `search:` section with its defaults filled (call on a section without errors)."""
    section = raw["search"]
    filled = {**DEFAULTS, **section}
    filled["halving"] = {**DEFAULT_HALVING, **(section.get("halving") or {})} if filled["method"] == "halving" else None
    if filled["method"] != "halving":
        filled["proposals"] = None
    filled["batch"] = section.get("batch", DEFAULT_BATCH) if uses_tpe(filled) else None
    return filled


def _error(file: str, key: str, value, message: str, allowed: str | None = None) -> ConfigError:
    return ConfigError(file, key, value, message, allowed=allowed)


def _space_errors(space, file: str, method: str) -> list[ConfigError]:
    if not isinstance(space, dict) or not space:
        return [_error(file, "search.space", space, "the search space is a mapping of dotted config keys to "
                       "distributions, with at least one key",
                       "e.g. {model.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}}")]
    errors = []
    for key, spec in space.items():
        where = f"search.space.{key}"
        parts = str(key).split(".")
        if parts[0] not in SECTIONS or len(parts) < 2 or "" in parts:
            errors.append(_error(file, where, key, "a space key is a dotted config key such as model.learning_rate",
                                 f"<section>.<key>, section one of {', '.join(SECTIONS)}"))
            continue
        if key in FIXED_KEYS:
            errors.append(_error(file, where, key, "a search cannot draw this key (it names the run, or is the "
                                 "horizon every rung trains towards); set it in its section"))
            continue
        if not isinstance(spec, dict) or len(spec) != 1:
            errors.append(_error(file, where, spec, "give one distribution",
                                 "{log_uniform: [low, high]}, {uniform: [low, high]}, {integer: [low, high]}, "
                                 "{choice: [v1, v2, ...]}"))
            continue
        (kind, values), = spec.items()
        if kind not in DISTRIBUTIONS:
            close = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
            errors.append(ConfigError(file, f"{where}.{kind}", kind, "unknown distribution",
                                      allowed=", ".join(DISTRIBUTIONS), suggestion=close[0] if close else None))
            continue
        where = f"{where}.{kind}"
        if kind == "choice":
            if not isinstance(values, list) or not values:
                errors.append(_error(file, where, values, "a choice is a non-empty list of values"))
            continue
        if not isinstance(values, list) or len(values) != 2:
            errors.append(_error(file, where, values, f"{kind} takes [low, high]"))
            continue
        low, high = values
        typed = _is_int if kind == "integer" else _is_number
        if not (typed(low) and typed(high)):
            what = "whole numbers (written without a decimal point)" if kind == "integer" else "finite numbers"
            errors.append(_error(file, where, values, f"low and high are {what}"))
        elif not low < high:
            errors.append(_error(file, where, values, "low must be below high"))
        elif kind == "log_uniform" and low <= 0:
            errors.append(_error(file, where, values, "a log-uniform range lies above 0", "0 < low < high"))
    return errors


def _tpe_space_errors(space, file: str) -> list[ConfigError]:
    """With TPE proposals the run folders are planned before the values are asked, so their names (which hold
    the architecture code) cannot depend on them: the space draws data and model keys that leave the architecture
    code alone."""
    from ssvae.naming import ARCH_KEYS

    if not isinstance(space, dict):
        return []
    errors = []
    for key in space:
        section, _, rest = str(key).partition(".")
        if section not in SECTIONS or not rest:
            continue  # reported by _space_errors
        where = f"search.space.{key}"
        if section not in TPE_SECTIONS:
            errors.append(_error(file, where, key, "with TPE proposals a space draws what is trained (data and "
                                 "model keys); draw this key with random proposals",
                                 ", ".join(f"{s}.<key>" for s in TPE_SECTIONS)))
        elif section == "model" and rest in ARCH_KEYS:
            errors.append(_error(file, where, key, "with TPE proposals the run folders are named before the values "
                                 "are asked, and this key changes the architecture code in the name; use proposals: "
                                 "random (method: random or halving), or write one search per architecture",
                                 "model keys other than " + ", ".join(ARCH_KEYS)))
    return errors


def section_errors(raw: dict, file: str) -> list[ConfigError]:
    """What is wrong with a config's `search:` section, each error naming the key, the value and what is allowed."""
    section = raw.get("search")
    if section is None:
        return []
    if not isinstance(section, dict):
        return [_error(file, "search", section, "the search section is a mapping", ", ".join(KEYS))]
    errors = []
    if raw.get("sweep") is not None:
        errors.append(_error(file, "sweep", "sweep and search", "a config declares a sweep (a grid) or a search, "
                             "not both; put the grid's keys into search.space as choices"))
    for key in section:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            errors.append(ConfigError(file, f"search.{key}", section[key], "unknown key", allowed=", ".join(KEYS),
                                      suggestion=close[0] if close else None))
    method = section.get("method", DEFAULTS["method"])
    if method not in METHODS:
        errors.append(_error(file, "search.method", method, "not an allowed value", ", ".join(METHODS)))
    proposals = section.get("proposals")
    if proposals is not None:
        if method != "halving":
            errors.append(_error(file, "search.proposals", proposals,
                                 "proposals choose the trials of a halving search; with method "
                                 f"{method!r} leave it out"))
        elif proposals not in PROPOSALS:
            errors.append(_error(file, "search.proposals", proposals, "not an allowed value", ", ".join(PROPOSALS)))
    trials = section.get("trials")
    if not _is_int(trials) or not 1 <= trials <= MAX_TRIALS:
        errors.append(_error(file, "search.trials", trials, "the number of trials is required",
                             f"an integer from 1 to {MAX_TRIALS:,}"))
    seed = section.get("seed", DEFAULTS["seed"])
    if not _is_int(seed) or not 0 <= seed <= 2**32 - 1:
        errors.append(_error(file, "search.seed", seed, "not a seed", "an integer in [0, 4294967295]"))
    metric = section.get("metric", DEFAULTS["metric"])
    if metric not in METRICS:
        errors.append(_error(file, "search.metric", metric, "not a metric a search can choose by",
                             "val_accuracy (maximised), val_objective (minimised)"))
    tpe = method == "tpe" or (method == "halving" and proposals == "tpe")
    batch = section.get("batch")
    if batch is not None:
        if not tpe:
            errors.append(_error(file, "search.batch", batch, "batches are how TPE asks its trials; with "
                                 f"{'random proposals' if method == 'halving' else f'method {method!r}'} leave it out"))
        elif not _is_int(batch) or not 1 <= batch <= MAX_BATCH:
            errors.append(_error(file, "search.batch", batch, "trials TPE asks at once (each batch is told every "
                                 "trial of the batches before it)", f"an integer from 1 to {MAX_BATCH:,}"))
    errors += _space_errors(section.get("space"), file, method)
    if tpe:
        errors += _tpe_space_errors(section.get("space"), file)
    halving = section.get("halving")
    if halving is not None:
        if method != "halving":
            errors.append(_error(file, "search.halving", halving,
                                 f"halving settings belong to method halving, not {method!r}"))
        elif not isinstance(halving, dict):
            errors.append(_error(file, "search.halving", halving, "a mapping", "{min_epochs: 5, eta: 3}"))
        else:
            for key, value in halving.items():
                if key not in HALVING_KEYS:
                    errors.append(_error(file, f"search.halving.{key}", value, "unknown key",
                                         ", ".join(HALVING_KEYS)))
            min_epochs = halving.get("min_epochs", DEFAULT_HALVING["min_epochs"])
            if not _is_int(min_epochs) or min_epochs < 1:
                errors.append(_error(file, "search.halving.min_epochs", min_epochs,
                                     "epochs every trial trains before the first promotion", "an integer >= 1"))
            eta = halving.get("eta", DEFAULT_HALVING["eta"])
            if not _is_int(eta) or eta < 2:
                errors.append(_error(file, "search.halving.eta", eta,
                                     "each rung keeps the best 1/eta of its trials", "an integer >= 2"))
    return errors


def horizon_errors(search: dict, effective: dict, file: str) -> list[ConfigError]:
    """A halving search needs two rungs at least: min_epochs·eta within the model's max_epochs."""
    if search["method"] != "halving":
        return []
    min_epochs, eta = search["halving"]["min_epochs"], search["halving"]["eta"]
    max_epochs = effective["model"]["max_epochs"]
    if min_epochs * eta > max_epochs:
        return [_error(file, "search.halving.min_epochs", min_epochs,
                       f"halving needs two rungs at least, so min_epochs x eta ({min_epochs} x {eta}) must be at "
                       f"most model.max_epochs ({max_epochs}), the top rung's epochs",
                       f"an integer from 1 to {max_epochs // eta}" if max_epochs >= eta else
                       f"a larger model.max_epochs (at least {eta})")]
    return []


def _draw(rng, spec: dict):
    (kind, values), = spec.items()
    if kind == "choice":
        return values[int(rng.integers(len(values)))]
    low, high = values
    if kind == "integer":
        return int(rng.integers(low, high + 1))
    if kind == "uniform":
        value = rng.uniform(low, high)
    else:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return rounded(value, low, high)


def rounded(value: float, low: float, high: float) -> float:
    """A drawn or asked float to six significant digits, kept within [low, high]: a readable config.yaml, and the
    same value however it is printed and read back."""
    return min(max(float(f"{value:.6g}"), float(low)), float(high))


def trial_values(search: dict, trial: int) -> dict:
    """The values trial `trial` gives the keys of the space, in the order the space lists them.

    Drawn from the trial's own stream, `numpy.random.default_rng([seed, trial])`: the same for every number of
    trials, and independent of the other trials.
    """
    import numpy as np

    rng = np.random.default_rng([search["seed"], trial])
    return {key: _draw(rng, spec) for key, spec in search["space"].items()}


# What TPE's proposals depend on besides the trained config: every setting but the number of trials (adding
# trials adds batches and leaves the asked ones alone).
TPE_SETTINGS = ("method", "proposals", "seed", "metric", "space", "halving", "batch")


def tpe_digest(base_identity: str, search: dict) -> str:
    """The digest of a TPE search: the identity of its config without asked values, and its settings (but not
    `trials`). It names the folder of the search's batch files and is a part of every trial's identity, so a
    changed config or space is a new search (new run folders, asked afresh) and the old one is left as it was."""
    payload = {"identity": base_identity, **{key: search.get(key) for key in TPE_SETTINGS}}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tpe_trial_identity(digest: str, trial: int) -> str:
    """A TPE trial's run identity: its search's digest and its number (its values are asked later)."""
    return hashlib.sha256(f"tpe {digest} {trial}".encode()).hexdigest()[:16]


def batch_of(search: dict, trial: int) -> int:
    """The batch TPE asks trial `trial` in: trials b·batch to (b+1)·batch - 1."""
    return trial // search["batch"]


def describe(search: dict) -> str:
    """One line for logs: `halving over 27 random trials by val_accuracy (min 5 epochs, eta 3)`."""
    if search["method"] == "halving":
        halving = search["halving"]
        return (f"halving over {search['trials']} {search['proposals']} trials by {search['metric']} "
                f"(min {halving['min_epochs']} epochs, eta {halving['eta']})")
    return f"{search['trials']} {search['method']} trials by {search['metric']}"
