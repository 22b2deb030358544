"""Successive halving (Jamieson & Talwalkar 2016): the rungs of a search and who is promoted from each.

Rung k of a search with `min_epochs` m, `eta` η and the model's `max_epochs` E trains its trials to

    epochs(k) = m·η^k  for k < s,    epochs(s) = E,    s = max{k : m·η^k ≤ E}

and promotes the best ⌊n_k / η⌋ (at least one) of the n_k trials that reached it. A promoted trial continues
from its own checkpoint; every rung is a part of the same training towards E (no schedule depends on where a
rung stops), so a trial that reaches the top rung ends as if it had trained straight to E.

Promotions are decided once and kept: run again with more trials, and a new trial is promoted when it ranks
among the best ⌊n_k / η⌋ of everyone at the rung; trials promoted before stay promoted (they trained on already)
and trials stopped before stay stopped, so nothing is trained twice and only new trials train.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

STOPPED_EARLY = "stopped_early"


def rung_epochs(min_epochs: int, eta: int, max_epochs: int) -> list[int]:
    """Epochs each rung trains its trials to: [m, m·η, ..., E] (see the module docstring)."""
    if not (1 <= min_epochs and eta >= 2 and max_epochs >= 1):
        raise ValueError(f"rungs need min_epochs >= 1, eta >= 2, max_epochs >= 1 (got {min_epochs}, {eta}, "
                         f"{max_epochs})")
    epochs = []
    current = min_epochs
    while current * eta <= max_epochs:
        epochs.append(current)
        current *= eta
    epochs.append(max_epochs)
    return epochs


def search_rungs(search: dict, max_epochs: int) -> list[int]:
    """A search's rung epochs: the halving rungs, or the one rung of `max_epochs` for a plain random search."""
    if search["method"] != "halving":
        return [max_epochs]
    return rung_epochs(search["halving"]["min_epochs"], search["halving"]["eta"], max_epochs)


def quota(reached: int, eta: int) -> int:
    """How many of the `reached` trials at a rung go on: ⌊reached / η⌋, at least one."""
    return max(1, reached // eta) if reached else 0


def _sort_key(mode: str):
    def key(item):
        trial, value = item
        missing = value is None or not math.isfinite(value)
        return (missing, (-value if mode == "max" else value) if not missing else 0.0, trial)

    return key


def ranking(values: dict[int, float | None], mode: str) -> list[int]:
    """Trials from best to worst by their value (`max` or `min`); no value (a diverged trial) ranks last; ties by
    trial number."""
    return [trial for trial, _ in sorted(values.items(), key=_sort_key(mode))]


def promote(values: dict[int, float | None], eta: int, mode: str, decided: dict[int, bool] | None = None,
            finished: set[int] | frozenset = frozenset()) -> dict[int, bool]:
    """trial -> promoted? for every trial that reached the rung, given each one's metric value there.

    `decided` holds the decisions of an earlier promotion of this rung (kept as they were); an undecided trial is
    promoted when it ranks within the quota of all trials at the rung. A trial with no value (it diverged) or in
    `finished` (early stopping ended its training before the rung's epochs) is never promoted.
    """
    decided = dict(decided or {})
    top = set(ranking(values, mode)[:quota(len(values), eta)])
    decisions = {}
    for trial, value in values.items():
        if trial in decided:
            decisions[trial] = decided[trial]
        else:
            usable = value is not None and math.isfinite(value) and trial not in finished
            decisions[trial] = usable and trial in top
    return decisions


def epochs_spent(reached: dict[int, int]) -> int:
    """Epochs trained in all, given trial -> the epochs it trained to (each trial trains each epoch once)."""
    return sum(reached.values())


# files ---------------------------------------------------------------------------------------------------------
#
# results/<run id>/rungs/<r>.json       a trial at rung r: trained there (its metric), stopped below it, or failed
# results/.search/<search>/rung<r>.json  the promotion of rung r: every trial there, its value, promoted or not
# results/.search/<search>/decisions.json  every decision made so far (not a declared output: kept across reruns)

SEARCH_DIR = ".search"
TRAINED, STOPPED, FAILED = "trained", "stopped", "failed"


def trial_document(search: dict, max_epochs: int) -> dict:
    """What a trial's run.json says of its search: which search, which trial, the rungs and how they promote."""
    from ssvae.config.search import METRICS

    column, mode = METRICS[search["metric"]]
    return {"name": search["name"], "trial": search["trial"], "method": search["method"],
            "proposals": search.get("proposals"), "trials": search["trials"], "metric": search["metric"],
            "column": column, "mode": mode, "rungs": search_rungs(search, max_epochs),
            "eta": (search.get("halving") or {}).get("eta"), "values": search["values"],
            **({"batch": search["batch"], "batch_index": search["batch_index"], "digest": search["digest"]}
               if search.get("digest") else {})}


def rung_path(run_dir: str | Path, rung: int) -> Path:
    return Path(run_dir) / "rungs" / f"{rung}.json"


def promotion_path(results: str | Path, search: str, rung: int) -> Path:
    return Path(results) / SEARCH_DIR / search / f"rung{rung}.json"


def trained_record(trial: dict, rung: int, result: dict, continued_from: int | None) -> dict:
    """rungs/<r>.json of a trial that trained to rung r: its metric at its best epoch so far (the epoch evaluate
    would score), and the epoch its training continued from."""
    best = result["final"]
    value = best.get(trial["column"])
    return {"status": TRAINED, "search": trial["name"], "trial": trial["trial"], "rung": rung,
            "rungs": trial["rungs"], "epochs": trial["rungs"][rung],
            "epochs_completed": result["epochs_completed"], "horizon_reached": result["horizon_reached"],
            "metric": trial["metric"], "value": value, "best_epoch": result["best_epoch"],
            "continued_from_epoch": continued_from, "resumed_from_epoch": result["resumed_from_epoch"]}


def stopped_record(trial: dict, rung: int, previous: dict) -> dict:
    """rungs/<r>.json of a trial that was not promoted into rung r (or stopped or failed below it)."""
    return {"status": STOPPED if previous["status"] != FAILED else FAILED, "search": trial["name"],
            "trial": trial["trial"], "rung": rung, "rungs": trial["rungs"],
            "reached": previous.get("reached", previous["rung"]), "epochs_completed": previous["epochs_completed"],
            "reason": previous.get("reason")}


def failed_record(trial: dict, rung: int, reason: str, epochs_completed: int) -> dict:
    return {"status": FAILED, "search": trial["name"], "trial": trial["trial"], "rung": rung,
            "rungs": trial["rungs"], "reached": rung,
            "epochs_completed": epochs_completed, "reason": reason}


def promoted(results: str | Path, search: str, rung: int, trial: int) -> bool:
    """Whether the promotion of `rung` sent `trial` on to the next rung."""
    document = json.loads(promotion_path(results, search, rung).read_text())
    return trial in document["promoted"]


def promote_rung(results: str | Path, search: str, rung: int, records: dict[str, str | Path], out: str | Path,
                 *, eta: int, mode: str, metric: str, epochs: int) -> dict:
    """The promotion of one rung of a search: read every trial's rung record (run id -> path), decide (keeping
    the decisions made before), write `out` and the search's decisions ledger; the document written."""
    from ssvae import disk
    from ssvae.results import runs

    rows, values, finished = [], {}, set()
    for run_id, path in records.items():
        record = json.loads(Path(path).read_text())
        row = {"run_id": run_id, **{k: record.get(k) for k in ("trial", "status", "value", "epochs_completed",
                                                             "horizon_reached", "reason")}}
        rows.append(row)
        if record["status"] == TRAINED:
            values[record["trial"]] = record["value"]
            if record["horizon_reached"]:
                finished.add(record["trial"])
        elif record["status"] == FAILED and record.get("rung") == rung:
            values[record["trial"]] = None
    ledger_path = Path(results) / SEARCH_DIR / search / "decisions.json"
    with runs.locked(ledger_path):
        ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
        earlier = {int(t): up for t, up in ledger.get(str(rung), {}).items() if int(t) in values}
        decisions = promote(values, eta, mode, decided=earlier, finished=finished)
        ledger[str(rung)] = {**ledger.get(str(rung), {}), **{str(t): up for t, up in decisions.items()}}
        disk.write_json(ledger_path, ledger)
    for row in rows:
        row["promoted"] = decisions.get(row["trial"], False)
    rows.sort(key=lambda row: row["trial"])
    document = {"search": search, "rung": rung, "epochs": epochs, "eta": eta, "metric": metric, "mode": mode,
                "reached": len(values), "quota": quota(len(values), eta),
                "promoted": sorted(t for t, up in decisions.items() if up), "trials": rows}
    disk.write_json(out, document)
    return document
