"""Reading a search (docs/search.md): its trials by rung, the winner, the epochs it spent, the halving figure.

Works on the comparison's rows (ssvae.compare.run_rows: a trial's `search`, `trial`, `rung`, `epochs_trained`,
`search_value` and `search_info` come from its summary.json) and the promotion records under
`results/.search/<search>/`. The winner is the best trial by the search's metric among those that reached the
top rung (every trial of a plain random search): what the search chose, on validation data only; its test
accuracy is shown beside it, never used to choose.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ssvae import disk, document, text
from ssvae.results import diagnostics, halving


def by_search(rows: list[dict]) -> dict[str, list[dict]]:
    """search name -> its trials' rows, by trial number."""
    searches: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("search"):
            searches.setdefault(row["search"], []).append(row)
    return {name: sorted(trials, key=lambda r: r["trial"]) for name, trials in sorted(searches.items())}


def _better(mode: str, a: float, b: float) -> bool:
    return a > b if mode == "max" else a < b


def summarise(trials: list[dict]) -> dict:
    """The winner, the top rung, the epochs spent and what training every trial to max_epochs would have cost."""
    info = trials[0]["search_info"]
    rungs, mode = info["rungs"], info["mode"]
    top = max((r["rung"] or 0) for r in trials)
    winner = None
    for row in trials:
        value = row.get("search_value")
        if (row["rung"] or 0) != top or value is None or not math.isfinite(value):
            continue
        if winner is None or _better(mode, value, winner["search_value"]):
            winner = row
    spent = sum(r.get("epochs_trained") or 0 for r in trials)
    return {"name": trials[0]["search"], "method": info["method"], "proposals": info.get("proposals"),
            "metric": info["metric"], "mode": mode, "rungs": rungs, "eta": info.get("eta"),
            "batch_size": info.get("batch_size"), "top_rung": top, "winner": winner, "epochs_spent": spent,
            "epochs_full": len(trials) * rungs[-1],
            "trials": len(trials)}


def _promotions(results_dir: Path, search: str) -> dict[tuple[int, int], bool]:
    """(rung, trial) -> promoted, from the search's promotion records."""
    decided = {}
    for path in sorted((results_dir / halving.SEARCH_DIR / search).glob("rung*.json")):
        try:
            record = disk.read_json(path)  # a regular file within the size bound, never a FIFO or a device
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("trials"), list):
            continue  # a damaged record: the rung is decided again
        for row in record["trials"]:
            if isinstance(row, dict) and row.get("status") == halving.TRAINED:
                decided[record.get("rung"), row.get("trial")] = bool(row.get("promoted"))
    return decided


def _outcome(row: dict, summary: dict, promotions: dict) -> str:
    if row is summary["winner"]:
        return "**winner**"
    rung = row["rung"] or 0
    if summary["method"] != "halving":
        return "trained to max_epochs"
    if rung == len(summary["rungs"]) - 1:
        return "top rung"
    if promotions.get((rung, row["trial"])) is False:
        return f"stopped after rung {rung}"
    return f"at rung {rung}"


def _value(value) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _values(values: dict) -> str:
    return ", ".join(f"{key.split('.')[-1]} {value:.4g}" if isinstance(value, float)
                     else f"{key.split('.')[-1]} {value}" for key, value in values.items())


def search_lines(rows: list[dict], results_dir: str | Path, links: bool = True) -> list[str]:
    """COMPARISON.md's block of every search: trials by rung with their metric, promoted or stopped, the winner
    and its test accuracy ± SE, the epochs spent against training every trial to max_epochs, the figure."""
    results_dir = Path(results_dir)
    lines = []
    for name, trials in by_search(rows).items():
        summary = summarise(trials)
        promotions = _promotions(results_dir, name)
        direction = "higher" if summary["mode"] == "max" else "lower"
        asked = f", asked in batches of {summary['batch_size']}" if summary["batch_size"] else ""
        how = (f"successive halving over {summary['proposals']} proposals (eta {summary['eta']}, rungs of "
               f"{', '.join(map(str, summary['rungs']))} epochs{asked})" if summary["method"] == "halving"
               else f"{summary['method']} search{asked}")
        labels = " (validation labels)" if summary["metric"] == "val_accuracy" else ""
        lines += [f"## Search {text.markdown_text(name)}", "",
                  (f"{summary['trials']} trial(s), {how}; chosen by {summary['metric']}{labels} on the validation "
                   f"split, {direction} is better. The test accuracy is shown, never used to choose."), ""]
        winner = summary["winner"]
        if winner is not None:
            se = diagnostics.binomial_se(winner.get("accuracy"), winner.get("n"))
            accuracy = ("—" if winner.get("accuracy") is None else
                        f"{100 * winner['accuracy']:.1f} ± {100 * (se or 0):.1f} %")
            lines += [(f"Winner: trial {winner['trial']} ({text.markdown_text(winner['run_id'])}), "
                       f"{summary['metric']} {_value(winner['search_value'])}, test accuracy {accuracy}; "
                       f"{text.markdown_text(_values(winner['search_info']['values']))}."), ""]
        share = summary["epochs_spent"] / summary["epochs_full"] if summary["epochs_full"] else None
        lines += [f"Epochs trained: {summary['epochs_spent']:,} against {summary['epochs_full']:,} for every trial "
                  f"trained to {summary['rungs'][-1]} epochs" + (f" ({100 * share:.0f} %)." if share else "."), ""]
        if links:
            lines += [f"![metric against epochs]({halving.SEARCH_DIR}/{name}/halving.png)", ""]
        ordered = sorted(trials, key=lambda r: (-(r["rung"] or 0), _rank_value(r, summary["mode"]), r["trial"]))
        body = [[str(r["trial"]), text.markdown_text(r["run_id"]),
                 text.markdown_text(_values(r["search_info"]["values"])),
                 f"{r['rung'] or 0} ({r.get('epochs_trained') or 0})", _value(r.get("search_value")),
                 _outcome(r, summary, promotions),
                 document.plus_minus(r.get("accuracy"), r.get("accuracy_se") or 0)]
                for r in ordered]
        lines += document.table(["trial", "run", "values", "rung (epochs trained)", summary["metric"], "outcome",
                                 "test accuracy % ± SE"], body)
        lines.append("")
    return lines


def _rank_value(row: dict, mode: str) -> float:
    value = row.get("search_value")
    if value is None or not math.isfinite(value):
        return math.inf
    return -value if mode == "max" else value


def read_metric(run_dir: Path, column: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one history.csv column."""
    epochs, values = [], []
    try:
        with open(run_dir / "history.csv") as handle:
            for row in csv.DictReader(handle):
                try:
                    epochs.append(int(row["epoch"]))
                    values.append(float(row[column]))
                except (KeyError, ValueError):
                    continue
    except OSError:
        pass
    return epochs, values


def halving_figure(trials: list[dict], results_dir: Path):
    """The metric against epochs for every trial: stopped trials end at their rung, the winner is drawn bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(trials)
    column = trials[0]["search_info"].get("column") or summary["metric"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for row in trials:
        epochs, values = read_metric(results_dir / row["run_id"], column)
        if not epochs:
            continue
        is_winner = row is summary["winner"]
        # a marker where each trial's training ended: at its rung, or at max_epochs
        ax.plot(epochs, values, lw=2.2 if is_winner else 0.9, alpha=1.0 if is_winner else 0.55,
                color="C3" if is_winner else "C0", marker="o", markevery=[len(epochs) - 1], markersize=3,
                label=f"winner: trial {row['trial']}" if is_winner else None)
    for epochs in summary["rungs"][:-1]:
        ax.axvline(epochs, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel(summary["metric"])
    ax.set_title(f"search {summary['name']}: {summary['metric']} of every trial (dashed: rungs)")
    if summary["winner"] is not None:
        ax.legend(loc="best")
    fig.tight_layout()
    return fig


def write_figures(rows: list[dict], results_dir: str | Path, save) -> list[Path]:
    """results/.search/<search>/halving.png for every search; `save(fig, path)` writes one."""
    results_dir = Path(results_dir)
    written = []
    for name, trials in by_search(rows).items():
        path = results_dir / halving.SEARCH_DIR / name / "halving.png"
        save(halving_figure(trials, results_dir), path)
        written.append(path)
    return written
