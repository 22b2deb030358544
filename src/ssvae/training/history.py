"""history.csv: one row per epoch with every loss term, train and val, and the schedules' values; while training,
the same rows live (`LiveRecord`: progress.json and TensorBoard events).

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
import datetime as dt
import io
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ssvae.config import ModelConfig
from ssvae.model import losses


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


# What a running training shows outside its process ------------------------------------------------------------

PROGRESS_FILE = "progress.json"
TENSORBOARD_DIR = "tensorboard"
# history columns -> TensorBoard tags: `train/` and `val/` curves of one term share a chart name, so TensorBoard
# draws them in the same section; schedules apart.
_SCHEDULE_COLUMNS = ("kl_c_scale", "gumbel_temperature", "epoch_seconds")


def tensorboard_tag(column: str) -> str | None:
    """The TensorBoard tag of a history column (`val_kl_z` -> `val/kl_z`); None for the epoch and π/usage."""
    if column == "epoch" or column.startswith(("pi_", "usage_")):
        return None
    if column in _SCHEDULE_COLUMNS:
        return f"schedule/{column}"
    split, _, name = column.partition("_")
    return f"{split}/{name}" if split in ("train", "val") else f"other/{column}"


MIN_WRITE_INTERVAL_S = 1.0


class LiveRecord:
    """After every epoch (at most once a second): `progress.json` in the run folder (replaced atomically, so a
    reader on any node of a shared file system sees a whole file) and the epoch's history row as TensorBoard scalars
    under `tensorboard/` (so `tensorboard --logdir results` shows every run side by side while it trains).

    progress.json: {phase (compiling | training | finished | stopped), epoch (epochs done), max_epochs,
    seconds_per_epoch (median of the last five), eta_s (at that pace, to max_epochs; early stopping may end
    sooner), best_epoch, monitor, best_value, losses (the latest train_/val_ loss terms), val_accuracy,
    updated (ISO time), updated_unix, host, pid}. A training that starts from scratch clears `tensorboard/`; a
    resumed one purges the events of epochs after the one it resumes from.
    """

    def __init__(self, run_dir: str | Path, max_epochs: int, start_epoch: int, write: Callable[[Path, dict], None]):
        from tensorboardX import SummaryWriter

        self.run_dir = Path(run_dir)
        self.max_epochs = max_epochs
        self._write = write
        self._started = time.time()
        events = self.run_dir / TENSORBOARD_DIR
        if start_epoch == 0 and events.exists():
            shutil.rmtree(events)
        self._tb = SummaryWriter(logdir=str(events), purge_step=start_epoch + 1 if start_epoch else None,
                                 flush_secs=3600)
        self._base = {"max_epochs": max_epochs, "host": socket.gethostname(), "pid": os.getpid()}
        self._written = time.monotonic()
        self._last = {"phase": "compiling", "epoch": start_epoch, "seconds_per_epoch": None, "eta_s": None,
                      "best_epoch": None, "monitor": None, "best_value": None, "losses": {}, "val_accuracy": None}
        self._save()

    def _save(self) -> None:
        now = time.time()
        document = {**self._last, **self._base, "elapsed_s": now - self._started,
                    "updated": dt.datetime.fromtimestamp(now).isoformat(timespec="seconds"), "updated_unix": now}
        self._write(self.run_dir / PROGRESS_FILE, document)

    def epoch(self, row: dict, *, seconds_per_epoch: float, finished: bool, best_epoch: int, monitor: str,
              best_value: float) -> None:
        epoch = int(row["epoch"])
        for column, value in row.items():
            tag = tensorboard_tag(column)
            if tag is not None and value is not None:
                self._tb.add_scalar(tag, value, global_step=epoch)
        remaining = 0 if finished else self.max_epochs - epoch
        self._last.update(
            phase="finished" if finished else "training", epoch=epoch, seconds_per_epoch=seconds_per_epoch,
            eta_s=remaining * seconds_per_epoch, best_epoch=best_epoch, monitor=monitor, best_value=best_value,
            losses={k: v for k, v in row.items() if k.startswith(("train_", "val_")) and k != "val_accuracy"
                    and k != "train_accuracy"},
            val_accuracy=row.get("val_accuracy"))
        # at most one write a second (and the last epoch always): a tiny model's epoch can take less time than
        # writing the file and flushing the events; close() writes what a skipped epoch held
        now = time.monotonic()
        if finished or now - self._written >= MIN_WRITE_INTERVAL_S:
            self._tb.flush()
            self._save()
            self._written = now

    def close(self, phase: str | None = None) -> None:
        """Flush the events and write the latest progress; `phase` (e.g. `stopped`) is recorded when the training
        ends without finishing."""
        self._tb.close()
        if phase is not None:
            self._last["phase"] = phase
        self._save()
