"""TPE proposals (docs/search.md): a search's trials asked of Optuna's TPE sampler, batch by batch, from files.

A TPE search's run folders are planned for every trial before any value is asked (their names and identities
come from the search, not from the values), and the local rule `ask` of the workflow asks each batch on the
submitting machine: trials b·B to (b+1)·B - 1 (B = `search.batch`), told every trial of the batches before it.
No study is kept anywhere: the rule builds one in memory from the earlier batch files (each trial's parameters)
and the trials' rung-0 records (its value of the metric: the whole training for `method: tpe`, the first rung
for halving over TPE proposals; a trial that diverged is told as failed), in trial order, with a sampler seeded
by the search's seed and the batch, and asks the batch's trials: at random while no earlier trial has a value
(the first batch, or one after trials that all failed), else proposed by TPE. The same files give the same
proposals.

Files under `results/.search/<search>/tpe/<digest>/` (the digest: the trained config without the asked values
and the search's settings but `trials`, ssvae.config.search.tpe_digest):
  batch<b>.json   the asked trials of batch b: values, Optuna's params, the data and model sections they give
  asked.json      every batch asked so far: not a declared output, so a batch that Snakemake runs again (its
                  job cut short, a rerun trigger) is written from here, never asked a second time

A batch always asks all B trials, also those beyond `trials`: a search grown later trains them with the values
asked then. Optuna is imported only here and only by the ask job (planning never loads it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from ssvae import disk
from ssvae.config import search as search_mod
from ssvae.results import halving

ASK_DIR = "tpe"
LEDGER = "asked.json"
# Asked values the model rejects (the space's ends are checked at planning, so only their combinations can be)
# are told as failed and asked again, at most this many times in a batch.
MAX_REJECTED = 100
_PRIMITIVE = (str, int, float, bool, type(None))


class NotAsked(RuntimeError):
    """A TPE trial whose batch has not been asked (its batch file is missing or does not hold it)."""


class AskFailed(RuntimeError):
    """A batch that cannot be asked: the config changed since planning, or the model rejects every asked value."""


def search_dir(results: str | Path, name: str, digest: str) -> Path:
    return Path(results) / halving.SEARCH_DIR / name / ASK_DIR / digest


def batch_path(results: str | Path, name: str, digest: str, batch: int) -> Path:
    return search_dir(results, name, digest) / f"batch{batch}.json"


def batch_seed(seed: int, batch: int) -> int:
    """The sampler's seed for one batch: the search's seed and the batch number (a sampler seeded alike in every
    batch would start each one's random trials the same)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, batch]).generate_state(1)[0])


def _categorical(values: list) -> bool:
    """Whether a choice's values go to Optuna as they are (else as their positions in the list)."""
    return all(isinstance(v, _PRIMITIVE) for v in values) and len({json.dumps(v) for v in values}) == len(values)


def distributions(space: dict) -> dict:
    """Optuna's distribution of every key of the space: log_uniform -> FloatDistribution(log=True), uniform ->
    FloatDistribution, integer -> IntDistribution, choice -> CategoricalDistribution (of the values, or of their
    positions when a value is a list or a mapping, which Optuna cannot hold)."""
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, BaseDistribution] = {}
    for key, spec in space.items():
        (kind, values), = spec.items()
        if kind == "choice":
            found[key] = CategoricalDistribution(values if _categorical(values) else list(range(len(values))))
        elif kind == "integer":
            found[key] = IntDistribution(values[0], values[1])
        else:
            found[key] = FloatDistribution(float(values[0]), float(values[1]), log=kind == "log_uniform")
    return found


def _config_value(spec: dict, param):
    """The config value of one Optuna param (rounded like a drawn random value)."""
    (kind, values), = spec.items()
    if kind == "choice":
        return param if _categorical(values) else values[int(param)]
    if kind == "integer":
        return int(param)
    return search_mod.rounded(param, values[0], values[1])


def _param(spec: dict, value):
    """The Optuna param of one config value (a float already rounded stays as it is)."""
    (kind, values), = spec.items()
    return value if kind != "choice" or _categorical(values) else values.index(value)


def told_value(record: dict | None) -> float | None:
    """A trial's value for TPE from its rung-0 record: the metric where it trained, None (told as failed) where it
    diverged or has no finite value."""
    if not record or record.get("status") != halving.TRAINED:
        return None
    value = record.get("value")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def ask(search: dict, batch: int, told: list[tuple[int, dict, float | None]],
        accept: Callable[[int, dict], str | None] = lambda trial, values: None) -> tuple[list[dict], list[dict]]:
    """Ask batch `batch` of a TPE search: (the asked trials, the values rejected on the way).

    `told` holds (trial, params, value or None for a failed trial) of every trial of the earlier batches; they are
    added to a fresh in-memory study in trial order. `accept(trial, values)` says why the model rejects values
    (None: accepted); a rejected ask is told as failed and asked again. Each asked trial is
    {trial, values (config keys in the space's order), params (Optuna's)}.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search["space"]
    dists = distributions(space)
    mode = search_mod.METRICS[search["metric"]][1]
    # Random until one trial is told with a value: Optuna counts only completed trials toward its random start
    # (failed ones teach TPE nothing), so a batch size's worth would leave a batch after diverged trials random.
    # The trials of one batch are asked before any of them is told: the constant liar counts those asked and not
    # yet told as the worst so far, so that a batch spreads out instead of asking the same point again and again.
    sampler = optuna.samplers.TPESampler(seed=batch_seed(search["seed"], batch), n_startup_trials=1,
                                         constant_liar=True)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize", sampler=sampler)
    for _, params, value in sorted(told, key=lambda item: item[0]):
        if value is None:
            study.add_trial(create_trial(params=params, distributions=dists, state=TrialState.FAIL))
        else:
            study.add_trial(create_trial(params=params, distributions=dists, value=value))
    asked, rejected = [], []
    for trial in range(batch * search["batch"], (batch + 1) * search["batch"]):
        while True:
            proposal = study.ask(dists)
            values = {key: _config_value(spec, proposal.params[key]) for key, spec in space.items()}
            reason = accept(trial, values)
            if reason is None:
                asked.append({"trial": trial, "values": values,
                              "params": {key: _param(spec, values[key]) for key, spec in space.items()}})
                break
            study.tell(proposal, state=TrialState.FAIL)
            rejected.append({"trial": trial, "values": values, "reason": reason})
            if len(rejected) >= MAX_REJECTED:
                raise AskFailed(f"the model rejected {len(rejected)} values asked for batch {batch} (the last: "
                                f"{reason}); narrow the search's space")
    return asked, rejected


def _told(batch_files: list[str | Path], records: list[str | Path]) -> list[tuple[int, dict, float | None]]:
    """(trial, params, value) of every told trial, from the earlier batch files and the trials' rung-0 records."""
    params = {}
    for path in batch_files:
        for entry in disk.read_json(path)["trials"]:
            params[entry["trial"]] = entry["params"]
    told = []
    for path in records:
        record = disk.read_json(path)
        trial = record["trial"]
        if trial not in params:
            raise AskFailed(f"{path}: trial {trial} is in no earlier batch file")
        told.append((trial, params[trial], told_value(record)))
    return sorted(told, key=lambda item: item[0])


def ask_job(results: str | Path, source: str | Path, name: str, digest: str, batch: int,
            batch_files: list[str | Path], records: list[str | Path], out: str | Path,
            log: Callable[[str], None] = print) -> dict:
    """The `ask` rule: write batch `batch`'s file, from the ledger when the batch was asked before, else by asking
    (told the trials of `records`, whose parameters are in `batch_files`) and recording it in the ledger first."""
    from ssvae.config import plans
    from ssvae.pipeline import validation
    from ssvae.results import runs

    ledger_path = search_dir(results, name, digest) / LEDGER
    with runs.locked(ledger_path):
        ledger = disk.read_json(ledger_path) if ledger_path.exists() else {}
        document = ledger.get(str(batch))
        if document is not None:
            log(f"batch {batch} was asked before: written from {ledger_path}")
        else:
            search, errors, plan = plans.tpe_planner(source, validation.RULES)
            if search is None or plan is None:
                raise AskFailed(f"{source} cannot be planned any more ({'; '.join(map(str, errors))}); fix it and "
                                "run snakemake again")
            if search["digest"] != digest or search["name"] != name:
                raise AskFailed(f"{source} changed since it was planned (its search is now {search['name']}, "
                                f"digest {search['digest']}, not {name}, {digest}); run snakemake again")
            told = _told(batch_files, records)
            expected = list(range(batch * search["batch"]))
            if [t for t, _, _ in told] != expected:
                missing = sorted(set(expected) - {t for t, _, _ in told})
                raise AskFailed(f"batch {batch} must be told every trial before it, and trial(s) {missing} cannot "
                                "run (see their plans' errors)")
            sections = {}

            def accept(trial: int, values: dict) -> str | None:
                planned = plan(trial, values)
                if not planned.ok:
                    return "; ".join(str(e) for e in planned.errors)
                if planned.arch != search["arch"]:
                    return f"the architecture code would change from {search['arch']} to {planned.arch}"
                sections[trial] = {"data": planned.effective["data"], "model": planned.effective["model"]}
                return None

            asked, rejected = ask(search, batch, told, accept)
            for entry in asked:
                entry.update(sections[entry["trial"]])
            document = {"search": name, "digest": digest, "batch": batch, "size": search["batch"],
                        "seed": batch_seed(search["seed"], batch), "metric": search["metric"],
                        "told": [{"trial": t, "value": v} for t, _, v in told], "trials": asked,
                        "rejected": rejected}
            ledger[str(batch)] = document
            disk.write_json(ledger_path, ledger)
            failed = sum(v is None for _, _, v in told)
            how = "proposed by TPE" if failed < len(told) else "at random (no earlier trial has a value)"
            log(f"batch {batch}: asked trials {asked[0]['trial']}-{asked[-1]['trial']} {how}, told {len(told)} "
                f"trial(s) ({failed} failed)"
                + (f", {len(rejected)} asked value(s) rejected by the model" if rejected else ""))
        for entry in document["trials"]:
            log(f"  trial {entry['trial']}: {entry['values']}")
    disk.write_json(out, document)
    return document


def asked_trial(results: str | Path, search: dict) -> dict:
    """A TPE trial's entry in its batch file: {trial, values, params, data, model}."""
    path = batch_path(results, search["name"], search["digest"], search["batch_index"])
    try:
        document = disk.read_json(path)
    except FileNotFoundError:
        raise NotAsked(f"trial {search['trial']} of search {search['name']} has not been asked yet ({path} is "
                       "missing); run snakemake, whose local rule `ask` asks it") from None
    for entry in document["trials"]:
        if entry["trial"] == search["trial"]:
            return entry
    raise NotAsked(f"{path} does not hold trial {search['trial']}")


def with_asked_values(plan: dict, run: dict | None, results: str | Path) -> tuple[dict, dict | None]:
    """A run's plan (validated.json) and run.json with the values TPE asked for it: the data and model sections
    of its batch file, and its `values`. Other runs are returned as they are."""
    search = (run or {}).get("search") or plan.get("search")
    if not search or not search.get("digest"):
        return plan, run
    entry = asked_trial(results, search)
    effective = {**plan["effective"], "data": entry["data"], "model": entry["model"]}
    plan = {**plan, "effective": effective}
    if plan.get("search"):
        plan["search"] = {**plan["search"], "values": entry["values"]}
    if run is not None:
        run = {**run, "search": {**run["search"], "values": entry["values"]}}
    return plan, run
