"""Early stopping on a fixed objective: the best epoch and when to stop.

What is monitored (`model.monitor_metric`):
- `auto` / `loss`: the validation objective of the unsupervised terms with the annealed scales at their final
  values (KL_c scale 1, the Gumbel temperature where its schedule ends; schedules.py), so that epochs are
  compared on one objective. history.csv's `val_loss` keeps the annealed objective of each epoch; the fixed one
  is the `val_objective` column.
- `classification_loss`: the validation −log p(y|x) (validation labels: only when the config asks for it).
- `accuracy`: the validation accuracy (higher is better).

An epoch improves on the best when its value is strictly better; training stops once `patience` epochs in a row
have not improved (never after the last epoch: a run that reached max_epochs did not stop early).

The latent must be in use where the classifier reads it. On the validation objective, an epoch whose mean
validation KL_z is below log C nats (C classes) cannot be the best once an epoch at or above it exists, when
the classifier reads z (a head on z, or the VampPrior's τ-classifier, whose responsibilities are computed at
z): z carries at most KL_z nats about x, fewer than naming one of C classes takes. Early in training such a
model may leave z unused (KL_z near 0) while its unsupervised objective is lower than any later epoch's;
without the floor, such an epoch was kept (a VampPrior at 0.30 test accuracy on digits). Epochs below the floor
do not count towards patience until an epoch reaches it; a run that never reaches it keeps its best epoch by
value alone. The τ-classifier of a mixture or geometric prior reads q(c|x) from the encoder's component logits,
not z, so no floor applies to it: a geometric prior on digits that reached the floor early and then settled
below it (KL_z 1.2–1.7 nats) kept its epoch 13 of 60 while its objective and validation accuracy still improved.
"""

from __future__ import annotations

import dataclasses
import math

# monitor_metric -> (history column, "min" | "max")
MONITORS = {
    "auto": ("val_objective", "min"),
    "loss": ("val_objective", "min"),
    "classification_loss": ("val_classification_raw", "min"),
    "accuracy": ("val_accuracy", "max"),
}


@dataclasses.dataclass
class EarlyStopping:
    column: str
    mode: str
    patience: int
    max_epochs: int
    best_epoch: int | None = None  # 1-based
    best_value: float | None = None
    wait: int = 0
    stopped_early: bool = False
    min_kl_z: float = 0.0  # the latent-in-use floor (nats); 0: every epoch may be best
    best_uses_latent: bool = True  # (a state saved before the floor existed: every epoch could be best)

    @classmethod
    def for_config(cls, monitor_metric: str, patience: int, max_epochs: int,
                   num_classes: int = 1, classifier_reads_z: bool = True) -> "EarlyStopping":
        """The stopper of a config; the latent-in-use floor (log C nats) only on the validation objective and
        where the classifier reads z."""
        column, mode = MONITORS[monitor_metric]
        floor = math.log(num_classes) if column == "val_objective" and classifier_reads_z else 0.0
        return cls(column=column, mode=mode, patience=patience, max_epochs=max_epochs, min_kl_z=floor)

    def update(self, epoch: int, value: float, kl_z: float = math.inf) -> bool:
        """Record epoch `epoch` (1-based) with its monitored value and mean validation KL_z; True if it is the
        new best."""
        uses_latent = kl_z >= self.min_kl_z
        if self.best_value is None:
            better = True
        elif uses_latent != self.best_uses_latent:
            better = uses_latent
        else:
            better = value < self.best_value if self.mode == "min" else value > self.best_value
        if better:
            self.best_epoch, self.best_value, self.wait = epoch, float(value), 0
            self.best_uses_latent = uses_latent
        elif self.best_uses_latent:
            self.wait += 1
        if self.wait >= self.patience and epoch < self.max_epochs:
            self.stopped_early = True
        return better

    def finished(self, epochs_completed: int) -> bool:
        return self.stopped_early or epochs_completed >= self.max_epochs

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> "EarlyStopping":
        return cls(**state)
