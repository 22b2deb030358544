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

import math

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
