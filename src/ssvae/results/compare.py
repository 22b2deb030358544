"""Comparison across runs (docs/models.md, "Comparison"): one ranked table of every current run, read against its
own baseline.

Rows come from the run folders' summary.json files (no JAX, no scikit-learn; matplotlib only to draw). The
unit of the ranking is an *entry*: a single run, or the seeds of one sweep point (runs sharing `metadata.group`
and arch code whose data and model sections differ only in model.random_seed), shown as mean ± sample std
and n. Numbers and their uncertainty:

- accuracy on the evaluated split ± binomial standard error √(p(1 − p)/n), n = the number of evaluated images;
- gain = accuracy − the logistic-regression baseline fitted on the same labeled images and scored on the same
  split, in points, ± √(se_a² + se_b²); an entry below its baseline is marked ▼;
- ELBO is compared only within one likelihood (Bernoulli NLL, Gaussian NLL, squared error): one column and one
  plot panel each.

Columns beyond these are the config keys whose values differ between the entries shown (keys the arch code
already names, and keys that do not act on a run's model, are left out). A run is *superseded* when a newer
identity of the same experiment name exists (the config changed): it is listed apart, never ranked. Folders
that cannot be read (a corrupt summary.json) or whose evaluation is gone are listed apart with the reason;
nothing in a bad folder stops the comparison.

Writes results/COMPARISON.md, COMPARISON.html (the same with an interactive part, comparison_page.py),
.report/comparison.html (the static page the Snakemake report embeds), comparison.csv,
comparison_accuracy.png and comparison_elbo.png, each atomically. The output depends only on the run folders,
so it is byte-stable when they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ssvae import disk, document, text
from ssvae.config.types import MIXTURE_PRIORS
from ssvae.document import format_value
from ssvae.results import comparison_page, diagnostics, halving, relevance, runs, runstate, searches
from ssvae.results import summary as summary_mod

# metric -> (row column, higher is better, column title)
RANK_METRICS = {
    "accuracy": ("accuracy", True, "accuracy"),
    "gain": ("gain", True, "gain over the baseline"),
    "elbo": ("elbo", True, "ELBO"),
    "k_eff": ("k_eff", True, "K_eff"),
    "clustering_accuracy": ("clustering_accuracy", True, "clustering accuracy"),
    "nmi": ("nmi", True, "NMI"),
    "ece": ("ece", False, "expected calibration error"),
    "training_time": ("training_time_sec", False, "training time"),
}
AGGREGATED = ("accuracy", "baseline_accuracy", "gain", "elbo", "k_eff", "clustering_accuracy", "nmi", "ece",
              "training_time_sec")
COLUMNS = ("rank", "run_id", "block", "tied_with_best", "name", "arch", "ts", "group", "sweep", "status",
           "superseded_by", "dataset", "prior",
           "num_components", "latent_dim", "num_labeled", "seed", "data_seed", "split", "n", "accuracy", "accuracy_se",
           "baseline_accuracy", "gain", "gain_se", "elbo", "likelihood", "k_eff", "clustering_accuracy", "nmi", "ece",
           "best_epoch", "epochs_completed", "stopped_early", "training_time_sec", "warnings")
LIKELIHOODS = {"bernoulli_nll": "Bernoulli", "gaussian_nll": "Gaussian", "squared_error": "squared error"}
# Keys the arch code spells out: a column for them would repeat the arch column.
ARCH_KEYS = {"model.prior_type", "model.num_components", "model.use_tau_classifier", "model.decoder_conditioning",
             "model.use_component_aware_decoder", "model.use_heteroscedastic_decoder", "model.latent_layout",
             "model.use_gumbel_softmax", "model.vamp_pseudo_init_method", "model.geometric_arrangement"}
COMPARED_SECTIONS = ("data", "model", "evaluation")
MAX_RANKED_SHOWN = 50
MAX_KEY_COLUMNS = 10
RANKABLE = ("success", "partial")


def seedless_identity(config: dict) -> str | None:
    """Hash of the data and model sections without model.random_seed: runs that share it differ only by seed."""
    if not config.get("model") or not config.get("data"):
        return None
    model = {k: v for k, v in config["model"].items() if k != "random_seed"}
    payload = json.dumps({"data": config["data"], "model": model}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def flatten_config(config: dict, sections=COMPARED_SECTIONS) -> dict[str, Any]:
    """`section.key` -> value for the given sections of an effective config."""
    return {f"{section}.{key}": value for section in sections
            for key, value in (config.get(section) or {}).items()}


def sweep_of(meta: dict, name: str) -> str | None:
    """The sweep a run belongs to, named by its config file's stem; None for a run of a config without a sweep.
    (Summaries written before `sweep_point` was recorded: a name that differs from its seed group's.)"""
    source = meta.get("config_source")
    if not source:
        return None
    if "sweep_point" in meta:
        point = meta["sweep_point"]
    else:
        point = meta.get("group") not in (None, name)
    return Path(source).stem if point else None


def summary_row(base: dict, summary: dict) -> dict:
    """One comparison row from a run's parsed folder name (`runs.list_runs` row) and its summary.json."""
    meta = summary.get("metadata") or {}
    config = summary.get("config") or {}
    evaluation = summary.get("evaluation") or {}
    training = summary.get("training") or {}
    model = config.get("model") or {}
    data = config.get("data") or {}
    is_mixture = model.get("prior_type") in MIXTURE_PRIORS
    numbers = summary_mod.headline(training, evaluation)
    group = meta.get("group")
    codes = [d.get("code") for d in summary.get("diagnostics") or [] if isinstance(d, dict)]
    return {
        "run_id": base["run_id"],
        "name": base["name"],
        "arch": base["arch"],
        "ts": base["ts"],
        "group": group,
        "sweep": sweep_of(meta, base["name"]),
        "seedless_identity": seedless_identity(config),
        "status": base.get("status", summary.get("status")),
        "reason": base.get("reason"),
        "log": base.get("log"),
        "dataset": meta.get("dataset") or data.get("dataset"),
        "tags": list(meta.get("tags") or []),
        "prior": model.get("prior_type"),
        "num_components": model.get("num_components") if is_mixture else None,
        "latent_dim": model.get("latent_dim"),
        "num_labeled": data.get("num_labeled"),
        "seed": meta.get("seed", model.get("random_seed")),
        "data_seed": data.get("seed"),
        "split": numbers["split"],
        "n": numbers["num_examples"],
        **{key: value for key, value in numbers.items() if key not in ("split", "num_examples")},
        **search_columns(meta.get("search")),
        "warnings": [c for c in codes if c],
        "other_warnings": max(0, len(summary.get("warnings") or []) - len(codes)),
        "config": config,
    }


def search_columns(search: dict | None, finished: bool = True) -> dict:
    """A search trial's columns: its search, trial, rung reached, epochs its own training ran, metric value, and
    whether it is finished (summary.json written) or still on its way (`pending_search_columns`)."""
    if not search:
        return {"search": None, "trial": None, "rung": None, "epochs_trained": None, "search_value": None,
                "search_info": None, "search_finished": None}
    return {"search": search.get("name"), "trial": search.get("trial"), "rung": search.get("rung"),
            "epochs_trained": search.get("epochs_trained"), "search_value": search.get("value"),
            "search_info": search, "search_finished": finished}


def _bare_row(base: dict, planned: dict | None = None) -> dict:
    """The row of a run without a readable summary.json: its name, state and, for a search trial, what its plan
    and its rung records say (`pending_search_columns`); no metrics."""
    kept = ("run_id", "name", "arch", "ts", "status", "reason", "log", "epoch")
    return ({key: None for key in COLUMNS} | {k: base.get(k) for k in kept} | {"warnings": [], "config": {}}
            | pending_search_columns(Path(base["path"]), planned))


def pending_search_columns(run_dir: Path, run: dict | None) -> dict:
    """The search columns of a trial that has no summary.json yet (training, between rungs, planned): the search
    as the plan's run.json names it, the values its config.yaml records once it started (a TPE trial's are asked
    then), and its last finished rung with the metric there (rungs/<r>.json); {} for a run outside a search."""
    search = (run or {}).get("search") if (run or {}).get("run_id") == run_dir.name else None
    if not isinstance(search, dict) or not isinstance(search.get("name"), str):
        return {}
    recorded = _recorded_search(run_dir)
    info = {**search, "values": recorded.get("values") or search.get("values") or {}}
    records = runstate.rung_records(run_dir)
    trained = [r for r in records if r.get("status") == halving.TRAINED]
    epochs = [r["epochs_completed"] for r in records if isinstance(r.get("epochs_completed"), int)]
    return search_columns({**info, "rung": trained[-1]["rung"] if trained else 0,
                           "epochs_trained": max(epochs) if epochs else None,
                           "value": trained[-1].get("value") if trained else None}, finished=False)


def _recorded_search(run_dir: Path) -> dict:
    """config.yaml's `search` section, {} where there is none or it cannot be read."""
    import yaml

    try:
        document = yaml.safe_load(disk.read_regular(run_dir / "config.yaml"))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return {}
    search = document.get("search") if isinstance(document, dict) else None
    return search if isinstance(search, dict) else {}


def mark_superseded(rows: list[dict], planned: dict[str, str]) -> None:
    """Set `superseded_by` on every run that an other identity of the same experiment name replaced: the run the
    config's latest plan names (results/.plan), or else the newest timestamp of that name."""
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    for name, same in by_name.items():
        ids = {r["run_id"] for r in same}
        current = planned.get(name) if planned.get(name) in ids else max(same, key=lambda r: r["ts"])["run_id"]
        for row in same:
            row["superseded_by"] = None if row["run_id"] == current else current


def run_rows(results_dir: str | Path, warn: Callable[[str], None] | None = None) -> list[dict]:
    """Every run folder under `results_dir`: the comparison columns where a readable summary.json exists, blanks
    (None) and the stage reached (planned, training, trained, evaluated, failed, unreadable, stale) otherwise;
    `superseded_by` set on replaced runs. Sorted by arch code, then run id."""
    rows = []
    planned = runs.planned_runs(results_dir)
    for base in runs.list_runs(results_dir, warn=warn):
        row = summary_row(base, base["summary"]) if "summary" in base else _bare_row(base, planned.get(base["name"]))
        row["path"] = base["path"]
        row["progress"] = base.get("progress")
        rows.append(row)
    mark_superseded(rows, {name: run["run_id"] for name, run in planned.items()})
    return sorted(rows, key=lambda r: (r["arch"], r["run_id"]))


def _mean_std(values: list) -> dict:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "std": std, "n": len(finite)}


def group_rows(rows: list[dict]) -> list[dict]:
    """Mean ± sample std (ddof 1) over the seeds of a sweep point: runs sharing metadata.group and arch code whose
    data and model sections differ only in model.random_seed (so an edited config that kept its name is not
    averaged with the old one); only buckets of at least two runs."""
    buckets: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("group"):
            buckets.setdefault((row["group"], row["arch"], row.get("seedless_identity") or ""), []).append(row)
    groups = []
    for (group, arch, _), members in sorted(buckets.items(), key=lambda item: (item[0][1], item[0][0], item[0][2])):
        if len(members) < 2:
            continue
        entry = {"group": group, "arch": arch, "runs": len(members),
                 "seeds": sorted(m["seed"] for m in members if m.get("seed") is not None),
                 "run_ids": [m["run_id"] for m in members]}
        for column in AGGREGATED:
            entry[column] = _mean_std([m.get(column) for m in members])
        groups.append(entry)
    return groups


def make_entries(rows: list[dict]) -> list[dict]:
    """The units of the ranking: each seed group (see `group_rows`) once, and every other run on its own.

    An entry has `label`, `arch`, `members` (rows), `stats` (column -> {mean, std, n}) and `single` (the row,
    for a lone run).
    """
    grouped = {rid: g for g in group_rows(rows) for rid in g["run_ids"]}
    entries, seen = [], set()
    for row in rows:
        group = grouped.get(row["run_id"])
        if group is None:
            stats = {c: {"mean": row.get(c), "std": None, "n": int(row.get(c) is not None)} for c in AGGREGATED}
            entries.append({"label": row["name"], "arch": row["arch"], "members": [row], "stats": stats,
                            "single": row, "group": row.get("group"), "sweep": row.get("sweep")})
        elif id(group) not in seen:
            seen.add(id(group))
            members = [r for r in rows if r["run_id"] in set(group["run_ids"])]
            entries.append({"label": group["group"], "arch": group["arch"], "members": members,
                            "stats": {c: group[c] for c in AGGREGATED}, "single": None,
                            "group": group["group"], "sweep": members[0].get("sweep")})
    return entries


def _sort_value(entry: dict, column: str):
    return entry["stats"][column]["mean"] if column in entry["stats"] else (entry["single"] or {}).get(column)


def rank_entries(entries: list[dict], metric: str = "accuracy") -> list[dict]:
    """Entries best first by `metric` (RANK_METRICS); entries without a value last, ties by label."""
    if metric not in RANK_METRICS:
        raise ValueError(f"cannot rank by {metric!r}; choose one of {', '.join(RANK_METRICS)}")
    column, higher, _ = RANK_METRICS[metric]

    def key(entry):
        value = _sort_value(entry, column)
        if value is None:
            return (1, 0.0, entry["label"], entry["arch"])
        return (0, -value if higher else value, entry["label"], entry["arch"])

    return sorted(entries, key=key)


def block_of(row: dict) -> tuple[str, str, str]:
    """(dataset, split, test_split): the runs of one block were scored on the same images (the test split of a
    dataset is drawn with a fixed seed, whatever data.seed), so only they are ranked against each other."""
    data = (row.get("config") or {}).get("data") or {}
    return (str(row.get("dataset") or "unknown dataset"), str(row.get("split") or "test"),
            json.dumps(data.get("test_split")))


def block_title(entries: list[dict]) -> str:
    """`digits · test split · 360 images`."""
    first = entries[0]["members"][0]
    sizes = sorted({m["n"] for e in entries for m in e["members"] if m.get("n")})
    images = f" · {'/'.join(map(str, sizes))} images" if sizes else ""
    return f"{first.get('dataset') or 'unknown dataset'} · {first.get('split') or 'test'} split{images}"


def blocks_of(entries: list[dict]) -> list[list[dict]]:
    """Entries in blocks of one dataset and test split, blocks by dataset name then split."""
    blocks: dict[tuple, list[dict]] = {}
    for entry in entries:
        blocks.setdefault(block_of(entry["members"][0]), []).append(entry)
    return [blocks[key] for key in sorted(blocks)]


def entry_se(entry: dict, column: str) -> float | None:
    """The standard error of an entry's accuracy or gain. A lone run: its binomial SE (of the gain: of the
    difference to its baseline). A seed group: √(sd²/k + se_test²), the spread of the mean over its k seeds plus
    the test-set sampling error, which averaging seeds on the same test images does not shrink (se_test: the
    binomial SE at the mean accuracy, and for the gain that of the difference to the mean baseline)."""
    if entry["single"] is not None:
        return entry["single"].get({"accuracy": "accuracy_se", "gain": "gain_se"}.get(column, ""))
    stat = entry["stats"].get(column) or {}
    if stat.get("std") is None or stat.get("n", 0) < 2:
        return None
    n = entry["members"][0].get("n")
    accuracy = entry["stats"]["accuracy"]["mean"]
    if column == "gain":
        test = diagnostics.gain_se(accuracy, entry["stats"]["baseline_accuracy"]["mean"], n)
    else:
        test = diagnostics.binomial_se(accuracy, n)
    return math.sqrt(stat["std"] ** 2 / stat["n"] + (test or 0.0) ** 2)


TIE_SES = 2.0


def mark_ties(ranked: list[dict], metric: str) -> None:
    """Set each entry's `vs_best` {diff, se, tied}: its difference from the block's best entry, the standard
    error of that difference √(se_best² + se²), and whether |diff| ≤ 2·se (tied with the best). Only for the
    metrics with a standard error (accuracy, gain); None otherwise."""
    column = RANK_METRICS[metric][0]
    for entry in ranked:
        entry["vs_best"] = None
    if metric not in ("accuracy", "gain") or not ranked or _sort_value(ranked[0], column) is None:
        return
    best, best_se = _sort_value(ranked[0], column), entry_se(ranked[0], column)
    ranked[0]["vs_best"] = {"diff": 0.0, "se": None, "tied": True, "best": True}
    for entry in ranked[1:]:
        value, se = _sort_value(entry, column), entry_se(entry, column)
        if value is None:
            continue
        se_diff = math.hypot(best_se, se) if best_se is not None and se is not None else None
        entry["vs_best"] = {"diff": value - best, "se": se_diff, "best": False,
                            "tied": se_diff is not None and abs(value - best) <= TIE_SES * se_diff}


def _entry_config(entry: dict) -> dict[str, Any]:
    """The entry's flattened config; a seed group's random_seed is the list of its seeds."""
    flat = flatten_config(entry["members"][0].get("config") or {})
    if entry["single"] is None:
        flat["model.random_seed"] = sorted(m.get("seed") for m in entry["members"] if m.get("seed") is not None)
    return flat


def _acts(entry: dict, key: str) -> bool:
    section, _, name = key.partition(".")
    return relevance.not_applicable(section, name, entry["members"][0].get("config") or {}) is None


def differing_keys(entries: list[dict]) -> list[str]:
    """Config keys whose values differ between the entries, among the entries on whose model they act; keys the
    arch code names are left out. Keys that act on more of the entries come first (fewer 'n/a' cells in the
    first columns), then by name."""
    flats = [(_entry_config(e), e) for e in entries]
    keys = sorted({k for flat, _ in flats for k in flat} - ARCH_KEYS)
    differ = []
    for key in keys:
        acting = [json.dumps(flat.get(key), sort_keys=True, default=str) for flat, e in flats
                  if key in flat and _acts(e, key)]
        if len(set(acting)) > 1:
            differ.append((-len(acting), key))
    return [key for _, key in sorted(differ)]


def key_header(key: str) -> str:
    section, _, name = key.partition(".")
    return name if section == "model" else key


def _key_cell(entry: dict, key: str) -> str:
    if not _acts(entry, key):
        return "n/a"
    value = _entry_config(entry).get(key)
    if entry["single"] is None and key == "model.random_seed":
        return ", ".join(map(str, value))
    return text.markdown_text(format_value(value, max_items=8))


# text ---------------------------------------------------------------------------------------------

PM = "\u00a0±\u00a0"  # no-break spaces: a value and its error never wrap apart


def _pm(stat: dict, scale: float = 1.0, fmt: str | None = None) -> str:
    """mean ± std (n) of a stat; a lone value as itself."""
    if stat["mean"] is None:
        return "—"
    number = (lambda v: f"{scale * v:{fmt}}") if fmt else (lambda v: format_value(scale * v))
    text = number(stat["mean"])
    if stat.get("std") is not None:
        text += f"{PM}{number(stat['std'])}"
    return text


def _fixed(value, fmt: str) -> str:
    return "—" if value is None else f"{value:{fmt}}"


def _pct(value, se=None) -> str:
    return document.plus_minus(value, se, sep=PM)


def _accuracy_cell(entry: dict) -> str:
    """`91.4 ± 1.5 SE` for a run (binomial standard error), `91.1 ± 0.8 sd` for a seed group (sample std over
    its seeds): two different uncertainties, never in one unlabeled column."""
    if entry["single"] is not None:
        row = entry["single"]
        return _pct(row["accuracy"], row.get("accuracy_se")) + ("\u00a0SE" if row.get("accuracy_se") is not None
                                                                else "")
    stat = entry["stats"]["accuracy"]
    if stat["mean"] is None:
        return "—"
    return _pm(stat, 100, ".1f") + ("\u00a0sd" if stat["std"] is not None else "")


def _baseline_cell(entry: dict) -> str:
    if entry["single"] is not None:
        return _pct(entry["single"].get("baseline_accuracy"))
    stat = entry["stats"]["baseline_accuracy"]
    if stat["mean"] is None:
        return "—"
    if not stat["std"]:  # the seeds varied the model only: the same labeled images, the same baseline
        return f"{100 * stat['mean']:.1f} (same for every seed)"
    return _pm(stat, 100, ".1f") + "\u00a0sd"


def _vs_best_cell(entry: dict) -> str:
    vs = entry.get("vs_best")
    if vs is None:
        return ""
    if vs["best"]:
        return "best"
    diff = document.plus_minus(vs["diff"], vs["se"], signed=True, sep=PM)
    return f"≈\u00a0tied ({diff})" if vs["tied"] else diff


def _seeds_text(entry: dict) -> str:
    """Which seeds a group varied: `model seeds 0, 1, 2; data seed 42` (a group never varies data.seed)."""
    seeds = sorted(m.get("seed") for m in entry["members"] if m.get("seed") is not None)
    data_seeds = sorted({str(((m.get("config") or {}).get("data") or {}).get("seed")) for m in entry["members"]})
    return f"model seeds {', '.join(map(str, seeds))}; data seed {', '.join(data_seeds)}"


def _gain_cell(entry: dict) -> str:
    if entry["single"] is not None:
        gain, se = entry["single"]["gain"], entry["single"].get("gain_se")
        text = document.plus_minus(gain, se, signed=True, sep=PM) + ("\u00a0SE" if gain is not None and se is not None
                                                                    else "")
    else:
        stat = entry["stats"]["gain"]
        gain = stat["mean"]
        text = document.plus_minus(gain, stat["std"], signed=True, sep=PM) + (
            "\u00a0sd" if gain is not None and stat["std"] is not None else "")
    return f"▼\u00a0{text}" if gain is not None and gain < 0 else text


def _elbo_cell(entry: dict, likelihood: str) -> str:
    members = [m for m in entry["members"] if m.get("likelihood") == likelihood]
    if not members:
        return ""
    return _pm(_mean_std([m.get("elbo") for m in members]), 1, ".1f")


def _run_cell(entry: dict, links: bool) -> str:
    if entry["single"] is not None:
        run_id = entry["single"]["run_id"]
        label = text.markdown_text(entry["label"])
        return f"[{label}]({run_id}/REPORT.md)" if links else label
    return f"{text.markdown_text(entry['label'])} ({len(entry['members'])} seeds: {_seeds_text(entry)})"


def _warning_cell(entry: dict) -> str:
    counts: dict[str, int] = {}
    for m in entry["members"]:
        for code in m.get("warnings") or []:
            counts[code] = counts.get(code, 0) + 1
    if entry["single"] is not None:
        return ", ".join(text.markdown_text(c) for c in counts)
    return ", ".join(f"{text.markdown_text(c)} ×{n}" for c, n in counts.items())


def _ts_cell(entry: dict) -> str:
    stamps = sorted(m["ts"] for m in entry["members"])
    return stamps[0] if len(stamps) == 1 else f"{stamps[0]} … {stamps[-1]}"


def _ranking_table(ranked: list[dict], keys: list[str], likelihoods: list[str], links: bool,
                   start: int = 1) -> list[str]:
    shown_keys = keys[:MAX_KEY_COLUMNS]
    header = (["#", "run", "arch", "n", "accuracy %", "vs best (points)", "baseline %", "gain (points)"]
              + [f"ELBO ({text.markdown_text(LIKELIHOODS.get(lk, lk))})" for lk in likelihoods]
              + ["K_eff", "best / epochs", "warnings"] + [key_header(k) for k in shown_keys] + ["timestamp"])
    rows = []
    for i, entry in enumerate(ranked, start):
        if entry["single"] is not None:
            row = entry["single"]
            n = format_value(row.get("n"))
            epochs = f"{format_value(row.get('best_epoch'))} / {format_value(row.get('epochs_completed'))}"
        else:
            n = "/".join(sorted({format_value(m.get("n")) for m in entry["members"]}))
            epochs = "see runs"
        rows.append([str(i), _run_cell(entry, links), f"`{entry['arch']}`", n, _accuracy_cell(entry),
                     _vs_best_cell(entry), _baseline_cell(entry), _gain_cell(entry)]
                    + [_elbo_cell(entry, lk) for lk in likelihoods]
                    + [_pm(entry["stats"]["k_eff"], 1, ".2f"), epochs, _warning_cell(entry)]
                    + [_key_cell(entry, k) for k in shown_keys] + [_ts_cell(entry)])
    align = ["r", "l", "l", "r", "r", "r", "r", "r"] + ["r"] * len(likelihoods) + ["r", "r", "l"] + \
        ["l"] * len(shown_keys) + ["l"]
    return document.table(header, rows, align)


def _sweep_lines(entries: list[dict], metric: str) -> list[str]:
    """One line per (sweep, arch): points, runs, the best point and the spread over points."""
    column, higher, title = RANK_METRICS[metric]
    buckets: dict[tuple, list[dict]] = {}
    for e in entries:
        if e.get("sweep"):
            buckets.setdefault((e["sweep"], e["arch"]), []).append(e)
    buckets = {key: members for key, members in buckets.items() if len(members) > 1}
    if not buckets:
        return []
    rows = []
    for (sweep, arch), members in sorted(buckets.items()):
        ranked = rank_entries(members, metric)
        best = ranked[0]
        values = [_sort_value(e, column) for e in members if _sort_value(e, column) is not None]
        scale = 100 if column in ("accuracy", "gain", "baseline_accuracy") else 1
        spread = _mean_std(values)
        rows.append([text.markdown_text(sweep), text.markdown_code(arch), str(len(members)),
                     str(sum(len(e["members"]) for e in members)), text.markdown_text(best["label"]),
                     _pm(best["stats"][column], scale, ".1f" if scale == 100 else None)
                     if column in best["stats"] else "—",
                     _pm(spread, scale, ".1f" if scale == 100 else None)])
    unit = " (%)" if metric in ("accuracy", "gain") else ""
    return (["### By sweep and arch", "",
             f"Each sweep (its config file) per arch code: how many points (seed groups count once), how many runs, "
             f"the best point by {title}{unit}, and the mean ± std of {title} over the points.", ""]
            + document.table(["sweep", "arch", "points", "runs", "best point", f"best {title}{unit}",
                              f"mean ± std over points{unit}"], rows) + [""])


def _run_lines(rows: list[dict], links: bool) -> list[str]:
    """Every ranked run on its own line (per-run values, standard errors and timestamps)."""
    body = []
    for r in sorted(rows, key=lambda r: (r["arch"], r["run_id"])):
        run = f"[{r['run_id']}]({r['run_id']}/REPORT.md)" if links else r["run_id"]
        body.append([run, format_value(r.get("seed")), text.markdown_text(format_value(r.get("dataset"))),
                     format_value(r.get("n")), _pct(r["accuracy"], r["accuracy_se"]),
                     _pct(r["baseline_accuracy"]), (f"{100 * r['gain']:+.1f}" if r["gain"] is not None else "—"),
                     _fixed(r.get("elbo"), ".1f"), LIKELIHOODS.get(r.get("likelihood"), "—"), _fixed(r["k_eff"], ".2f"),
                     f"{format_value(r['best_epoch'])} / {format_value(r['epochs_completed'])}",
                     _fixed(r["training_time_sec"], ".0f"), text.markdown_text(format_value(r["status"]))])
    return document.table(["run", "model seed", "dataset", "n", "accuracy % ± SE", "baseline %", "gain", "ELBO",
                           "likelihood", "K_eff",
                           "best / epochs", "train time (s)", "status"], body)


def render_markdown(rows: list[dict], metric: str = "accuracy", links: bool = True,
                    results_dir: str | Path | None = None) -> str:
    """COMPARISON.md (links=True) or the text of COMPARISON.html (links=False: no relative links or images); with
    `results_dir`, a block for every search (ssvae.results.searches)."""
    current = [r for r in rows if r["status"] in RANKABLE and not r.get("superseded_by")]
    superseded = [r for r in rows if r.get("superseded_by") and r["status"] in RANKABLE]
    apart = [r for r in rows if r["status"] not in RANKABLE]
    entries = make_entries(current)
    blocks = [rank_entries(block, metric) for block in blocks_of(entries)]
    _, _, title = RANK_METRICS[metric]
    lines = ["# Comparison of runs", "",
             f"{len(current)} current run(s) in {len(entries)} entries, ranked by {title} (best first) within "
             f"each of {len(blocks)} block(s) of one dataset and test split: accuracies on different test images "
             f"are not compared. {len(superseded)} superseded, {len(apart)} not ranked (see the end).", "",
             "Two uncertainties, labelled apart: **SE** is the binomial standard error √(p(1−p)/n) of one run's "
             "accuracy on its n test images; **sd** is the sample standard deviation (n − 1) over the seeds of one "
             "sweep point, which form one entry. A seed group varies the model seed only (its data seed, and so its "
             "labeled images and baseline, stay fixed). Gain = accuracy − the logistic-regression baseline fitted "
             "on the run's own labeled images and scored on the same split, in points; ▼ marks an entry below its "
             "baseline. *vs best*: the difference from the block's best entry ± the standard error of that "
             "difference (a seed group's SE: √(sd²/seeds + SE²), the spread of its mean plus the test-set error that "
             f"averaging seeds on the same images does not remove); **≈ tied** when it is within {TIE_SES:g} "
             "standard errors. ELBO is compared only within one likelihood (one column each). Key columns: "
             "the config keys "
             "that differ between the entries of the block ('n/a': the key does not act on that model).", ""]
    if links:
        lines += ["![accuracy](comparison_accuracy.png)", "", "![ELBO](comparison_elbo.png)", ""]
    if any(r.get("likelihood") == "squared_error" for r in current):
        lines += ["Note: the squared-error 'ELBO' (reconstruction_loss mse without the heteroscedastic decoder) is "
                  "−(squared error + KL), not a bound in nats.", ""]
    for ranked in blocks:
        mark_ties(ranked, metric)
        keys = differing_keys(ranked) if len(ranked) > 1 else []
        likelihoods = sorted({m["likelihood"] for e in ranked for m in e["members"] if m.get("likelihood")})
        tied = sum(bool(e.get("vs_best") and e["vs_best"]["tied"]) for e in ranked[1:])
        lines += [f"## {text.markdown_text(block_title(ranked))}: ranking by {title}", "",
                  f"{len(ranked)} entries" + (f"; {tied} tied with the best" if tied else "") + ".", ""]
        lines += _ranking_table(ranked[:MAX_RANKED_SHOWN], keys, likelihoods, links)
        lines.append("")
        if len(ranked) > MAX_RANKED_SHOWN:
            rest = _ranking_table(ranked[MAX_RANKED_SHOWN:], keys, likelihoods, links, start=MAX_RANKED_SHOWN + 1)
            lines += document.fold(f"{len(ranked) - MAX_RANKED_SHOWN} more entries (ranks {MAX_RANKED_SHOWN + 1}–"
                                   f"{len(ranked)})", rest)
        if len(keys) > MAX_KEY_COLUMNS:
            lines += ["Also differ (every key is a column of comparison.csv): "
                      + ", ".join(text.markdown_code(k) for k in keys[MAX_KEY_COLUMNS:]), ""]
        lines += _sweep_lines(ranked, metric)
    if any(e["single"] is None for e in entries):
        lines += document.fold(f"every ranked run on its own ({len(current)})", _run_lines(current, links))
    if not blocks:
        lines += ["No run has a readable summary.json yet.", ""]
    if results_dir is not None:
        lines += searches.search_lines(current, results_dir, links)
    if superseded:
        lines += ["## Superseded runs", "",
                  "An older identity of the same experiment (its config changed since): kept on disk, not ranked.", ""]
        lines += document.table(
            ["run", "superseded by", "accuracy % ± SE", "gain (points)", "status"],
            [[r["run_id"], r["superseded_by"], _pct(r["accuracy"], r["accuracy_se"]),
              f"{100 * r['gain']:+.1f}" if r["gain"] is not None else "—", text.markdown_text(r["status"])]
             for r in superseded])
        lines.append("")
    if apart:
        lines += ["## Runs not ranked", "", "Folders without a usable summary.json: the stage they reached, or why "
                  "they cannot be read.", ""]
        lines += document.table(["run", "stage / status", "reason"],
                                [[r["run_id"], text.markdown_text(r["status"]),
                                  text.markdown_text(r.get("reason") or "")] for r in apart])
        lines.append("")
    return "\n".join(lines)


def _csv(rows: list[dict], ranks: dict[str, int], tied: dict[str, bool], keys: list[str]) -> str:
    """Every run folder; `rank` is the rank of the run's entry within its block (`block`: dataset/split/
    test_split), `tied_with_best` whether that entry is within two standard errors of the block's best."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *keys], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        out = {k: row.get(k) for k in COLUMNS}
        out["rank"] = ranks.get(row["run_id"])
        out["tied_with_best"] = tied.get(row["run_id"])
        out["block"] = "/".join(block_of(row)) if row["run_id"] in ranks else None
        out["warnings"] = " ".join(row.get("warnings") or [])
        flat = flatten_config(row.get("config") or {})
        for key in keys:
            value = flat.get(key)
            out[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        writer.writerow({k: "" if v is None else text.csv_cell(v) for k, v in out.items()})
    return buffer.getvalue()


# plots --------------------------------------------------------------------------------------------

def _legend_right(ax) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8, borderaxespad=0)


MAX_PLOTTED = 30


def _plot_label(entry: dict) -> str:
    label = entry["label"] if len(entry["label"]) <= 40 else entry["label"][:39] + "…"
    seeds = f" ({len(entry['members'])} seeds)" if entry["single"] is None else ""
    return text.plot_text(f"{label}{seeds} · {entry['arch']}")


def _accuracy_plot(blocks: list[list[dict]]):
    """One panel per dataset and test split: its entries ranked (best on top, at most MAX_PLOTTED), each labelled,
    with its error bar (a run: binomial SE; a seed group: sd over seeds), its baseline, and the entries tied with
    the best in another colour."""
    import matplotlib
    from matplotlib.figure import Figure

    from ssvae.results.plots import STYLE, placeholder

    shown = [[e for e in block if e["stats"]["accuracy"]["mean"] is not None][:MAX_PLOTTED] for block in blocks]
    shown = [(block, mine) for block, mine in zip(blocks, shown) if mine]
    if not shown:
        return placeholder("no run has a successful accuracy yet")
    heights = [0.3 * len(mine) + 1.2 for _, mine in shown]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(9.5, sum(heights) + 0.6), layout="constrained")
        axes = fig.subplots(len(shown), 1, squeeze=False, height_ratios=heights).ravel()
        from matplotlib.lines import Line2D

        legend = [Line2D([], [], marker="o", color="0.3", linestyle="-", label="run ± binomial SE"),
                  Line2D([], [], marker="D", color="0.3", linestyle="-", label="seed group: mean ± sd over seeds"),
                  Line2D([], [], marker="s", color="tab:orange", linestyle="", label="best, or tied with it (2 SE)"),
                  Line2D([], [], marker="s", color="tab:blue", linestyle="", label="behind the best"),
                  Line2D([], [], marker="x", color="0.5", linestyle="", label="logistic-regression baseline")]
        for ax, (block, mine) in zip(axes, shown):
            y = np.arange(len(mine))[::-1]
            for yi, entry in zip(y, mine):
                stat = entry["stats"]["accuracy"]
                single = entry["single"] is not None
                error = (entry["single"].get("accuracy_se") if single else stat["std"]) or 0.0
                tied = bool(entry.get("vs_best") and entry["vs_best"]["tied"])
                ax.errorbar([100 * stat["mean"]], [yi], xerr=[100 * error], fmt="o" if single else "D",
                            color="tab:orange" if tied else "tab:blue", markersize=5, capsize=3, elinewidth=1,
                            zorder=3)
                base = entry["stats"]["baseline_accuracy"]["mean"]
                if base is not None:
                    ax.scatter([100 * base], [yi], color="0.5", marker="x", s=22, zorder=2)
            ax.set_yticks(y)
            ax.set_yticklabels([_plot_label(e) for e in mine], fontsize=8)
            ax.set_ylim(-0.7, len(mine) - 0.3)
            ax.grid(axis="x", alpha=0.3)
            ax.set_xlabel("accuracy (%)")
            left = f" (top {len(mine)} of {len(block)})" if len(mine) < len(block) else ""
            ax.set_title(f"{text.plot_text(block_title(block))}: ranked by accuracy{left}", loc="left", fontsize=10)
        axes[0].legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
                       borderaxespad=0)
        fig.suptitle("Accuracy per entry, ranked within each dataset and test split", fontsize=11)
    return fig


def _elbo_plot(rows: list[dict]):
    import matplotlib
    from matplotlib.figure import Figure

    from ssvae.results.plots import STYLE, placeholder

    points = [r for r in rows if r.get("elbo") is not None]
    if not points:
        return placeholder("no run has a successful ELBO yet")
    kinds = sorted({r.get("likelihood") or "unknown" for r in points})
    with matplotlib.rc_context(STYLE):
        width = sum(max(3.2, 0.8 * len({r["arch"] for r in points if (r.get("likelihood") or "unknown") == k}) + 1.6)
                    for k in kinds) + 2.5
        fig = Figure(figsize=(width, 4.6), layout="constrained")
        axes = fig.subplots(1, len(kinds), squeeze=False).ravel()
        rng = np.random.default_rng(0)
        for ax, kind in zip(axes, kinds):
            mine = [r for r in points if (r.get("likelihood") or "unknown") == kind]
            archs = sorted({r["arch"] for r in mine})
            for i, arch in enumerate(archs):
                values = [r["elbo"] for r in mine if r["arch"] == arch]
                ax.scatter(i + rng.uniform(-0.15, 0.15, size=len(values)), values, color="tab:blue", s=22, zorder=3,
                           label="run" if i == 0 else None)
            ax.set_xticks(range(len(archs)))
            ax.set_xticklabels(archs, rotation=25, ha="right")
            ax.set_xlim(-0.6, len(archs) - 0.4)
            unit = "−(squared error + KL), not nats" if kind == "squared_error" else "nats / image"
            ax.set_title(f"{text.plot_text(LIKELIHOODS.get(kind, kind))} likelihood")
            ax.set_ylabel(f"ELBO ({unit}, higher is better)")
        _legend_right(axes[-1])
        fig.suptitle("ELBO per run, one panel per likelihood (not comparable across panels)")
    return fig


def _save_png(fig, path: Path, dpi: int = 120) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    disk.write_bytes(path, buffer.getvalue())


def write_report_pages(rows: list[dict], pages: str | Path) -> list[str]:
    """Copy the REPORT.html of every run the comparison lists (ranked or superseded) into `pages` as
    `<run id>.html`, for the Snakemake report: it then holds a page for every run of the workspace, whatever
    config list the invocation named. Returns the run ids without a REPORT.html (no page)."""
    pages = Path(pages)
    pages.mkdir(parents=True, exist_ok=True)
    missing = []
    for row in rows:
        if row["status"] not in RANKABLE:
            continue
        source = Path(row["path"]) / "REPORT.html"
        try:
            disk.write_bytes(pages / f"{row['run_id']}.html", source.read_bytes(), durable=False)
        except FileNotFoundError:
            missing.append(row["run_id"])
    return missing


def compare_runs(results_dir: str | Path, metric: str = "accuracy",
                 warn: Callable[[str], None] | None = None, pages: str | Path | None = None) -> dict:
    """Write COMPARISON.md, COMPARISON.html, comparison.csv and the two plots into `results_dir`.

    `pages`: also write every listed run's report page there (`write_report_pages`).

    Returns {"rows": every run folder's row, "ranked": the ranked entries (block after block), "blocks": the
    ranked entries of each dataset and test split, "groups": seed groups, "keys": differing config keys,
    "files": paths written}. Unreadable folders are passed to `warn` and listed apart.
    """
    if metric not in RANK_METRICS:
        raise ValueError(f"cannot rank by {metric!r}; choose one of {', '.join(RANK_METRICS)}")
    results_dir = Path(results_dir)
    rows = run_rows(results_dir, warn=warn)
    current = [r for r in rows if r["status"] in RANKABLE and not r.get("superseded_by")]
    entries = make_entries(current)
    blocks = [rank_entries(block, metric) for block in blocks_of(entries)]
    for block in blocks:
        mark_ties(block, metric)
    ranked = [entry for block in blocks for entry in block]
    keys = differing_keys(entries) if len(entries) > 1 else []
    ranks = {m["run_id"]: i for block in blocks for i, e in enumerate(block, 1) for m in e["members"]}
    tied = {m["run_id"]: bool(e.get("vs_best") and e["vs_best"]["tied"]) for e in ranked for m in e["members"]}
    groups = group_rows(current)
    files = {
        "markdown": results_dir / "COMPARISON.md",
        "html": results_dir / "COMPARISON.html",
        "report_table": results_dir / ".report" / "comparison.html",
        "csv": results_dir / "comparison.csv",
        "accuracy_plot": results_dir / "comparison_accuracy.png",
        "elbo_plot": results_dir / "comparison_elbo.png",
    }
    disk.write_text(files["markdown"], render_markdown(rows, metric, results_dir=results_dir))
    static = render_markdown(rows, metric, links=False, results_dir=results_dir)
    # the Snakemake report shows a page only up to a size (it offers larger ones as a download): plotly stays out
    disk.write_text(files["report_table"], document.to_html(static, "Comparison of runs"))
    disk.write_text(files["html"], comparison_page.render(static, blocks,
                                                          [block_title(b) for b in blocks], keys, flatten_config))
    disk.write_text(files["csv"], _csv(rows, ranks, tied, keys))
    _save_png(_accuracy_plot(blocks), files["accuracy_plot"])
    _save_png(_elbo_plot(current), files["elbo_plot"])
    for path in searches.write_figures(current, results_dir, _save_png):
        files[f"search_{path.parent.name}"] = path
    if pages is not None:
        files["pages"] = Path(pages)
        for run_id in write_report_pages(rows, pages):
            if warn is not None:
                warn(f"{run_id} has no REPORT.html: no page for it in the Snakemake report")
    return {"rows": rows, "ranked": ranked, "blocks": blocks, "groups": groups, "keys": keys,
            "files": {k: str(v) for k, v in files.items()}}
