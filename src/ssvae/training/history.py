"""history.csv: one row per epoch with every loss term, train and val, and the schedules' values.

Train values are means over the epoch's steps (classification over the labeled samples seen); val values come
from one deterministic pass over the validation split after the epoch, at that epoch's annealed scales: `loss`
is the sum of the terms' contributions, `val_loss` sums only the unsupervised ones (validation labels are not
training labels). `val_objective` is the same validation objective with the annealed scales at their final
values, the fixed objective that early stopping compares (early_stopping.py).

π and usage (pi_<k>, usage_<k>, mixture-based priors) are recorded every `mixture_history_log_every` epochs
(and at the first and last epoch), empty in between; 0 leaves the columns out.
"""

from __future__ import annotations

import csv
import io

from ssvae.model import losses
from ssvae.config import ModelConfig


def logs_mixture(cfg: ModelConfig) -> bool:
    return cfg.is_mixture and cfg.mixture_history_log_every > 0


def history_columns(cfg: ModelConfig) -> list[str]:
    """history.csv's columns, in order."""
    cols = ["epoch", "train_loss"] + [f"train_{t}" for t in losses.TERMS]
    cols += ["val_loss"] + [f"val_{t}" for t in losses.TERMS] + ["val_objective"]
    cols += ["train_accuracy", "val_accuracy", "kl_c_scale", "gumbel_temperature", "epoch_seconds"]
    if logs_mixture(cfg):
        cols += [f"pi_{k}" for k in range(cfg.num_components)] + [f"usage_{k}" for k in range(cfg.num_components)]
    return cols


def mixture_logged(cfg: ModelConfig, epoch: int, last: bool) -> bool:
    """Whether epoch `epoch` (1-based) records π and usage."""
    every = cfg.mixture_history_log_every
    return logs_mixture(cfg) and (epoch == 1 or last or epoch % every == 0)


def epoch_row(cfg: ModelConfig, epoch: int, train: dict, val: dict, objective: float, kl_c_scale: float,
              temperature: float, seconds: float) -> dict:
    """One history row from the epoch's train and val summaries (host values); π/usage added by `add_mixture`."""
    row = {"epoch": epoch, "train_loss": float(train["loss"])}
    row.update({f"train_{t}": float(v) for t, v in train["terms"].items()})
    row["val_loss"] = float(val["loss"])
    row.update({f"val_{t}": float(v) for t, v in val["terms"].items()})
    row.update(val_objective=float(objective), train_accuracy=float(train["accuracy"]),
               val_accuracy=float(val["accuracy"]), kl_c_scale=float(kl_c_scale),
               gumbel_temperature=float(temperature), epoch_seconds=seconds)
    return row


def add_mixture(cfg: ModelConfig, row: dict, val: dict, logged: bool) -> None:
    if not logs_mixture(cfg):
        return
    for k in range(cfg.num_components):
        row[f"pi_{k}"] = float(val["pi"][k]) if logged else None
        row[f"usage_{k}"] = float(val["usage"][k]) if logged else None


def history_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return out.getvalue()


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
