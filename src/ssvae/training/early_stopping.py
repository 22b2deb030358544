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
"""

from __future__ import annotations

import dataclasses

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

    @classmethod
    def for_config(cls, monitor_metric: str, patience: int, max_epochs: int) -> "EarlyStopping":
        column, mode = MONITORS[monitor_metric]
        return cls(column=column, mode=mode, patience=patience, max_epochs=max_epochs)

    def update(self, epoch: int, value: float) -> bool:
        """Record epoch `epoch` (1-based) with its monitored value; True if it is the new best."""
        better = self.best_value is None or (value < self.best_value if self.mode == "min" else value > self.best_value)
        if better:
            self.best_epoch, self.best_value, self.wait = epoch, float(value), 0
        else:
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
